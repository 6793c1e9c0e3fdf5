/**
 * Passivation across weaves, on a real broker:
 * - A passivated thread moves to another weave (`Weave.migrate`): it wakes by replay of its
 *   record, leaves with it, and goes on there with its state and mailbox whole; messages sent to
 *   it before and after the move each reach it once, in order.
 * - A thread joining a thread of another weave is passivated, and wakes when that thread ends:
 *   while its weave runs, and when the end came while its weave was down.
 * - Passivated threads are counted in the heartbeat (`raiment weaves`), and `on: 'any'` weighs
 *   them: a weave holding many looks no emptier than it is.
 */
import { describe, expect, it, vi } from 'vitest'
import { main } from '../src/cli/main.js'
import { AMQP_URL } from './support/broker.js'
import { Weave, thread } from 'raiment'
import { brokerUp, CI, freshNamespace, removeNamespace, brokerTests } from './support/broker.js'
import { tempDir } from './support/tmp.js'
import { openWeave as openLinked } from './support/weaves.js'

/** Takes messages until one says stop; returns the others' n in the order taken. */
const collector = thread({
  uses: ['mailbox'],
  async does() {
    const got: number[] = []
    for (;;) {
      const m = await this.mailbox.receive<{ n?: number; stop?: boolean }>()
      if (m.stop) return got
      got.push(m.n!)
    }
  },
})

/** Joins `target` (a thread of another weave) and returns its result, or the name of the error. */
const joiner = thread({
  uses: ['threads'],
  async does(p: { target: string }) {
    try {
      return { got: await this.threads.join(p.target) }
    } catch (e) {
      return { error: (e as Error).name }
    }
  },
})

describe.skipIf(!brokerUp && !CI)('passivated threads and moves', () => {
  const cleanups = brokerTests()

  /** Opens weave `id` on the broker, passivating at once; closed after the test (or by `close`). */
  async function openWeave(dir: string, ns: string, id: string): Promise<Weave & { down(): Promise<void> }> {
    const w = await openLinked(cleanups, dir, ns, id, { collector, joiner }, { passivateAfter: 0 })
    return Object.assign(w.weave, { down: () => w.close() })
  }


  const joinsOf = (w: Weave, id: string): string | undefined => w.journal.db.prepare('SELECT joins FROM passivated WHERE thread = ?').pluck().get(id) as string | undefined

  it('a passivated thread wakes, moves, and takes every message once and in order on the other weave', async () => {
    const dir = tempDir('raiment-passivate-move-')
    const ns = freshNamespace()
    cleanups.push(() => removeNamespace(ns, ['a', 'b']))
    const open = (id: string) => openWeave(dir, ns, id)
    const a = await open('a')
    const b = await open('b')
    const id = a.spawn('collector')
    for (let n = 0; n < 3; n++) a.send(id, { n })
    const passivated = (): number => a.journal.db.prepare('SELECT count(*) FROM passivated WHERE thread = ?').pluck().get(id) as number
    // It takes the three, waits for more, and leaves memory.
    await expect.poll(() => `${a.journal.entries(id).length}:${passivated()}`, { timeout: 10_000, interval: 10 }).toBe('3:1')
    expect(await a.migrate(id, 'b')).toBe('b')
    expect(passivated()).toBe(0)
    expect(a.journal.thread(id)?.status).toBe('moved')
    for (let n = 3; n < 6; n++) a.send(id, { n })
    a.send(id, { stop: true })
    await expect.poll(() => b.journal.thread(id)?.status, { timeout: 20_000, interval: 20 }).toBe('done')
    expect(await b.join(id)).toMatchObject({ status: 'done', result: [0, 1, 2, 3, 4, 5] })
  }, 60_000)

  /** Weaves a and b; thread x of a joins a collector of b, and is passivated in that join. */
  async function joinerAsleep(dir: string) {
    const ns = freshNamespace()
    cleanups.push(() => removeNamespace(ns, ['a', 'b']))
    const a = await openWeave(dir, ns, 'a')
    const b = await openWeave(dir, ns, 'b')
    const target = b.spawn('collector')
    await b.committed()
    const x = a.spawn('joiner', { target })
    await expect.poll(() => joinsOf(a, x), { timeout: 10_000, interval: 10 }).toBe(target)
    return { ns, a, b, target, x }
  }

  it('a thread joining a thread of another weave is passivated, and wakes with its result when it ends', async () => {
    const dir = tempDir('raiment-passivate-join-')
    const { a, b, target, x } = await joinerAsleep(dir)
    expect(a.running).toBe(0)
    b.send(target, { n: 7 })
    b.send(target, { stop: true })
    expect(await a.join(x)).toMatchObject({ status: 'done', result: { got: [7] } })
    expect(joinsOf(a, x)).toBeUndefined()
  }, 60_000)

  it('a passivated joiner of a thread the other weave does not have wakes with UnknownThread', async () => {
    const dir = tempDir('raiment-passivate-join-unknown-')
    const ns = freshNamespace()
    cleanups.push(() => removeNamespace(ns, ['a', 'b']))
    const a = await openWeave(dir, ns, 'a')
    await openWeave(dir, ns, 'b')
    const x = a.spawn('joiner', { target: 'b/no-such-thread' })
    expect(await a.join(x)).toMatchObject({ status: 'done', result: { error: 'UnknownThread' } })
    expect(joinsOf(a, x)).toBeUndefined()
  }, 60_000)

  it('a passivated joiner whose target ended while its weave was down wakes when the weave opens again', async () => {
    const dir = tempDir('raiment-passivate-join-down-')
    const { ns, a, b, target, x } = await joinerAsleep(dir)
    await a.down()
    b.send(target, { n: 1 })
    b.send(target, { stop: true })
    expect(await b.join(target)).toMatchObject({ status: 'done', result: [1] })
    const again = await openWeave(dir, ns, 'a')
    expect(await again.join(x)).toMatchObject({ status: 'done', result: { got: [1] } })
  }, 60_000)

  /** `raiment weaves` on namespace `ns` (with `--json` when asked): what it printed. */
  async function weaves(ns: string, json: boolean): Promise<string> {
    const printed: string[] = []
    const write = vi.spyOn(process.stdout, 'write').mockImplementation((t) => (printed.push(String(t)), true))
    const warn = vi.spyOn(process.stderr, 'write').mockImplementation((t) => (printed.push(String(t)), true))
    try {
      expect(await main(['weaves', '--amqp', AMQP_URL, '--namespace', ns, ...(json ? ['--json'] : [])])).toBe(0)
    } finally {
      write.mockRestore()
      warn.mockRestore()
    }
    return printed.join('')
  }

  it('raiment weaves shows passivated threads beside those in memory, and on: any weighs them (a user trial)', async () => {
    const dir = tempDir('raiment-passivate-weaves-')
    const ns = freshNamespace()
    cleanups.push(() => removeNamespace(ns, ['a', 'b']))
    const a = await openLinked(cleanups, dir, ns, 'a', { collector }, { passivateAfter: 0 })
    const b = await openLinked(cleanups, dir, ns, 'b', { collector }, { passivateAfter: false })
    const ids = [0, 1, 2].map(() => a.weave.spawn('collector'))
    b.weave.spawn('collector')
    await expect.poll(() => `${a.weave.running}+${a.weave.passivated}`, { timeout: 10_000, interval: 10 }).toBe('0+3')
    // What a hears of b, and the listing, as the heartbeats say it now.
    await expect.poll(() => a.link.live().map((w) => `${w.id}:${w.threads}+${w.passivated}`).join(' '), { timeout: 10_000, interval: 20 }).toBe('a:0+3 b:1+0')
    const listed = JSON.parse(await weaves(ns, true)) as Array<{ id: string; threads: number; passivated: number | null }>
    expect(listed.map((w) => ({ id: w.id, threads: w.threads, passivated: w.passivated }))).toEqual([
      { id: 'a', threads: 0, passivated: 3 },
      { id: 'b', threads: 1, passivated: 0 },
    ])
    expect(await weaves(ns, false)).toMatch(/^a +\S+ +\d+ +0 \(\+3 passivated\) /m)
    // The weave with 3 threads asleep is not the least loaded: b, with 1 in memory, is.
    expect(await a.link.place('any')).toBe('b')

    // A thread woken to end leaves the count; one woken by a message and passivated again stays.
    a.weave.send(ids[0]!, { stop: true })
    a.weave.send(ids[1]!, { n: 1 })
    expect(await a.weave.join(ids[0]!)).toMatchObject({ status: 'done' })
    await expect.poll(() => `${a.weave.running}+${a.weave.passivated}`, { timeout: 10_000, interval: 10 }).toBe('0+2')
    // Counted from the journal when the weave opens again.
    await a.close()
    const again = await openLinked(cleanups, dir, ns, 'a', { collector }, { passivateAfter: 0 })
    expect(again.weave.passivated).toBe(2)
    expect(again.weave.running).toBe(0)
  }, 60_000)
})

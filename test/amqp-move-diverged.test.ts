/**
 * A thread moved to a weave whose code diverges from its record (a rolling deploy: weave a runs
 * the new code, weave b still the old) goes back to the weave it came from, which runs it on, and
 * both weaves warn with RAIMENT_MOVED_BACK (src/weave-moves.ts `diverged`); before, it failed on
 * b with ReplayDivergence, its name freed. A thread sent back that the weave it came back to
 * cannot replay either fails there: it is not sent back again. Until it leaves (a turn later) it
 * is alive where it diverged: a message sent to it there goes with it, a kill ends it there. Real
 * weaves over RabbitMQ; the restart path is test/move-back-restart.test.ts.
 */
import { describe, expect, it } from 'vitest'
import { thread, type AnyThreadType } from 'raiment'
import { brokerTests, brokerUp, CI, freshNamespace, removeNamespace } from './support/broker.js'
import { openWeave, type OpenWeave } from './support/weaves.js'
import { tempDir } from './support/tmp.js'

/** The new code: asks for the time first (a call the old code never makes), then counts messages until 'stop'. */
const loopNew = thread({
  uses: ['mailbox', 'clock', 'registry'],
  async does() {
    await this.registry.register('counter')
    await this.clock.now()
    let n = 0
    while ((await this.mailbox.receive<string>()) !== 'stop') n++
    return n
  },
})

/** The old code: no clock call. */
const loopOld = thread({
  uses: ['mailbox', 'clock', 'registry'],
  async does() {
    await this.registry.register('counter')
    let n = 0
    while ((await this.mailbox.receive<string>()) !== 'stop') n++
    return n
  },
})

/** Other code again: takes a message before anything else. */
const loopOther = thread({
  uses: ['mailbox', 'clock', 'registry'],
  async does() {
    await this.mailbox.receive()
    return -1
  },
})

describe.skipIf(!brokerUp && !CI)('a thread moved to a weave whose code diverges from its record', () => {
  const cleanups = brokerTests()

  /** `onSentBack`: called as weave b warns that it sends a thread back (a microtask later it has not left yet: it leaves a turn later). */
  function setup(onSentBack: () => void = () => {}) {
    const dir = tempDir()
    const ns = freshNamespace()
    cleanups.push(() => removeNamespace(ns, ['a', 'b']))
    const warned: Record<string, string[]> = { a: [], b: [] }
    const open = (id: 'a' | 'b', loop: AnyThreadType) =>
      openWeave(cleanups, dir, ns, id, { loop }, {
        durability: 'sync',
        passivateAfter: false,
        onWarning: (w) => {
          warned[id]!.push(`${(w as { code?: string }).code}: ${w.message}`)
          if (id === 'b' && (w as { code?: string }).code === 'RAIMENT_MOVED_BACK') onSentBack()
        },
      })
    return { open, warned }
  }

  /** Weaves a (new code) and b (old code), and a thread of a, given 'one', moved to b. */
  async function movedToOld(onSentBack: (b: OpenWeave, t: string) => void) {
    let b: OpenWeave | null = null
    let t = ''
    const { open, warned } = setup(() => onSentBack(b!, t))
    const a = await open('a', loopNew)
    b = await open('b', loopOld)
    t = a.weave.spawn('loop')
    a.weave.send(t, 'one')
    await expect.poll(() => a.weave.journal.entries(t).length, { timeout: 10_000, interval: 20 }).toBeGreaterThanOrEqual(3)
    expect(await a.weave.migrate(t, 'b')).toBe('b')
    return { open, warned, a, b, t }
  }

  it('takes back with it what was sent to it while it waited to leave', async () => {
    let sent: unknown = null
    const { a, t } = await movedToOld((b, t) => queueMicrotask(() => (sent = b.weave.send(t, 'meanwhile'))))
    await expect.poll(() => a.weave.journal.thread(t)?.status, { timeout: 15_000, interval: 20 }).toBe('running')
    expect(sent).toEqual({ delivered: true, to: t })
    a.weave.send(t, 'stop')
    expect(await a.weave.join(t)).toMatchObject({ status: 'done', result: 2 })
  }, 60_000)

  it('killed while it waited to leave, ends there, killed', async () => {
    let killed: unknown = null
    const { b, t } = await movedToOld((b, t) => queueMicrotask(() => (killed = b.weave.kill(t))))
    expect(await b.weave.join(t)).toMatchObject({ status: 'killed' })
    expect(killed).toBe(true)
    expect(b.weave.journal.thread(t)?.status).toBe('killed')
  }, 60_000)

  it('goes back to the weave it came from, which runs it on with its name and the messages sent meanwhile', async () => {
    const { open, warned } = setup()
    const a = await open('a', loopNew)
    const b = await open('b', loopOld)
    const t = a.weave.spawn('loop')
    a.weave.send(t, 'one')
    await expect.poll(() => a.weave.journal.entries(t).length, { timeout: 10_000, interval: 20 }).toBeGreaterThanOrEqual(3)
    expect(await a.weave.migrate(t, 'b')).toBe('b')
    // It comes back to a: running there again, moved on b (b forwards to a what comes for it).
    await expect.poll(() => a.weave.journal.thread(t)?.status, { timeout: 15_000, interval: 20 }).toBe('running')
    await expect.poll(() => b.weave.journal.thread(t)?.status, { timeout: 15_000, interval: 20 }).toBe('moved')
    expect(warned['b']!.join('\n')).toMatch(new RegExp(`^RAIMENT_MOVED_BACK: thread ${t} moved here from weave a, and its record diverges from this weave's code: .* It goes back to weave a`, 'm'))
    expect(warned['a']!.join('\n')).toMatch(new RegExp(`^RAIMENT_MOVED_BACK: thread ${t} came back from weave b`, 'm'))
    // By id from b (which forwards it here), then by name here: it counts on where it left off.
    // (Taken in turn: messages of two senders keep no order between them.)
    b.weave.send(t, 'two')
    await expect.poll(() => a.weave.journal.entries(t).length, { timeout: 10_000, interval: 20 }).toBe(4)
    await expect.poll(() => a.weave.messages.whereis('counter'), { timeout: 10_000, interval: 20 }).toBe(t)
    a.weave.send('counter', 'three')
    a.weave.send(t, 'stop')
    expect(await a.weave.join(t)).toMatchObject({ status: 'done', result: 3 })
  }, 60_000)

  it('that its weave cannot replay either, once back, fails there: it is not sent back again', async () => {
    const { open, warned } = setup()
    const a = await open('a', loopNew)
    const b = await open('b', loopOld)
    const t = a.weave.spawn('loop')
    await expect.poll(() => a.weave.journal.entries(t).length, { timeout: 10_000, interval: 20 }).toBeGreaterThanOrEqual(2)
    expect(await a.weave.migrate(t, 'b')).toBe('b')
    // a stops; what b sends back waits in its queue; a comes back with other code again.
    await a.close()
    await expect.poll(() => b.weave.journal.thread(t)?.status, { timeout: 15_000, interval: 20 }).toBe('moved')
    const again = await open('a', loopOther)
    const end = await again.weave.join(t)
    expect(end).toMatchObject({ status: 'failed', error: { code: 'RAIMENT_REPLAY_DIVERGENCE' } })
    expect(again.weave.journal.thread(t)?.status).toBe('failed')
    expect(warned['a']!.join('\n')).toMatch(/RAIMENT_MOVED_BACK: .* came back from weave b/)
  }, 60_000)
})

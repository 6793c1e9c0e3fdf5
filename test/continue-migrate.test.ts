/**
 * A thread that continued as new moves to another weave (`Weave.migrate`, a real broker): its
 * count goes with it, so its calls there keep ids of their own (none equals a call id of an
 * earlier run, and none of its messages has the id of an earlier run's: the weave they reach
 * takes each), and it goes on continuing there with its mailbox whole.
 */
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { Weave } from 'raiment'
import { AmqpLink } from '../src/amqp/link.js'
import { AMQP_URL, brokerUp, CI, freshNamespace, removeNamespace, brokerTests } from './support/broker.js'
import { actor, fxLibrary, logger, ticks } from './support/continue-plan.js'
import { tempDir } from './support/tmp.js'

describe.skipIf(!brokerUp && !CI)('continue-as-new and moves', () => {
  const cleanups = brokerTests()

  it('a thread that continued twice moves, keeps its count and mailbox, and continues there with call ids of its own', async () => {
    const dir = tempDir('raiment-continue-move-')
    const ns = freshNamespace()
    cleanups.push(() => removeNamespace(ns, ['a', 'b']))
    const effects = join(dir, 'effects.db')
    const open = async (id: string) => {
      const link = await AmqpLink.connect({ url: AMQP_URL, namespace: ns, heartbeatMs: 100, log: () => {} })
      const weave = await Weave.open({ db: join(dir, `${id}.db`), weaveId: id, threads: { actor, logger }, ioLibs: false, dumps: false, durability: 'memory', remote: link, libraries: { cfx: fxLibrary(effects) } })
      await link.start(weave)
      cleanups.push(async () => {
        await link.close()
        await weave.close()
      })
      return weave
    }
    const a = await open('a')
    const b = await open('b')
    // Each run sends the same 'tick' to a logger on b: one message per run, through the broker.
    const log = b.spawn('logger')
    await b.committed()
    const id = a.spawn('actor', { every: 2, got: [], runs: 0, log })
    await a.committed()
    for (let n = 0; n < 5; n++) a.send(id, { n })
    // Two continues (0-1, 2-3), then it has taken 4 and waits with nothing left.
    const state = (): string => `${(a.journal.thread(id) as { continued?: number } | undefined)?.continued}:${a.journal.entries(id).length}`
    await expect.poll(state, { timeout: 10_000, interval: 10 }).toBe('2:4')
    expect(await a.migrate(id, 'b')).toBe('b')
    for (let n = 5; n < 9; n++) a.send(id, { n })
    a.send(id, { stop: true })
    await expect.poll(() => b.journal.thread(id)?.status, { timeout: 20_000, interval: 20 }).toBe('done')
    expect(await b.join(id)).toMatchObject({ status: 'done', result: { got: [0, 1, 2, 3, 4, 5, 6, 7, 8], runs: 4 } })
    expect((b.journal.thread(id) as { continued?: number }).continued).toBe(4)
    // Each run's call ids begin with the thread's id and scope (the same on both weaves), and from the second with its count.
    const at = `${id}@${(b.journal.thread(id) as { scope?: string }).scope}`
    const scopes = ticks(effects).map((c) => c.slice(0, c.indexOf(':')))
    expect(scopes).toEqual([at, `${at}~1`, `${at}~2`, `${at}~3`, `${at}~4`])
    // Five runs, five 'tick' messages taken by b, none taken for a copy of another.
    a.send(log, { stop: true })
    expect(await b.join(log)).toMatchObject({ status: 'done', result: 5 })
  }, 60_000)
})

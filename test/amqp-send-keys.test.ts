/**
 * Keyed sends across weaves (src/send-keys.ts), on a real broker with weaves on their own
 * journals: a keyed send through weave a and its retry through weave b (behind a load balancer)
 * to a thread of weave c reach it once, c dropping the copy; by name too. A thread that moved
 * (c to b) keeps its keys: a retry through its new weave is a duplicate, and so is a retry of a
 * send that its old weave forwarded to it.
 */
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { Weave } from 'raiment'
import { AmqpLink } from '../src/amqp/link.js'
import { AMQP_URL, brokerTests, brokerUp, CI, freshNamespace, removeNamespace } from './support/broker.js'
import { collect } from './support/send-key-plan.js'
import { tempDir } from './support/tmp.js'
import { until } from './support/until.js'

describe.skipIf(!brokerUp && !CI)('keyed sends across weaves', () => {
  const cleanups = brokerTests()

  async function weaves(ids: string[]): Promise<Record<string, Weave>> {
    const dir = tempDir()
    const ns = freshNamespace()
    cleanups.push(() => removeNamespace(ns, ids))
    const out: Record<string, Weave> = {}
    for (const id of ids) {
      const link = await AmqpLink.connect({ url: AMQP_URL, namespace: ns, heartbeatMs: 100, log: () => {} })
      const weave = await Weave.open({ db: join(dir, `${id}.db`), weaveId: id, threads: { collect }, ioLibs: false, dumps: false, durability: 'memory', remote: link })
      await link.start(weave)
      cleanups.push(async () => {
        await link.close()
        await weave.close()
      })
      out[id] = weave
    }
    return out
  }

  /** How many keyed envelopes weave `w` has taken from other weaves (each copy counts). */
  function takenKeyed(w: Weave): number {
    return w.journal.db.prepare("SELECT count(*) FROM received WHERE msg_id LIKE 'key:%'").pluck().get() as number
  }

  async function collected(w: Weave, id: string): Promise<unknown[]> {
    w.send(id, { stop: true })
    return ((await w.join(id)) as { result: unknown[] }).result
  }

  it('a send through weave a and its retry through weave b to a thread of weave c reach it once', async () => {
    const { a, b, c } = (await weaves(['a', 'b', 'c'])) as Record<'a' | 'b' | 'c', Weave>
    const t = c.spawn('collect', { name: 'box' })
    await until('the name box on c', () => c.journal.db.prepare("SELECT 1 FROM names WHERE name = 'box'").get() !== undefined)
    expect(a.send(t, { i: 1 }, { key: 'req-1' })).toEqual({ delivered: true, to: t })
    // b cannot know a sent it: c, where the thread is, drops the copy.
    expect(b.send(t, { i: 1 }, { key: 'req-1' })).toEqual({ delivered: true, to: t })
    // Again through a: a knows.
    expect(a.send(t, { i: 1 }, { key: 'req-1' })).toEqual({ delivered: true, to: t, duplicate: true })
    // Another key, and a retry by the name through b.
    a.send(t, { i: 2 }, { key: 'req-2' })
    await until('b to know the name box', () => b.messages.whereis('box') === t)
    b.send('box', { i: 2 }, { key: 'req-2' })
    await until('c to take the four keyed envelopes', () => takenKeyed(c) >= 4)
    await c.committed()
    expect(await collected(c, t)).toEqual([{ i: 1 }, { i: 2 }])
  }, 60_000)

  it('a retry by the name of a thread of another weave, through the same weave, says it is a duplicate (and the other way round)', async () => {
    const { a, c } = (await weaves(['a', 'c'])) as Record<'a' | 'c', Weave>
    const t = c.spawn('collect', { name: 'box' })
    await until('a to know the name box', () => a.messages.whereis('box') === t)
    expect(a.send(t, { i: 1 }, { key: 'by-id-first' })).toEqual({ delivered: true, to: t })
    expect(a.send('box', { i: 1 }, { key: 'by-id-first' })).toEqual({ delivered: true, to: t, duplicate: true })
    expect(a.send('box', { i: 2 }, { key: 'by-name-first' })).toEqual({ delivered: true, to: t })
    expect(a.send(t, { i: 2 }, { key: 'by-name-first' })).toEqual({ delivered: true, to: t, duplicate: true })
    await until('c to take the two keyed envelopes', () => takenKeyed(c) >= 2)
    await c.committed()
    expect(await collected(c, t)).toEqual([{ i: 1 }, { i: 2 }])
  }, 60_000)

  it('a thread that moved keeps its keys: retries through its new weave and after a forward are duplicates', async () => {
    const { a, b, c } = (await weaves(['a', 'b', 'c'])) as Record<'a' | 'b' | 'c', Weave>
    const t = c.spawn('collect')
    await c.committed()
    a.send(t, { i: 1 }, { key: 'before' })
    await until('c to take it', () => takenKeyed(c) >= 1)
    await c.committed()
    expect(await c.migrate(t, 'b')).toBe('b')
    await until('the thread to run on b', () => b.journal.thread(t)?.status === 'running')
    // Sent to its new weave straight: known there from the move.
    expect(b.send(t, { i: 1 }, { key: 'before' })).toEqual({ delivered: true, to: t, duplicate: true })
    // A first send through its old weave goes on to b; its retry through b is a duplicate there.
    expect(c.send(t, { i: 2 }, { key: 'after' })).toEqual({ delivered: true, to: t })
    await until('b to take the forwarded send', () => takenKeyed(b) >= 1)
    await b.committed()
    expect(b.send(t, { i: 2 }, { key: 'after' })).toEqual({ delivered: true, to: t, duplicate: true })
    // A retry through a third weave that routes by the id to c: c, or b after it, drops it.
    expect(a.send(t, { i: 2 }, { key: 'after' })).toEqual({ delivered: true, to: t })
    await until('the retry through a to be taken', () => takenKeyed(c) >= 2)
    await c.committed()
    await b.committed()
    expect(await collected(b, t)).toEqual([{ i: 1 }, { i: 2 }])
  }, 60_000)
})

/**
 * A thread's move waits for the journal's stream under any durability. Under 'sync' a batch is
 * released at its local commit, before the stream has it; a move record out (and taken by the
 * other weave) before the stream had it would let a takeover rebuild the thread here while it
 * runs there, and an arrival acknowledged before the destination's stream had it could be lost
 * with that host. So a batch marked `holdForStream` is released only once the stream confirmed
 * it, and every later batch waits behind it (callbacks run in commit order, and the relay
 * publishes no row of a batch not released). A move between a replicated weave under 'sync' and
 * another runs end to end so.
 */
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import type { AnyThreadType } from 'raiment'
import { brokerTests, brokerUp, CI, freshNamespace, removeNamespace } from './support/broker.js'
import { dropStreams, openReplicated } from './support/replication.js'
import { tempDir } from './support/tmp.js'
import { openWeave } from './support/weaves.js'
import { receiveOne } from './support/receive-one.js'

const waiter = receiveOne

const threads = { waiter } as Record<string, AnyThreadType>

describe.skipIf(!brokerUp && !CI)('batches held for the stream under sync', () => {
  const cleanups = brokerTests()

  it('a held batch, and every later one, is released only once the stream has it', async () => {
    const ns = freshNamespace()
    cleanups.push(() => dropStreams(ns, 'h'))
    const r = await openReplicated(ns, { db: join(tempDir(), 'h.db'), weaveId: 'h', threads, durability: 'sync' })
    cleanups.push(() => r.close())
    const journal = r.weave.journal
    const set = journal.db.prepare('INSERT INTO meta (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v')
    const released: number[] = []
    journal.queue(set, ['test-hold', '1'], () => released.push(1))
    journal.flushNow()
    // Under sync, at the local commit.
    expect(released).toEqual([1])
    journal.queue(set, ['test-hold', '2'], () => released.push(2))
    journal.holdForStream()
    journal.flushNow()
    journal.queue(set, ['test-hold', '3'], () => released.push(3))
    journal.flushNow()
    // No confirm can have come within these synchronous steps.
    expect(released).toEqual([1])
    await r.link.replicator!.flushed()
    expect(released).toEqual([1, 2, 3])
    // Later batches go at their commit again.
    journal.queue(set, ['test-hold', '4'], () => released.push(4))
    journal.flushNow()
    expect(released).toEqual([1, 2, 3, 4])
  })

  it('a thread moves from a weave replicated under sync to another, and runs there', async () => {
    const dir = tempDir()
    const ns = freshNamespace()
    cleanups.push(async () => {
      await dropStreams(ns, 'a')
      await removeNamespace(ns, ['a', 'b'])
    })
    const a = await openReplicated(ns, { db: join(dir, 'a.db'), weaveId: 'a', threads, durability: 'sync' })
    cleanups.push(() => a.close())
    const { weave: b } = await openWeave(cleanups, dir, ns, 'b', threads, { durability: 'sync' })
    const id = a.weave.spawn('waiter')
    await a.weave.committed()
    expect(await a.weave.migrate(id, 'b')).toBe('b')
    expect(a.weave.journal.thread(id)?.status).toBe('moved')
    a.weave.send(id, 'hello')
    expect(await b.join(id)).toMatchObject({ status: 'done', result: 'hello' })
  }, 60_000)
})

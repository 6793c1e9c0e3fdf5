/**
 * A journal rebuilt from its stream numbers its new outbox rows past those the lost weave may
 * have published beyond the stream. Under 'sync' the stream lags: a weave can publish rows (and
 * another weave take them) whose batches the stream never got. The receiving weave knows the rows
 * it took from that journal by number; had the rebuilt journal numbered its next rows as those,
 * the receiver would drop new messages as copies of old ones, silently.
 *
 * The lag is made whole here: weave a replicates (its stream holds a snapshot), then runs without
 * replication and sends five messages to weave b, which takes them; a is rebuilt from its stream
 * (which lacks those five) and sends one more message, which b must get.
 */
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { thread, type AnyThreadType } from 'raiment'
import { rebuildJournal } from '../src/replication/rebuild.js'
import { AMQP_URL, brokerTests, brokerUp, CI, freshNamespace, removeNamespace } from './support/broker.js'
import { dropStreams, openReplicated } from './support/replication.js'
import { tempDir } from './support/tmp.js'
import { openWeave } from './support/weaves.js'

const sender = thread({
  uses: ['mailbox'],
  async does(p: { to: string; n: number }) {
    for (let i = 0; i < p.n; i++) await this.mailbox.send(p.to, { i })
    return p.n
  },
})

const sink = thread({
  uses: ['mailbox'],
  async does(p: { n: number }) {
    const got: unknown[] = []
    for (let i = 0; i < p.n; i++) got.push(await this.mailbox.receive())
    return got
  },
})

const threads = { sender, sink } as Record<string, AnyThreadType>

describe.skipIf(!brokerUp && !CI)('outbox numbers of a rebuilt journal', () => {
  const cleanups = brokerTests()

  it('a message sent after the rebuild reaches a weave that took rows the stream lacks', async () => {
    const dir = tempDir()
    const ns = freshNamespace()
    cleanups.push(async () => {
      await dropStreams(ns, 'a')
      await removeNamespace(ns, ['a', 'b'])
    })
    const b = await openWeave(cleanups, dir, ns, 'b', threads, { durability: 'sync' })
    // a's stream: a snapshot of a journal that has sent nothing.
    const a1 = await openReplicated(ns, { db: join(dir, 'a.db'), weaveId: 'a', threads, durability: 'sync' })
    await a1.close()
    // Five rows published and taken by b, which the stream never gets.
    const first = b.weave.spawn('sink', { n: 5 })
    // (Run unreplicated, said so: the stream misses what it does.)
    const a2 = await openWeave(cleanups, dir, ns, 'a', threads, { durability: 'sync', replicate: false })
    await a2.weave.join(a2.weave.spawn('sender', { to: first, n: 5 }))
    expect(await b.weave.join(first)).toMatchObject({ status: 'done', result: [{ i: 0 }, { i: 1 }, { i: 2 }, { i: 3 }, { i: 4 }] })
    await a2.close()
    // The host of a is lost; a is rebuilt from its stream, and runs on.
    await rebuildJournal({ url: AMQP_URL, namespace: ns, weaveId: 'a', file: join(dir, 'a-rebuilt.db') })
    const second = b.weave.spawn('sink', { n: 1 })
    const a3 = await openReplicated(ns, { db: join(dir, 'a-rebuilt.db'), weaveId: 'a', threads, durability: 'sync' })
    try {
      await a3.weave.join(a3.weave.spawn('sender', { to: second, n: 1 }))
      // A bound on waiting for what would never come (b dropping it as a copy).
      const end = await Promise.race([b.weave.join(second), new Promise((r) => setTimeout(() => r('never delivered'), 10_000))])
      expect(end).toMatchObject({ status: 'done', result: [{ i: 0 }] })
    } finally {
      await a3.close()
    }
  }, 60_000)
})

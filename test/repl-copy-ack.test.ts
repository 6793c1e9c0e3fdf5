/**
 * Under durability 'replicated' a message is acknowledged to the broker only once its insertion is
 * in the receiving journal's stream, copies included. A copy (the broker gave back a delivery the
 * weave had taken, committed locally, but whose batch the stream had not confirmed) was
 * acknowledged at the journal's plain `committed()`, which resolves when the journal closes,
 * released or not: closing the weave acknowledged it, and with the host lost the message was in
 * neither the queue nor the stream (a review: scratch/rvS/ack-at-close.ts, handback-loss.ts).
 */
import { join } from 'node:path'
import amqp from 'amqplib'
import Database from 'better-sqlite3'
import { describe, expect, it } from 'vitest'
import { thread, Weave } from 'raiment'
import { AmqpLink } from '../src/amqp/link.js'
import { rebuildJournal } from '../src/replication/rebuild.js'
import { AMQP_URL, brokerTests, brokerUp, CI, freshNamespace, removeNamespace } from './support/broker.js'
import { dropStreams } from './support/replication.js'
import { streamProxy } from './support/stream-proxy.js'
import { tempDir } from './support/tmp.js'

const sink = thread({
  uses: ['mailbox'],
  async does() {
    return await this.mailbox.receive({ timeout: 60_000 })
  },
})
const sender = thread({
  uses: ['mailbox'],
  async does(p: { to: string }) {
    return await this.mailbox.send(p.to, 'the-message')
  },
})

const rows = (db: Database.Database): number => db.prepare('SELECT (SELECT count(*) FROM inbox) + (SELECT count(*) FROM received)').pluck().get() as number

describe.skipIf(!brokerUp && !CI)("a copy of a message taken under 'replicated'", () => {
  const cleanups = brokerTests()

  it('is not acknowledged when the weave closes before the stream has the message: the next run gets it', async () => {
    const dir = tempDir()
    const ns = freshNamespace()
    const proxy = await streamProxy()
    const rLink = await AmqpLink.connect({ url: proxy.url, namespace: ns, log: () => {} })
    const r = await Weave.open({ db: join(dir, 'r.db'), weaveId: 'r', threads: { sink }, dumps: false, ioLibs: false, durability: 'replicated', remote: rLink, replicate: true, passivateAfter: false })
    await rLink.start(r)
    const sLink = await AmqpLink.connect({ url: AMQP_URL, namespace: ns, log: () => {} })
    const s = await Weave.open({ db: join(dir, 's.db'), weaveId: 's', threads: { sender }, dumps: false, ioLibs: false, durability: 'sync', remote: sLink, passivateAfter: false })
    await sLink.start(s)
    const check = await amqp.connect(AMQP_URL)
    let r2: { weave: Weave; link: AmqpLink } | null = null
    cleanups.push(async () => {
      if (r2 !== null) await r2.weave.close().then(() => r2!.link.close())
      if (!r.journal.closed) await r.close({ wait: 0 })
      await rLink.close()
      await s.close()
      await sLink.close()
      await check.close()
      await proxy.close()
      await dropStreams(ns, 'r')
      await dropStreams(ns, 's').catch(() => {})
      await removeNamespace(ns, ['r', 's'])
    })
    // Each take of the message by r: true the first time, false for a copy.
    const takes: boolean[] = []
    let took: () => void = () => {}
    const received = r.messages.received
    const once = received.once.bind(received)
    received.once = (msgId, origin, after) => {
      const first = once(msgId, origin, after)
      takes.push(first)
      took()
      return first
    }
    const taken = (n: number): Promise<void> => new Promise((resolve) => (took = () => takes.length >= n && resolve()))

    const sinkId = r.spawn('sink')
    await r.committed() // its spawn is in the stream
    // From here on r's stream confirms nothing.
    proxy.holdJournals()
    const first = taken(1)
    s.spawn('sender', { to: sinkId })
    await first
    expect(takes).toEqual([true])
    // The connection goes: the broker gives the unacknowledged delivery back, and r takes it again
    // on its new connection, as a copy of one it has (committed here, not in the stream).
    const copy = taken(2)
    const down = new Promise<void>((resolve) => rLink.broker.once('down', () => resolve()))
    proxy.cut()
    await down
    proxy.restore()
    await copy
    expect(takes).toEqual([true, false])
    expect(rows(r.journal.db)).toBeGreaterThan(0)
    expect(rLink.replicator!.lag().entries).toBeGreaterThan(0)

    // r closes with the batch that took it never confirmed (its host lost, say).
    await r.close({ wait: 0 })
    // An acknowledgement goes out in a tick after its commit's callbacks: let one pass before the
    // link closes (as it would, a close later).
    await new Promise((resolve) => setImmediate(resolve))
    await rLink.close()
    const ch = await check.createChannel()
    // Still the broker's: acknowledged, the stream lacking it, it would be lost for good.
    expect((await ch.checkQueue(`${ns}.weave.r`)).messageCount).toBe(1)
    const file = join(dir, 'r-rebuilt.db')
    await rebuildJournal({ url: AMQP_URL, namespace: ns, weaveId: 'r', file })
    const rebuilt = new Database(file, { readonly: true })
    expect(rows(rebuilt)).toBe(0)
    rebuilt.close()

    // The journal rebuilt from the stream runs on: its sink gets the message from the queue.
    const link = await AmqpLink.connect({ url: AMQP_URL, namespace: ns, log: () => {} })
    const weave = await Weave.open({ db: file, weaveId: 'r', threads: { sink }, dumps: false, ioLibs: false, durability: 'replicated', remote: link, replicate: true, passivateAfter: false })
    r2 = { weave, link }
    await link.start(weave)
    const end = await weave.join(sinkId)
    expect(end.status === 'done' ? end.result : end).toBe('the-message')
  }, 30_000)
})

/**
 * Pruning `received` on a real broker (src/received.ts): weaves a and b in this process.
 *
 * - A storm from a to b through connections the broker closes (so rows are published again and
 *   deliveries come again): every message is taken once and in order, and b keeps about one prune
 *   interval of ids from a, not one per message.
 * - A copy of a message whose id b has pruned: the sender can no longer publish it (its row was
 *   confirmed and deleted), but the broker can deliver it again long after, as when the ack of it
 *   was lost with a connection the broker still held. Sent by hand with the headers the relay
 *   gave it: ignored, by its row number.
 */
import amqp from 'amqplib'
import { describe, expect, it } from 'vitest'
import type { Weave } from 'raiment'
import { Topology } from '../src/amqp/topology.js'
import { PRUNE_EVERY, type Origin } from '../src/received.js'
import { AMQP_URL, brokerUp, CI, brokerTests } from './support/broker.js'
import { resultOf as result, sink, source } from './support/streams.js'
import { openWeaves } from './support/weaves.js'
import { until } from './support/until.js'

const types = { source, sink }

function count(w: Weave, sql: string, ...args: unknown[]): number {
  return w.journal.db.prepare(sql).pluck().get(...args) as number
}

/** Counts the copies `w` ignores. */
function countCopies(w: Weave): { copies: number } {
  const ids = w.messages.received
  const once = ids.once.bind(ids)
  const seen = { copies: 0 }
  ids.once = (msgId: string, origin: Origin | undefined, after: () => void): boolean => {
    const took = once(msgId, origin, after)
    if (!took) seen.copies++
    return took
  }
  return seen
}

describe.skipIf(!brokerUp && !CI)('pruning the ids taken from other weaves', () => {
  const cleanups = brokerTests()

  it('after a storm through closed connections: each message taken once, in order, and few ids kept', async () => {
    const { w, links } = await openWeaves(cleanups, ['a', 'b'], types)
    const a = w['a']!
    const b = w['b']!
    const seen = countCopies(b)
    const PAIRS = 8
    const N = 1500
    const expected = Array.from({ length: N }, (_, i) => i)
    // A storm is a round of PAIRS conversations while the broker closes both weaves' connections
    // again and again (40 times, and on until b has been given a copy). On a loaded machine a
    // round can end before any close lost an ack or a confirm: then another round, up to 5.
    let rounds = 0
    while (rounds < 5 && (rounds === 0 || seen.copies === 0)) {
      rounds++
      const sinks = Array.from({ length: PAIRS }, () => b.spawn('sink', { n: N }))
      await b.committed()
      const sources = sinks.map((to) => a.spawn('source', { to, n: N, inFlight: 50 }))
      const done = Promise.all(sources.map((id) => a.join(id)))
      let finished = false
      void done.then(() => (finished = true))
      for (let k = 0; (k < 40 || seen.copies === 0) && !finished; k++) {
        await new Promise((r) => setTimeout(r, 40))
        for (const l of [links['a']!, links['b']!]) await l.broker.connection?.close().catch(() => {})
      }
      for (const end of await done) result(end)
      for (const id of sinks) expect(result(await b.join(id))).toEqual(expected)
    }
    await links['a']!.outboxEmpty()

    // A few more, after the outbox was empty.
    const more = b.spawn('sink', { n: PRUNE_EVERY })
    await b.committed()
    result(await a.join(a.spawn('source', { to: more, n: PRUNE_EVERY, inFlight: 50 })))
    expect(result(await b.join(more))).toEqual(Array.from({ length: PRUNE_EVERY }, (_, i) => i))
    await links['a']!.outboxEmpty()
    await b.committed()

    const taken = rounds * PAIRS * N + PRUNE_EVERY
    const kept = count(b, 'SELECT count(*) FROM received')
    console.log(`received: ${rounds} storm(s), ${taken} messages taken, ${seen.copies} copies ignored, ${kept} ids kept`)
    expect(seen.copies).toBeGreaterThan(0)
    expect(kept).toBeLessThanOrEqual(PRUNE_EVERY)
    expect(count(b, 'SELECT count(*) FROM received WHERE src IS NULL')).toBe(0)
    const [src, base, upto] = b.journal.db.prepare('SELECT src, base, upto FROM received_chains').raw().get() as [string, number, number]
    expect(src).toBe(`a#${a.journal.meta('journal_id')}`)
    expect(upto - base).toBeGreaterThanOrEqual(taken - PRUNE_EVERY - 1)
    // Nothing taken twice: no message left over in an inbox or the dead letters.
    expect(count(b, 'SELECT count(*) FROM inbox')).toBe(0)
    expect(count(b, 'SELECT count(*) FROM dead_letters')).toBe(0)
    expect(count(a, "SELECT n FROM outbox_sent WHERE dest = 'b'")).toBeGreaterThanOrEqual(taken)
  }, 240_000)

  it('ignores a late copy of a message whose id was pruned', async () => {
    const { ns, w } = await openWeaves(cleanups, ['b'], types)
    const b = w['b']!
    const ROWS = PRUNE_EVERY + 200
    const to = b.spawn('sink', { n: ROWS + 1 })
    await b.committed()
    const src = 'x#00112233aabbccdd'
    const env = (sn: number): string => JSON.stringify({ k: 'msg', from: null, to, body: `J${JSON.stringify({ i: sn - 1 })}` })
    const t = new Topology(ns)
    const conn = await amqp.connect(AMQP_URL, { noDelay: true })
    try {
      const ch = await conn.createConfirmChannel()
      // As a relay sends them: rows 1.. of src's outbox, all for b, in batches of 100.
      const publish = (sns: number[]): void => {
        const ids = sns.map((sn) => `m${sn}`)
        ch.publish(t.exchange, 'b', Buffer.from(`{"k":"batch","ids":${JSON.stringify(ids)},"items":[${sns.map(env).join(',')}]}`), {
          persistent: true,
          messageId: `batch:${ids[0]}`,
          headers: { src, sn: sns, prev: sns.map((sn) => (sn === 1 ? null : sn - 1)) },
        })
      }
      for (let sn = 1; sn <= ROWS; sn += 100) publish(Array.from({ length: Math.min(100, ROWS - sn + 1) }, (_, i) => sn + i))
      await ch.waitForConfirms()
      await until('the first prune', () => count(b, 'SELECT count(*) FROM received_chains WHERE src = ?', src) === 1)
      expect(count(b, "SELECT count(*) FROM received WHERE msg_id = 'm5'")).toBe(0)
      // Row 5 again, as the broker would deliver it again; then the last row.
      ch.publish(t.exchange, 'b', Buffer.from(env(5)), { persistent: true, messageId: 'm5', headers: { src, sn: 5, prev: 4 } })
      ch.publish(t.exchange, 'b', Buffer.from(env(ROWS + 1)), { persistent: true, messageId: `m${ROWS + 1}`, headers: { src, sn: ROWS + 1, prev: ROWS } })
      await ch.waitForConfirms()
    } finally {
      await conn.close()
    }
    expect(result(await b.join(to))).toEqual(Array.from({ length: ROWS + 1 }, (_, i) => i))
    expect(count(b, 'SELECT count(*) FROM inbox')).toBe(0)
    expect(count(b, 'SELECT count(*) FROM dead_letters')).toBe(0)
  }, 60_000)
})

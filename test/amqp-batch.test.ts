/**
 * Batches on the wire: the relay packs the consecutive outbox rows for one weave into one AMQP
 * message, and the receiving weave takes each envelope once, by its own id, in order. Weaves a
 * and b in this process, on a real broker: many sends in flight at once (so commits hold many
 * rows), through closed connections (batches published again from the first unconfirmed row),
 * with batching on and off; and a weave that reads a batch built by hand with a duplicate in it.
 */
import amqp from 'amqplib'
import { describe, expect, it } from 'vitest'
import { Topology } from '../src/amqp/topology.js'
import { AMQP_URL, brokerUp, CI, brokerTests } from './support/broker.js'
import { resultOf as result, sink, source } from './support/streams.js'
import { openWeaves, type Weaves } from './support/weaves.js'

const types = { source, sink }
describe.skipIf(!brokerUp && !CI)('batches of envelopes between weaves', () => {
  const cleanups = brokerTests()

  const weaves = (ids: string[], batch?: number): Promise<Weaves> => openWeaves(cleanups, ids, types, batch)

  for (const batch of [undefined, 1, 7]) {
    it(`every message arrives once and in order, through closed connections (batch: ${batch ?? 'default'})`, async () => {
      const { w, links } = await weaves(['a', 'b'], batch)
      const PAIRS = 8
      const N = 600
      const sinks = Array.from({ length: PAIRS }, () => w['b']!.spawn('sink', { n: N }))
      await w['b']!.committed()
      const sources = sinks.map((to) => w['a']!.spawn('source', { to, n: N, inFlight: 50 }))
      // Close both weaves' connections twice while messages are in flight: the relay publishes
      // again from the first unconfirmed row, the consumer gets its unacknowledged ones again.
      for (let k = 0; k < 2; k++) {
        await new Promise((r) => setTimeout(r, 150))
        for (const l of [links['a']!, links['b']!]) await l.broker.connection?.close().catch(() => {})
      }
      for (const id of sources) result(await w['a']!.join(id))
      const expected = Array.from({ length: N }, (_, i) => i)
      for (const id of sinks) expect(result(await w['b']!.join(id))).toEqual(expected)
      await links['a']!.outboxEmpty()
    }, 60_000)
  }

  it('takes each envelope of a batch once, in order, and ignores one it already took', async () => {
    const { ns, w } = await weaves(['b'])
    const to = w['b']!.spawn('sink', { n: 3 })
    await w['b']!.committed()
    const env = (i: number): string => JSON.stringify({ k: 'msg', from: null, to, body: `J${JSON.stringify({ i })}` })
    const t = new Topology(ns)
    const conn = await amqp.connect(AMQP_URL, { noDelay: true })
    try {
      const ch = await conn.createConfirmChannel()
      const publish = (ids: string[], bodies: string[]): void => {
        ch.publish(t.exchange, 'b', Buffer.from(`{"k":"batch","ids":${JSON.stringify(ids)},"items":[${bodies.join(',')}]}`), { persistent: true, messageId: `batch:${ids[0]}` })
      }
      publish(['m0', 'm1'], [env(0), env(1)])
      // Sent again with the next one, as after a lost confirm: m1 is taken once.
      publish(['m1', 'm2'], [env(1), env(2)])
      await ch.waitForConfirms()
    } finally {
      await conn.close()
    }
    expect(result(await w['b']!.join(to))).toEqual([0, 1, 2])
  }, 30_000)
})

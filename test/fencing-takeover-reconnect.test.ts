/**
 * A takeover whose connection is lost before its first generation is in the stream gives up (is
 * fenced) instead of taking the lease again on the next connection: in between, another weave
 * may have taken the lease, chosen the same epoch (the head did not have this one's yet) and
 * released outcomes under it, and an epoch check cannot tell two holders of one epoch apart.
 * Once open (its first generation confirmed under its epoch), a reconnect takes the lease again
 * as before. Real connections to the service broker; the lease is RabbitMQ's exclusive queue.
 */
import amqp, { type ChannelModel } from 'amqplib'
import { describe, expect, it } from 'vitest'
import type { Fenced } from '../src/replication/errors.js'
import { Fencing } from '../src/replication/fencing.js'
import { takeLease } from '../src/replication/lease.js'
import { AMQP_URL, brokerTests, brokerUp, CI, freshNamespace } from './support/broker.js'

describe.skipIf(!brokerUp && !CI)('a takeover that loses its connection', () => {
  const cleanups = brokerTests()

  async function connect(): Promise<ChannelModel> {
    const c = await amqp.connect(AMQP_URL)
    c.on('error', () => {})
    cleanups.push(() => c.close().catch(() => {}))
    return c
  }

  /** A takeover's fencing, its lease taken on a first connection (and checked there): the weave not open yet. */
  async function takingOver(): Promise<{ ns: string; first: ChannelModel; f: Fencing; fenced: Fenced[] }> {
    const ns = freshNamespace()
    const first = await connect()
    expect(await takeLease(first, ns, 'w')).toBe(true)
    const fenced: Fenced[] = []
    const f = new Fencing({ ns, weaveId: 'w', epoch: 2, takeoverAfterMs: 1_000, streamEpoch: () => Promise.resolve(1), fenced: (e) => fenced.push(e), log: () => {}, takenOn: first })
    cleanups.push(() => Promise.resolve(f.close()))
    expect(await f.acquire(first)).toBe(true)
    return { ns, first, f, fenced }
  }

  it('before its first generation: fenced at the next connection, the lease left to others', async () => {
    const { ns, first, f, fenced } = await takingOver()
    await first.close()
    const next = await connect()
    expect(await f.acquire(next)).toBe(false)
    expect(fenced.map((e) => e.code)).toEqual(['RAIMENT_FENCED'])
    expect(fenced[0]!.message).toMatch(/before its first generation was in the stream/)
    // It did not take the lease: another weave can.
    const other = await connect()
    expect(await takeLease(other, ns, 'w')).toBe(true)
  })

  it('once open: a reconnect takes the lease again', async () => {
    const { first, f, fenced } = await takingOver()
    f.opened()
    f.echo(Date.now())
    await first.close()
    const next = await connect()
    expect(await f.acquire(next)).toBe(true)
    expect(fenced).toEqual([])
    expect(f.open()).toBe(true)
  })
})

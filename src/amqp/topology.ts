/**
 * The names of what a weave creates on the broker, all under a namespace so that independent
 * clusters (or test runs) share one broker without seeing each other:
 *
 * - `<ns>.weaves`: a durable direct exchange; routing key = weave id.
 * - `<ns>.weave.<id>`: a durable quorum queue per weave, bound to `<ns>.weaves` with its id. It
 *   outlives its weave, holding what is sent to it while it is down.
 * - `<ns>.beat`: a durable fanout exchange for heartbeats; each weave (and each `raiment weaves`)
 *   reads it through an exclusive, server-named queue that the broker deletes with its connection.
 */
import type { Channel } from 'amqplib'

export const DEFAULT_NAMESPACE = 'raiment'

export class Topology {
  readonly ns: string
  constructor(ns: string) {
    this.ns = ns
  }
  get exchange(): string {
    return `${this.ns}.weaves`
  }
  get beat(): string {
    return `${this.ns}.beat`
  }
  queue(weaveId: string): string {
    return `${this.ns}.weave.${weaveId}`
  }

  /** Declares the exchanges (idempotent). */
  async exchanges(ch: Channel): Promise<void> {
    await ch.assertExchange(this.exchange, 'direct', { durable: true })
    await ch.assertExchange(this.beat, 'fanout', { durable: true })
  }

  /** Declares weave `id`'s queue and binds it (idempotent). */
  async weaveQueue(ch: Channel, id: string): Promise<void> {
    await ch.assertQueue(this.queue(id), { durable: true, arguments: { 'x-queue-type': 'quorum' } })
    await ch.bindQueue(this.queue(id), this.exchange, id)
  }
}

const NAME = /^[A-Za-z0-9_.-]+$/

/** Checks a namespace or weave id at the door: it becomes part of queue names and thread ids. */
export function checkName(what: string, v: string): string | null {
  return NAME.test(v) && v.length <= 100 ? null : `${what} must be 1 to 100 of A-Z a-z 0-9 _ . - (no '/'), got ${JSON.stringify(v)}`
}

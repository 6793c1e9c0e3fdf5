/**
 * Membership: every weave announces itself on the heartbeat exchange (id, host, pid, thread
 * count, registered names) every `intervalMs`, at once when its names change, and once more as
 * `leaving` when it closes; it answers a `probe` (from `raiment weaves`) at once. A weave is live
 * while its last heartbeat is younger than three of its intervals.
 */
import type { Channel, ChannelModel } from 'amqplib'
import type { Topology } from './topology.js'

export interface Beat {
  id: string
  host: string
  pid: number
  threads: number
  names: Record<string, string>
  /** Sender's wall-clock time (ms). */
  at: number
  intervalMs: number
  leaving?: boolean
}

type Message = { beat: Beat } | { probe: true }

export interface Seen extends Beat {
  /** When this process received it (ms). */
  seen: number
}

export class Membership {
  readonly #topology: Topology
  readonly #self: (() => Beat) | null
  readonly #intervalMs: number
  readonly #view = new Map<string, Seen>()
  #ch: Channel | null = null
  #timer: NodeJS.Timeout | null = null

  /** `self` is null for a listener that does not announce itself (`raiment weaves`). */
  constructor(topology: Topology, self: (() => Beat) | null, intervalMs: number) {
    this.#topology = topology
    this.#self = self
    this.#intervalMs = intervalMs
  }

  /** Joins the heartbeat exchange on a new connection and announces this weave. */
  async attach(conn: ChannelModel): Promise<void> {
    const ch = await conn.createChannel()
    ch.on('error', () => {})
    await this.#topology.exchanges(ch)
    const { queue } = await ch.assertQueue('', { exclusive: true, autoDelete: true })
    await ch.bindQueue(queue, this.#topology.beat, '')
    await ch.consume(queue, (m) => m && this.#heard(JSON.parse(m.content.toString()) as Message), { noAck: true })
    this.#ch = ch
    ch.on('close', () => {
      if (this.#ch === ch) this.#ch = null
    })
    if (this.#self !== null) {
      this.beat()
      if (this.#timer === null) {
        this.#timer = setInterval(() => this.beat(), this.#intervalMs)
        this.#timer.unref()
      }
    }
  }

  #heard(m: Message): void {
    if ('probe' in m) {
      this.beat()
      return
    }
    const b = m.beat
    if (b.leaving) this.#view.delete(b.id)
    else this.#view.set(b.id, { ...b, seen: Date.now() })
  }

  #publish(m: Message): void {
    try {
      this.#ch?.publish(this.#topology.beat, '', Buffer.from(JSON.stringify(m)), { contentType: 'application/json' })
    } catch {
      // The channel is closing; the next connection announces again.
    }
  }

  /** Announces this weave now. */
  beat(leaving = false): void {
    if (this.#self === null) return
    this.#publish({ beat: { ...this.#self(), ...(leaving ? { leaving: true } : {}) } })
  }

  /** Asks every weave to announce itself now. */
  probe(): void {
    this.#publish({ probe: true })
  }

  /** Has a weave with this id been heard since this process joined (live or not)? */
  heard(id: string): boolean {
    return this.#view.has(id)
  }

  /** The live weaves, this one included (with its state now), by id. */
  live(now = Date.now()): Seen[] {
    const out = new Map<string, Seen>()
    for (const b of this.#view.values()) if (now - b.seen <= 3 * b.intervalMs) out.set(b.id, b)
    if (this.#self !== null) {
      const me = this.#self()
      out.set(me.id, { ...me, seen: now })
    }
    return [...out.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
  }

  /** Says goodbye (so others drop this weave at once) and stops announcing. */
  async leave(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer)
    this.#timer = null
    this.beat(true)
    const ch = this.#ch
    this.#ch = null
    await ch?.close().catch(() => {})
  }
}

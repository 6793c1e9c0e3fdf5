/**
 * Membership: every weave announces itself on the heartbeat exchange (id, host, pid, thread
 * counts, registered names) every `intervalMs`, at once when its names change, and once more as
 * `leaving` when it closes; it answers a `probe` (from `raiment weaves`, and from every weave as
 * it connects) at once. A `reclaim` of weave W (`askHandBack`: a process starting W again while
 * another hosts it, src/replication/host.ts) goes to the hooks of every weave. A weave is live
 * while its last heartbeat is younger than three of its intervals.
 *
 * The view is complete (`complete`) once this weave has heard every weave connected to the
 * broker: its heartbeat queue has been consuming for three of its intervals since it connected
 * and probed (every connected weave answers a probe at once, and announces itself every interval
 * anyway), and its own latest heartbeat came back through the broker less than three intervals
 * ago (so the channel works now). While the broker is down, or just after connecting, it is not.
 */
import type { Channel, ChannelModel } from 'amqplib'
import type { Topology } from './topology.js'

/**
 * Asks the process that hosts weave `id` (it took it over) to hand it back, on `conn` (one
 * message on the heartbeat exchange: every weave hears it, and only a host of `id` acts on it).
 */
export async function askHandBack(conn: ChannelModel, topology: Topology, id: string): Promise<void> {
  const ch = await conn.createChannel()
  ch.on('error', () => {})
  try {
    await topology.exchanges(ch)
    ch.publish(topology.beat, '', Buffer.from(JSON.stringify({ probe: true, reclaim: id } satisfies Message)), { contentType: 'application/json' })
  } finally {
    await ch.close().catch(() => {})
  }
}

export interface Beat {
  id: string
  host: string
  pid: number
  /** Threads in memory. */
  threads: number
  /** Threads passivated (running, out of memory: src/passivation/); absent from a weave of an earlier build. */
  passivated?: number
  names: Record<string, string>
  /** Names of threads that moved from this weave, not yet announced by their new one: name → thread. */
  moved?: Record<string, string>
  /** Its journal's replication (src/replication/), when it replicates. */
  replication?: { epoch: number; generation: number; lag: { entries: number; bytes: number }; streamBytes: number }
  /** Rows in its outbox at the heartbeat: messages and spawns the broker has not confirmed yet. */
  outbox?: number
  /** The journals this weave process hosts (its own, and those it took over). */
  journals?: string[]
  /** Sender's wall-clock time (ms). */
  at: number
  intervalMs: number
  leaving?: boolean
  /** The weave whose process hosts this one (it took this weave over: src/replication/takeover.ts). */
  hostedBy?: string
  /**
   * It holds its journal's lease and is fenced by it (a weave of a `ReplicatedHost`): only such
   * a weave is taken over when silent, and only such a weave takes others over.
   */
  leased?: true
  /** The thread types it runs (a takeover goes to a weave that runs all of the lost one's). */
  types?: string[]
  /** A leased weave's own takeover time (ms): it is not taken over before it was silent that long. */
  takeoverAfterMs?: number
  /** Silent weaves it will not take over: their journals hold threads of types it does not run. */
  declines?: string[]
  /** Silent weaves it cannot take over: their journal streams are gone (`raiment weaves` says so). */
  streamGone?: string[]
  /**
   * Weaves it heard that are no longer live (they said no goodbye): id → the sender's time of
   * their last heartbeat it heard (`raiment weaves` says since when they are silent). At most
   * GONE_MAX, the latest; absent from a weave of an earlier build.
   */
  gone?: Record<string, number>
}

/** The most weaves a heartbeat names as gone. */
const GONE_MAX = 64

/** A `reclaim` is sent as a probe too: a weave of a version before it answers it as one. */
type Message = { beat: Beat } | { probe: true; reclaim?: string }

export interface Seen extends Beat {
  /** When this process received it (ms). */
  seen: number
}

/** What a weave's membership tells it (both optional). */
export interface MembershipHooks {
  /** A heartbeat of another weave arrived (after the view took it). */
  beat?(b: Beat): void
  /** The view has just become complete (see `complete`). */
  complete?(): void
  /** This weave's own heartbeat came back through the broker. */
  own?(b: Beat): void
  /** A process starting weave `id` again asks the one that hosts it to hand it back. */
  reclaim?(id: string): void
}

export class Membership {
  readonly #topology: Topology
  readonly #self: (() => Beat) | null
  readonly #intervalMs: number
  readonly #hooks: MembershipHooks
  readonly #view = new Map<string, Seen>()
  #ch: Channel | null = null
  #timer: NodeJS.Timeout | null = null
  /** When the current heartbeat channel started consuming (and probed); null without one. */
  #since: number | null = null
  #completeTimer: NodeJS.Timeout | null = null
  /** This weave's id (null for a listener). */
  #selfId: string | null = null

  /** `self` is null for a listener that does not announce itself (`raiment weaves`). */
  constructor(topology: Topology, self: (() => Beat) | null, intervalMs: number, hooks: MembershipHooks = {}) {
    this.#topology = topology
    this.#self = self
    this.#intervalMs = intervalMs
    this.#hooks = hooks
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
      if (this.#ch !== ch) return
      this.#ch = null
      this.#since = null
    })
    if (this.#self !== null) {
      this.#selfId = this.#self().id
      // Every weave connected now announces itself at once: the view is complete soon after.
      this.#since = Date.now()
      this.probe()
      this.#awaitComplete(3 * this.#intervalMs + 1)
      this.beat()
      if (this.#timer === null) {
        this.#timer = setInterval(() => this.beat(), this.#intervalMs)
        this.#timer.unref()
      }
    }
  }

  #heard(m: Message): void {
    if ('probe' in m) {
      if (typeof m.reclaim === 'string') this.#hooks.reclaim?.(m.reclaim)
      else this.beat()
      return
    }
    const b = m.beat
    if (b.leaving) this.#view.delete(b.id)
    else this.#view.set(b.id, { ...b, seen: Date.now() })
    if (b.id !== this.#selfId) this.#hooks.beat?.(b)
    else this.#hooks.own?.(b)
  }

  /** Tells the hook once the view is complete: looks after `ms`, and again each interval until it is (while connected). */
  #awaitComplete(ms: number): void {
    if (this.#completeTimer !== null) clearTimeout(this.#completeTimer)
    this.#completeTimer = setTimeout(() => {
      this.#completeTimer = null
      if (this.complete()) this.#hooks.complete?.()
      else if (this.#since !== null) this.#awaitComplete(this.#intervalMs)
    }, ms)
    this.#completeTimer.unref()
  }

  /** Has this weave heard every weave connected to the broker? (See the top of this file.) */
  complete(now = Date.now()): boolean {
    const window = 3 * this.#intervalMs
    if (this.#ch === null || this.#since === null || now - this.#since < window || this.#selfId === null) return false
    const mine = this.#view.get(this.#selfId)
    return mine !== undefined && now - mine.seen <= window
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
    const gone = leaving ? undefined : this.#gone()
    this.#publish({ beat: { ...this.#self(), ...(gone !== undefined ? { gone } : {}), ...(leaving ? { leaving: true } : {}) } })
  }

  /** The weaves heard that are no longer live, with the time of their last heartbeat (see `Beat.gone`); undefined: none. */
  #gone(now = Date.now()): Record<string, number> | undefined {
    const gone = [...this.#view.values()].filter((b) => b.id !== this.#selfId && now - b.seen > 3 * b.intervalMs)
    if (gone.length === 0) return undefined
    gone.sort((a, b) => b.at - a.at)
    return Object.fromEntries(gone.slice(0, GONE_MAX).map((b) => [b.id, b.at]))
  }

  /** Asks every weave to announce itself now. */
  probe(): void {
    this.#publish({ probe: true })
  }

  /**
   * When this weave sent its own latest heartbeat that came back through the broker (null: none
   * yet): what it has read of the heartbeat queue holds every heartbeat the broker had by then.
   */
  get ownEcho(): number | null {
    return this.#selfId === null ? null : (this.#view.get(this.#selfId)?.at ?? null)
  }

  /** Since when the current heartbeat channel has been consuming (ms), or null without one. */
  get since(): number | null {
    return this.#since
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

  /**
   * Says goodbye (so others drop this weave at once) and stops announcing; with `goodbye` false
   * it only stops announcing, so others find it silent (a weave that must not look retired).
   */
  async leave(goodbye = true): Promise<void> {
    if (this.#timer) clearInterval(this.#timer)
    this.#timer = null
    if (this.#completeTimer) clearTimeout(this.#completeTimer)
    this.#completeTimer = null
    this.#since = null
    if (goodbye) this.beat(true)
    const ch = this.#ch
    this.#ch = null
    await ch?.close().catch(() => {})
  }
}

/**
 * Fencing: a replicated weave releases an outcome to a thread, and publishes anything, only while
 * it is sure no takeover of its journal can have begun.
 *
 * The argument (docs/host-loss.md, "The lease"):
 * - A takeover of weave W begins only once a candidate holds W's lease (src/replication/lease.ts)
 *   AND has heard no heartbeat of W for `takeoverAfterMs`, counted while its own heartbeat
 *   consumer ran (src/replication/takeover.ts).
 * - W's gate is open only while (1) the lease is held on W's current connection, taken on it and
 *   checked against the stream's epoch (no higher epoch: nobody took W over meanwhile), and
 *   (2) W's own latest heartbeat that came back through the broker was sent less than
 *   `(1 - MARGIN) * takeoverAfterMs` ago. A heartbeat that came back reached the fanout, so every
 *   candidate consuming then heard it: none can begin a takeover before it was sent +
 *   takeoverAfterMs. (2) is checked at each release, synchronously, so a weave that was frozen
 *   (SIGSTOP) finds its gate closed the moment it runs again, before it reads anything from
 *   its sockets (confirms of records sent before the freeze can arrive after the lease moved).
 * - Any connection loss closes the gate (the lease went with the connection) until the lease is
 *   taken again on the new connection and the epoch checked. While another holds it (W's own
 *   previous connection, which the broker drops only after its heartbeat timeout, or a taker),
 *   the gate stays closed and W looks at the stream's epoch: a higher one (a taker opened W's
 *   journal under it: it releases only then) fences W for good, the gate never opens again and
 *   `fenced` is called once. A taker that dies before that lets the lease go with its
 *   connection, and W, taking it again, finds its own epoch and goes on: nothing ran elsewhere.
 *   That holds because every weave that runs W's journal (a takeover; and every start over W's
 *   stream, a file restored from it included: src/replication/host.ts, `#ownEpoch`) does so
 *   at a new epoch, above the stream's and its file's, chosen under the lease and written by
 *   its first generation before any of its threads resumes (and given up, `takenOn`, should its
 *   connection go before that): the stream's epoch is W's own only while no other ran W since.
 *   (A stale heartbeat alone is no proof of a takeover: fencing on it stopped a weave whose
 *   takeoverAfterMs is below the broker's heartbeat timeout at any blip, with no taker.)
 *
 * Held releases are kept in order and run, in order, when the gate opens; never once fenced.
 */
import type { ChannelModel } from 'amqplib'
import { Fenced } from './errors.js'
import { takeLease } from './lease.js'

/** The share of takeoverAfterMs kept as a margin for clocks and scheduling between this weave and a candidate. */
export const MARGIN = 0.3
/** The shortest takeoverAfterMs (ms). */
export const MIN_TAKEOVER_AFTER_MS = 1_000
/** How often a closed gate, or a lease held by another, is looked at again (ms). */
const RETRY_MS = 250
/** How often the stream's epoch is read while another holds the lease (ms). */
const EPOCH_EVERY_MS = 1_000

export interface FencingOptions {
  ns: string
  weaveId: string
  /** The epoch this weave writes its journal stream with. */
  epoch: number
  takeoverAfterMs: number
  /** The highest epoch in this weave's journal stream (src/replication/epoch.ts). */
  streamEpoch: (conn: ChannelModel) => Promise<number>
  /** Called once, when this weave is fenced. */
  fenced: (err: Fenced) => void
  log: (line: string) => void
  /**
   * A takeover's, or a start's at a new epoch over a stream that exists (every start but a new
   * journal's): the connection its lease was taken on before the epoch was chosen. Until
   * `opened` (its first generation confirmed, under the epoch it chose), a lease taken again on
   * any other connection fences it: in between, another weave may have taken the lease, chosen
   * that same epoch (the head did not have this one's yet) and released outcomes under it.
   */
  takenOn?: ChannelModel
}

export class Fencing {
  readonly #o: FencingOptions
  /** The connection the lease is held on and checked, or null (gate closed). */
  #conn: ChannelModel | null = null
  /** Send time of this weave's latest heartbeat that came back through the broker (ms). */
  #echoAt = 0
  #fenced: Fenced | null = null
  #held: Array<() => void> = []
  #timer: NodeJS.Timeout | null = null
  readonly #attempts = new WeakMap<ChannelModel, Promise<boolean>>()
  /** How old (ms) the latest heartbeat that came back may be for the gate to be open. */
  readonly #fresh: number
  /** The weave is open: its first generation is in the stream under its epoch. */
  #opened = false
  /** Why the stream's epoch could not be read, said once while it stays so (null: read). */
  #unread: string | null = null

  constructor(o: FencingOptions) {
    if (!(o.takeoverAfterMs >= MIN_TAKEOVER_AFTER_MS)) throw new RangeError(`takeoverAfterMs must be ${MIN_TAKEOVER_AFTER_MS} or more, got ${o.takeoverAfterMs}`)
    this.#o = o
    this.#fresh = (1 - MARGIN) * o.takeoverAfterMs
  }

  get weaveId(): string {
    return this.#o.weaveId
  }

  get epoch(): number {
    return this.#o.epoch
  }

  get fenced(): Fenced | null {
    return this.#fenced
  }

  /** Is the gate open now? (See the top of this file.) */
  open(now = Date.now()): boolean {
    return this.#fenced === null && this.#conn !== null && now - this.#echoAt < this.#fresh
  }

  /** Runs `fn` now if the gate is open, else once it opens (never, once fenced). */
  release(fn: () => void): void {
    if (this.#held.length === 0 && this.open()) {
      fn()
      return
    }
    if (this.#fenced !== null) return
    this.#held.push(fn)
    this.#look()
  }

  /** Runs a batch of releases in order (the journal's `after` callbacks of one commit). */
  releaseAll(fns: ReadonlyArray<() => void>): void {
    if (this.#held.length === 0 && this.open()) {
      for (let i = 0; i < fns.length; i++) fns[i]!()
      return
    }
    if (this.#fenced !== null) return
    for (const fn of fns) this.#held.push(fn)
    this.#look()
  }

  /** This weave's own heartbeat, sent at `at`, came back through the broker. */
  echo(at: number): void {
    if (at > this.#echoAt) this.#echoAt = at
    this.#drain()
  }

  /**
   * Called on every new connection before anything is consumed or published on it: takes the
   * lease on it and checks the epoch. True: go on with this connection. False: do not use it
   * (fenced, or the connection failed; the next one asks again).
   */
  acquire(conn: ChannelModel): Promise<boolean> {
    // The link and the replicator both ask, for the same connection: one attempt answers both.
    let p = this.#attempts.get(conn)
    if (p === undefined) {
      p = this.#acquire(conn)
      this.#attempts.set(conn, p)
    }
    return p
  }

  /** The weave opened: its first generation is confirmed (see `takenOn`). */
  opened(): void {
    this.#opened = true
  }

  async #acquire(conn: ChannelModel): Promise<boolean> {
    this.#conn = null
    const first = this.#o.takenOn
    if (first !== undefined && conn !== first && !this.#opened) {
      this.fence(`its connection was lost while it took the journal at a new epoch (${this.#o.epoch}: a takeover, or a start over its stream), before its first generation was in the stream: another weave may have taken it meanwhile at the same epoch`)
      return false
    }
    let epochAt = 0
    let said = false
    for (;;) {
      if (this.#fenced !== null) return false
      let got: boolean
      try {
        got = await takeLease(conn, this.#o.ns, this.#o.weaveId)
      } catch {
        return false // the connection went: the next one tries again
      }
      if (got) break
      // Held by another: our own previous connection the broker has not dropped yet, or a taker.
      if (Date.now() - epochAt >= EPOCH_EVERY_MS) {
        epochAt = Date.now()
        if (!(await this.#epochChecked(conn))) return false
        if (!said && Date.now() - this.#echoAt >= this.#fresh) {
          said = true
          this.#o.log(`raiment: weave ${this.#o.weaveId}: its lease is held by another connection (its own lost one, until the broker drops it, or a weave taking it over); its threads wait`)
        }
      }
      await new Promise((r) => setTimeout(r, RETRY_MS))
    }
    if (!(await this.#epochChecked(conn))) return false
    this.#conn = conn
    conn.once('close', () => this.down(conn))
    this.#drain()
    return true
  }

  /** False when the stream's epoch is above this weave's (fenced now) or cannot be read (`conn` closed). */
  async #epochChecked(conn: ChannelModel): Promise<boolean> {
    let epoch: number
    try {
      epoch = await this.#o.streamEpoch(conn)
    } catch (e) {
      // Said once while it fails for the same reason (each new connection reads it again).
      const why = (e as Error).message
      if (why !== this.#unread) this.#o.log(`raiment: weave ${this.#o.weaveId}: cannot read the epoch of its journal stream (${why}); retrying with the next connection (said again once read, or when the reason changes)`)
      this.#unread = why
      await conn.close().catch(() => {})
      return false
    }
    if (this.#unread !== null) this.#o.log(`raiment: weave ${this.#o.weaveId}: read the epoch of its journal stream again`)
    this.#unread = null
    if (epoch > this.#o.epoch) {
      this.fence(`its journal stream is at epoch ${epoch}, this weave writes epoch ${this.#o.epoch}: it was taken over`)
      return false
    }
    return true
  }

  /** The connection `conn` was lost: the gate closes until `acquire` succeeds on another. */
  down(conn?: ChannelModel): void {
    if (conn === undefined || this.#conn === conn) this.#conn = null
  }

  /** Closes the gate for good and tells the owner, once. */
  fence(why: string): void {
    if (this.#fenced !== null) return
    this.#fenced = new Fenced(this.#o.weaveId, `it lost its lease: ${why}`)
    this.#conn = null
    this.#held = []
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#timer = null
    this.#o.fenced(this.#fenced)
  }

  /** Stops looking (the weave closes). */
  close(): void {
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#timer = null
  }

  #drain(): void {
    if (this.#held.length === 0 || !this.open()) {
      if (this.#held.length > 0) this.#look()
      return
    }
    const held = this.#held
    this.#held = []
    for (let i = 0; i < held.length; i++) held[i]!()
  }

  /** While releases wait: a closed gate opens on an event (echo, acquire); this only notices a stale echo going stale. */
  #look(): void {
    if (this.#timer !== null || this.#fenced !== null) return
    this.#timer = setTimeout(() => {
      this.#timer = null
      this.#drain()
    }, RETRY_MS)
    this.#timer.unref()
  }
}

/**
 * Takeover: which live weave takes over a replicated weave that stopped heartbeating, and when.
 *
 * Invariants:
 * - A weave W is taken over only when its heartbeats say it is replicated and holds its lease
 *   (`leased`: a weave opened with `replicate` outside a ReplicatedHost has no lease to fence it,
 *   so two copies of it would run), it did not say
 *   goodbye (`leaving`: a weave stopped on purpose is restarted by its operator, not taken over),
 *   and this process has heard nothing from it for `takeoverAfterMs` (or W's own, if longer:
 *   W's gate stays open up to 70 % of its own, src/replication/fencing.ts), counted from the later of
 *   its last heartbeat and the moment this weave's heartbeat consumer started (a weave that just
 *   connected has not been listening long enough to call anyone silent), up to the sending of its
 *   own latest heartbeat that came back through the broker, not up to now: what it has read of its
 *   heartbeat queue vouches for the silence only that far (a weave whose event loop stalled runs
 *   its timers before it reads the heartbeats waiting in its socket). Fencing relies on this
 *   (src/replication/fencing.ts).
 * - One candidate: the owner of W's id on the ring of the live, leased weaves that are not
 *   themselves hosted and do not decline W (src/amqp/ring.ts). A weave without one of W's
 *   thread types would end W's threads of it failed, for good, so it declines W, and says so
 *   in its heartbeats (`declines`): at once when W said it runs a type this weave does not
 *   (in its heartbeats, or its registry record), else when its rebuild of W's journal finds a
 *   thread of such a type (the journal is the authority: W may have said fewer, by an older
 *   record or a reload, or more, as a hosted weave says its host's types, which count for
 *   nothing here). It declines W no more once it runs them (a reload), or W is heard again.
 *   None left: W waits, and each weave logs it once. Every weave with the same view picks the
 *   same one (types do not choose, declines do, and they reach every weave); if views differ,
 *   the lease still lets one at a time through (src/replication/lease.ts).
 * - If the candidate dies (even mid-rebuild), its lease goes with its connection and it leaves
 *   the ring three heartbeats later: the next owner on the ring tries.
 */
import type { Beat, Membership } from '../amqp/membership.js'
import { Ring } from '../amqp/ring.js'
import { TakeoverLacksTypes } from './errors.js'
import type { Registered } from './registry.js'
import { JournalStreamGone, NoJournalStream } from './streams.js'

export const DEFAULT_TAKEOVER_AFTER_MS = 10_000
/** How often silences are looked at (ms). */
const LOOK_MS = 250
/** After a failed or refused attempt, the next one waits this long (ms). */
const RETRY_MS = 1_000
/**
 * A weave whose journal stream is gone (deleted before any takeover) is tried again this much
 * later (ms): only its own file holds its threads now, and no rebuild finds them until its
 * stream is back (it is started again on its disk, and writes a new one).
 */
const GONE_RETRY_MS = 60_000

interface Heard {
  /** When this process last heard it (ms). */
  at: number
  /** The thread types it said it runs (unknown for a weave only a registry record of an older version named). */
  types?: string[]
  /** Its own takeover time (ms), if it said one. */
  afterMs?: number
}

export interface TakeoverOptions {
  takeoverAfterMs: number
  /**
   * Takes weave `id` over: resolves true once it runs here, false when its lease was held by
   * another (try again later); rejects on failure (logged, tried again later).
   */
  takeOver: (id: string) => Promise<boolean>
  /** Journals this process hosts already (never taken over by itself). */
  hosted: () => ReadonlySet<string>
  /** The thread types this weave runs now. */
  types: () => readonly string[]
  log: (line: string) => void
}

export class Takeovers {
  readonly #o: TakeoverOptions
  readonly #heard = new Map<string, Heard>()
  readonly #busy = new Set<string>()
  /** Not before this time (ms) is a weave whose lease was held tried again. */
  readonly #notBefore = new Map<string, number>()
  /** Silent weaves every live weave declines (said once each). */
  readonly #unrunnable = new Set<string>()
  /** Silent weaves this weave declines, each with the types it lacks for them (its heartbeats say so). */
  readonly #declined = new Map<string, string[]>()
  /** Silent weaves whose journal stream is gone (said once each, until heard or taken over). */
  readonly #gone = new Set<string>()
  #members: Membership | null = null
  #timer: NodeJS.Timeout | null = null
  /** This weave's id (its name on the ring), once its journal is open. */
  #self: string | null = null

  constructor(o: TakeoverOptions) {
    this.#o = o
  }

  setSelf(id: string): void {
    this.#self = id
  }

  /** Starts looking, with the membership of this weave's link. */
  start(members: Membership): void {
    this.#members = members
    if (this.#timer === null) {
      this.#timer = setInterval(() => this.look(), LOOK_MS)
      this.#timer.unref()
    }
  }

  /**
   * A heartbeat of another weave arrived. A goodbye of a weave taken over (its host closes) is
   * no stop on purpose: it is taken over again once silent.
   */
  heard(b: Beat): void {
    // Alive (or hosted elsewhere): declined no more, its stream written again, and once silent
    // again taken over after its takeover time, not after a wait set while it was lost.
    this.#declined.delete(b.id)
    this.#gone.delete(b.id)
    this.#notBefore.delete(b.id)
    if ((b.leaving && b.hostedBy === undefined) || b.replication === undefined || b.leased !== true) {
      this.#heard.delete(b.id)
      return
    }
    const h: Heard = { at: Date.now() }
    // A hosted weave runs its host's types, which say nothing of its threads'.
    if (b.types !== undefined && b.hostedBy === undefined) h.types = b.types
    if (typeof b.takeoverAfterMs === 'number') h.afterMs = b.takeoverAfterMs
    this.#heard.set(b.id, h)
  }

  /**
   * Replicated weaves that should be running (src/replication/registry.ts): those not heard yet
   * count as silent from the moment this weave started listening.
   */
  registered(weaves: ReadonlyMap<string, Registered>): void {
    for (const [id, self] of weaves) {
      if (this.#heard.has(id)) continue
      const h: Heard = { at: 0 }
      if (self.types !== undefined) h.types = self.types
      if (self.afterMs !== undefined) h.afterMs = self.afterMs
      this.#heard.set(id, h)
    }
  }

  /** The weaves this process has heard are silent now, with how long (ms). */
  silent(now = Date.now()): Map<string, number> {
    const out = new Map<string, number>()
    const since = this.#members?.since ?? null
    const upTo = Math.min(now, this.#members?.ownEcho ?? -Infinity)
    if (since === null) return out
    for (const [id, h] of this.#heard) {
      const quiet = upTo - Math.max(h.at, since)
      if (quiet >= Math.max(this.#o.takeoverAfterMs, h.afterMs ?? 0)) out.set(id, quiet)
    }
    return out
  }

  /** The weave that should take `id` over, on the ring of the live candidates that do not decline it (null: none). */
  candidate(id: string): string | null {
    const live = this.#members?.live() ?? []
    const ids = live
      .filter((b) => b.replication !== undefined && b.leased === true && b.hostedBy === undefined && b.id !== id && b.declines?.includes(id) !== true)
      .map((b) => b.id)
    return new Ring(ids).owner(id)
  }

  /** For this weave's heartbeats: the silent weaves it cannot take over, their journal streams gone, if any. */
  streamGone(): { streamGone?: string[] } {
    return this.#gone.size === 0 ? {} : { streamGone: [...this.#gone] }
  }

  /**
   * For this weave's heartbeats: the silent weaves it declines to take over, if any; one whose
   * types it runs now (a reload) is declined no more.
   */
  declines(): { declines?: string[] } {
    const own = this.#o.types()
    for (const [id, lacks] of this.#declined) if (lacks.every((t) => own.includes(t))) this.#declined.delete(id)
    return this.#declined.size === 0 ? {} : { declines: [...this.#declined.keys()] }
  }

  /** This weave declines `id`, for want of `lacks`: logged once a weave, its heartbeats say it from now on. */
  #decline(id: string, lacks: string[], line: string): void {
    this.#declined.set(id, lacks)
    this.#o.log(line)
  }

  look(now = Date.now()): void {
    const hosted = this.#o.hosted()
    for (const [id] of this.silent(now)) {
      if (this.#self === null || this.#busy.has(id) || hosted.has(id) || id === this.#self || (this.#notBefore.get(id) ?? 0) > now) continue
      const candidate = this.candidate(id)
      if (candidate === null && !this.#unrunnable.has(id)) {
        this.#unrunnable.add(id)
        this.#o.log(`raiment: weave ${id} is silent, and every live weave lacks one of its thread types: it is taken over once a weave that runs them all joins`)
      }
      // Declined already: its own heartbeat saying so may not have come back yet.
      if (candidate !== this.#self || this.#declined.has(id)) continue
      this.#unrunnable.delete(id)
      const own = this.#o.types()
      const lacks = (this.#heard.get(id)?.types ?? []).filter((t) => !own.includes(t))
      if (lacks.length > 0) {
        this.#decline(id, lacks, `raiment: weave ${id} is silent, and runs thread types this weave does not (${lacks.join(', ')}): left to a weave that runs them all`)
        continue
      }
      this.#busy.add(id)
      this.#o
        .takeOver(id)
        .then(
          (took) => {
            // Taken: its heartbeats (from this process now) will say so. Held: look again later.
            if (took) {
              this.#heard.delete(id)
              this.#gone.delete(id)
            } else this.#notBefore.set(id, Date.now() + RETRY_MS)
          },
          (e: Error) => {
            this.#notBefore.set(id, Date.now() + RETRY_MS)
            // Its journal holds threads of types it did not say it runs (an older record, a
            // reload, a hosted weave): declined; the other weaves learn it from the heartbeats.
            if (e instanceof TakeoverLacksTypes) this.#decline(id, e.types, `raiment: ${e.code}: ${e.message}`)
            else if (streamGone(e)) this.#streamGone(id, e)
            else this.#o.log(`raiment: taking over weave ${id} failed (${e.message}); trying again`)
          },
        )
        .finally(() => this.#busy.delete(id))
    }
  }

  /**
   * Weave `id` cannot be taken over, its stream gone: said once, tried again rarely. Always as
   * RAIMENT_JOURNAL_STREAM_GONE (as `raiment weaves` says it): a weave heard or registered as
   * replicated had a stream, so a missing head (NoJournalStream) is a stream gone too, not a
   * weave that never replicated.
   */
  #streamGone(id: string, e: JournalStreamGone | NoJournalStream): void {
    this.#notBefore.set(id, Date.now() + GONE_RETRY_MS)
    if (this.#gone.has(id)) return
    this.#gone.add(id)
    // Its head, which still names the generation gone (a start on a new file is refused while it does).
    const head = e instanceof JournalStreamGone ? e.queue.replace(/~\d+$/, '') : `${e.ns}.journal.${e.weaveId}`
    const what =
      e instanceof JournalStreamGone
        ? e.message
        : `its head stream ${e.ns}.journal.${e.weaveId} is missing or names no generation, though the weave replicated: deleted by an operator, or lost with the broker nodes that held it; nothing can be rebuilt from it`
    this.#o.log(
      `raiment: RAIMENT_JOURNAL_STREAM_GONE: weave ${id} cannot be taken over: its journal stream is gone (${what}). ` +
        `Its threads are in its own journal file only now: start it again on its own disk (raiment start --replicate --id ${id} --db ITS_FILE), and it writes its stream anew from that file; ` +
        `raiment restore cannot rebuild it either. If that file is lost too, so are its threads: delete what is left of its stream (rabbitmqctl delete_queue ${head}), start a weave under --id ${id} on a new file and stop it (Ctrl-C), and its record in the registry says it stopped. ` +
        `Until then this weave tries again each ${GONE_RETRY_MS / 1000} s, saying nothing more`,
    )
  }

  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer)
    this.#timer = null
  }
}

/** A takeover that failed for want of the journal's stream (gone before it was read, or with its head). */
function streamGone(e: Error): e is JournalStreamGone | NoJournalStream {
  return (e instanceof JournalStreamGone && e.missing) || e instanceof NoJournalStream
}

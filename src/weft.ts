/**
 * The weft: the per-thread interceptor between a thread and its I/O libraries.
 *
 * Invariants:
 * - A call is found by (key, ordinal): key = library, method and canonical arguments; the
 *   ordinal counts earlier calls with the same key in this thread, in the order they were made.
 * - Outcomes reach the thread in completion order, one at a time, and the thread's microtasks
 *   drain between two releases (live and replayed alike), so code that reacts to whichever call
 *   finishes first behaves the same on replay as it did live.
 * - Live, an outcome reaches the thread only after the journal has made it durable, or, for a
 *   journal-only call, early: before its commit, while the thread's other calls wait for it
 *   (src/weft-pending.ts).
 * - On replay, a call goes to its recorded entry (src/weft-replay.ts); one the record does not
 *   hold goes live only once the replay is over.
 * - Once stopped (killed, diverged), every pending and later call rejects with the same error.
 * - A live call with a retry policy makes its attempts in src/retry/ (run.ts); only its final
 *   outcome is recorded and released here, as any call's is.
 *
 * The weft owns the calls' keys and the live calls: their making, recording and release, and
 * the thread's end, stop, cancel and detach. Its base classes own the replay and the state the
 * two sides share (src/weft-replay.ts), the count of ordinals by key (src/weft-keys.ts), and the
 * calls not yet settled and the release of live outcomes, durable or early (src/weft-pending.ts).
 */
import { performance } from 'node:perf_hooks'
import { callIdOfCall, enterCall } from './call-context.js'
import { crashArmed, crashPoint, traceCall } from './crash-points.js'
import { encodeArgs } from './encoding.js'
import type { Library, WeftLike } from './libraries.js'
import type { RunObservation } from './observer.js'
import { abort, askLibrary, Call, keptHook } from './call.js'
import { forget, isMarked, marksOf, unmark } from './in-flight.js'
import { cancelFails, cancelling, deferCancel, takeCancel } from './cancel.js'
import type { ThreadCancelled } from './errors.js'
import type { CallTrace, WeftOptions } from './weft-options.js'
import { WeftReplay } from './weft-replay.js'
import { recordOutcome } from './weft-outcomes.js'
import type { Policy, ThreadRetry } from './retry/policy.js'
import { callRetry } from './retry/resolve.js'
import { retryCall, weftRetryHost, type RetryHost } from './retry/run.js'
import { LONG_RECORD, longRecord, warnOnce } from './continue/long-record.js'

export { describeKey, splitKey, type Entry } from './replay-record.js'
export type { CallTrace, WeftOptions } from './weft-options.js'
export { releasedOutcomes, replayTick } from './replay-rounds.js'

export class Weft extends WeftReplay implements WeftLike {
  /** The thread's call scope, as a number (src/call-context.ts `scopeNumber`), -1 for none. */
  readonly scope: number
  readonly trace: CallTrace[] | null
  readonly #onDurable: (() => void) | undefined
  readonly #observe: RunObservation | null
  readonly #retry: ThreadRetry | null
  readonly #onWait: ((weft: Weft) => void) | null
  /** What the retry runner calls back (made at the first call that has a policy). */
  #retryHost: RetryHost | null = null
  /** The journal epoch in which this thread last queued an entry (its batch). */
  #batch = -1
  /** Set by detach() before the thread's function ended: the weave has let go of the thread, so no library call starts any more. */
  #detached = false

  constructor(o: WeftOptions) {
    super(o)
    this.scope = o.scope ?? -1
    this.#onDurable = o.onDurable
    this.#observe = o.observe ?? null
    this.#retry = o.retry ?? null
    this.#onWait = o.onWait ?? null
    this.trace = o.trace ? [] : null
  }

  get stopped(): Error | null {
    return this.stoppedBy
  }

  call(lib: Library, method: string, args: unknown[]): Promise<unknown> {
    if (this.stoppedBy !== null) return Promise.reject(this.stoppedBy)
    // Ended or detached: a branch still running makes no call (not recorded, never answered).
    if (this.ended || this.holding !== 0) return this.refused()
    let argsText: string
    let plain: boolean
    let retry: Policy | null = null
    try {
      // Retries (src/retry/): the call's policy, and its own `retry` option off the arguments.
      if (lib.retry !== null || this.#retry !== null) ({ args, policy: retry } = callRetry(lib, method, args, this.#retry))
      const s = this.secrets
      plain = s === null || !s.covers(lib)
      argsText = s === null || plain ? encodeArgs(args) : s.argsText(lib, method, args)
    } catch (e) {
      return Promise.reject(e)
    }
    const prefix = lib.keyPrefix(method)
    let key: string
    let ord: number
    // A call replayed from its entry is not made: no copy of its arguments for the library (null).
    let copy: 'json' | 'exact' | null = null
    const r = this.replay
    const next = r === null ? undefined : r.record.at(r.next)
    const k = next?.key
    if (k !== undefined && k.length === prefix.length + argsText.length && k.endsWith(argsText) && k.startsWith(prefix)) {
      // Replaying a thread that asks in recorded order, the next entry holds this same key (compared
      // in its two parts, not joined and flattened): the call takes the entry's string. A key's
      // first call, matched so, is counted by its entry, not in the counts (see KeyCounts).
      key = k
      if (next!.ord === 0 && next!.call === null && !this.counted(k)) {
        r!.implicit.push(r!.next)
        ord = 0
      } else ord = this.count(key)
    } else {
      // Live, the key is kept (the call, the counts): joined, one flat string (a concatenation is a
      // cons string holding its parts, later its flat copy too); without arguments, the library's.
      key = r !== null ? prefix + argsText : argsText === '[]' ? lib.bareKey(method) : [prefix, argsText].join('')
      ord = this.count(key)
      // With no secret marked, arguments recorded as JSON (not superjson's 'S'/'E' text) are exactly JSON.
      copy = plain && argsText.charCodeAt(0) === 91 /* [ */ ? 'json' : 'exact'
    }
    const call = new Call(this.threadId, lib, method, args, key, ord, this.config, this.scope, copy)
    call.retry = retry
    if (this.trace !== null) this.trace.push({ call: `${lib.name}.${method}`, args })
    if (this.stacks !== null) this.stacks.set(call, new Error().stack ?? '')
    this.addPending(call)
    if (this.replay !== null) this.request(this.replay, call)
    else if (!this.holdUntilSure(call)) this.live(call)
    return call.promise
  }

  protected live(call: Call): void {
    const marks = marksOf(this)
    if (marks !== undefined && this.inFlightBefore(call, marks)) return
    if (this.journal === null) return this.pastRecord(call)
    const cancel = takeCancel(this, this.journal, this.threadId)
    if (cancel !== undefined) return void Promise.resolve(cancel).then((e) => this.#cancelled(call, e))
    if (this.secrets !== null && this.secrets.holdsUnopened(call.args)) {
      // Held, neither made nor answered: resumed with its key, the thread makes it (docs/secrets.md).
      warnOnce(this.config, this.threadId, this.secrets.held(this.threadId, this.type, `${call.lib.name}.${call.method}`))
      return
    }
    if (call.retry !== null) {
      this.#retrying(call)
      return
    }
    const q = call.lib.queue
    if (q !== null) void q.add(() => this.#gatedInvoke(call))
    else void this.#gatedInvoke(call)
  }

  /**
   * Makes `call` once the journal's gate lets the owner act (a replicated weave's fencing: see
   * src/retry/run.ts), as it leaves its library's queue: a call that waited there follows no
   * release, so a weave frozen or cut off meanwhile, whose journal another weave took over, would
   * make it beside the weave that runs the thread now. An open gate, or none, costs nothing.
   */
  #gatedInvoke(call: Call): Promise<void> {
    const gate = this.journal?.gated() ?? null
    return gate === null ? this.#invoke(call) : gate.then(() => this.#invoke(call))
  }

  #invoke(call: Call): Promise<void> {
    const p = this.#attempt(call)
    if (p === null) return Promise.resolve()
    return p.then(
      (v) => this.#complete(call, true, v),
      (e: unknown) => this.#complete(call, false, e),
    )
  }

  /** `call`, made live with a cancel put off to it, fails with it, unasked: recorded (and traced) as its outcome. */
  #cancelled(call: Call, e: ThreadCancelled): void {
    this.#start(call)
    cancelFails(this, call)
    this.#complete(call, false, e)
  }

  /** Asks the library for `call`, once; null when the weave has let go of the thread meanwhile. */
  #attempt(call: Call): Promise<unknown> | null {
    // Not made once the weave let go of the thread (resumed later, it makes it again), nor while
    // it is held (a move, a stop) unless it has ended meanwhile: no run would make it again.
    if (this.stoppedBy !== null || this.#detached) return null
    if (this.holding !== 0 && !this.ended) {
      void this.refused()
      return null
    }
    this.#start(call)
    if (crashArmed) traceCall(callIdOfCall(call), `${call.lib.name}.${call.method}`)
    // Made by a function that has ended (no run makes it again): no row.
    if (!this.ended) this.journal!.started(call)
    let p: unknown
    enterCall(call)
    try {
      p = askLibrary(call)
    } catch (e) {
      // Whatever the library threw is the call's outcome, error or not.
      p = Promise.reject(e)
    } finally {
      enterCall(null)
    }
    if (call.abortHook !== null && this.#onWait !== null) this.#onWait(this)
    return Promise.resolve(p)
  }

  #start(call: Call): void {
    call.started = Date.now()
    call.t0 = performance.now()
    // One span for the call, across its attempts (a retried call makes several).
    if (this.#observe !== null && call.obs === null) call.obs = this.#observe.call(call.lib.name, call.method, call.ord, () => callIdOfCall(call))
  }

  /** A call with a retry policy: src/retry/ makes its attempts and waits; its final outcome is recorded here. */
  #retrying(call: Call): void {
    this.#retryHost ??= weftRetryHost({
      queueOf: (c) => (c as Call).lib.queue,
      gated: () => this.journal!.gated(),
      once: (c) => this.#attempt(c as Call),
      // Not made (the weave let go of the thread): nothing a move must wait for.
      notMade: (c) => ((c as Call).started = 0),
      active: () => this.stoppedBy === null && !this.ended,
      waiting: () => {
        this.checkHeld()
      },
    })
    retryCall(call, call.retry!, this.journal!, this.#retryHost).then(
      (v) => this.#complete(call, true, v),
      (e: unknown) => this.#complete(call, false, e),
    )
  }

  #complete(call: Call, ok: boolean, v: unknown): void {
    call.answered = true
    const recorded = this.stoppedBy === null && !this.ended
    // Unrecorded: cut short if stopped or let go of; if not awaited by an ended function, made all the same.
    if (call.obs !== null) {
      // (Recorded implies not detached: a detach ends the weft.)
      if (this.stoppedBy === null && !this.#detached) call.obs.end(ok, v)
      else call.obs.abandon()
    }
    if (!recorded) return
    // Recorded: an abort is not a wait's any more (only a take's hook is kept: src/call.ts).
    call.unreleased = keptHook(call)
    call.abortHook = null
    if (crashArmed) crashPoint('after-call')
    // What the thread is to see goes to call.ok and call.value (src/weft-outcomes.ts).
    const text = recordOutcome(call, ok, v, this.secrets)
    const seq = this.seq++
    this.added++
    if (this.recorded === LONG_RECORD) longRecord(this.config, this.threadId, this.type)
    const journal = this.journal!
    const newThread = this.#batch !== journal.epoch
    this.#batch = journal.epoch
    // A journal-only call's outcome may reach the thread now, before its commit (src/weft-pending.ts).
    const early = this.#onDurable === undefined && this.releaseEarly(call, journal)
    journal.addEntry(this.threadId, seq, call.key, call.ord, call.ok ? 1 : 0, text, call.started, performance.now() - call.t0, early ? () => this.#sure(call) : () => this.#durable(call), newThread)
    if (isMarked(call)) unmark(journal, call)
    this.checkHeld()
  }

  /** Whether the thread may still be handed an outcome (src/weft-pending.ts). */
  protected get open(): boolean {
    return this.stoppedBy === null && !this.ended && this.holding === 0
  }

  /**
   * A journal-only outcome that may have gone early is durable: released now if it did not;
   * once every early one is, the calls held meanwhile start (not once the weave let go of the
   * thread; those held as the thread ended started then: finish()).
   */
  #sure(call: Call): void {
    // The crash point of a durable outcome the thread has seen (one not seen goes through #durable's).
    if (crashArmed && !this.isPending(call)) crashPoint('after-commit')
    this.earlyDurable(call, (c) => this.#durable(c), (c) => this.live(c))
  }

  #durable(call: Call): void {
    if (crashArmed) crashPoint('after-commit')
    if (this.stoppedBy !== null || this.ended) return
    if (this.#onDurable !== undefined) {
      this.detach()
      this.#onDurable()
      return
    }
    this.releaseDurable(call, this.journal!.epoch)
  }

  /**
   * The thread's `does` has settled (`thrown`: the error it threw, if it did). Returns the error
   * the thread must end with instead of its own outcome (a divergence, or the kill), or null.
   */
  finish(thrown?: unknown): Error | null {
    if (this.stoppedBy !== null) return this.stoppedBy
    if (this.replay !== null && this.divergedAtEnd(this.replay, thrown)) return this.stoppedBy
    this.ended = true
    this.startHeld((c) => this.live(c))
    this.endWaits()
    // A take recorded that the function never saw: its message goes back (the end then
    // dead-letters what is left in the inbox; a continue keeps it for the new run).
    this.giveBackUnreleased()
    this.checkHeld()
    return null
  }

  /** For src/passivation/: the oldest pending call (a list through `nextPending`); 'busy' while outcomes are left to replay or release; null once ended, stopped or held. */
  pendingCalls(): Call | 'busy' | null {
    if (this.stoppedBy !== null || this.ended || this.holding !== 0) return null
    return this.replay !== null || this.releasing ? 'busy' : this.firstPending
  }

  /**
   * A cancel (src/cancel.ts): a wait in progress (a call with an abort hook: a receive, a sleep, a
   * join, a retry's pause) fails with `err`, recorded; with none, the next call made live does.
   * Another call in flight is not aborted (its effect may be made: a user trial's cancelled
   * charge was made, and the thread, told ThreadCancelled, had no charge id to refund): it ends as
   * it does. True when put off so (the request is to be kept until that call takes it).
   */
  cancel(err: ThreadCancelled): boolean {
    // Gone, or a cancel already aborting a wait (its hook gone, its failure not yet recorded): that one is this one.
    if (this.journal === null || this.gone || cancelling(this, (c) => this.isPending(c as Call))) return false
    let c = this.replay === null ? this.firstPending : null
    while (c !== null && (c.answered || c.abortHook === null)) c = c.nextPending
    if (c === null) return (deferCancel(this, err), true)
    cancelFails(this, c)
    abort(c, err)
    return false
  }

  /** Disconnects the thread: every pending and later call rejects with `err`. */
  stop(err: Error): void {
    if (this.stoppedBy !== null) return
    this.stoppedBy = err
    forget(this)
    this.endReplay()
    if (this.#observe !== null) this.abandonObserved()
    this.stopPending(err)
    this.checkHeld()
  }

  /**
   * Aborts live calls (weave shutdown, a passivation, a move) without settling them: the thread
   * resumes later. Calls its function made before it ended, not started yet (held behind an
   * early outcome, or waiting for a slot), still start when they may: no run makes them again.
   */
  detach(): void {
    forget(this)
    if (!this.ended) this.#detached = true
    this.ended = true
    if (this.#observe !== null) this.abandonObserved()
    this.detachPending()
    this.checkHeld()
  }

  /** Stopped or ended (src/weft-pending.ts: a hold lets go of it). */
  protected get gone(): boolean {
    return this.stoppedBy !== null || this.ended
  }
}

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
 * - On replay, recorded outcomes are released in recorded order; a request the record does not
 *   hold is held back until every recorded outcome has been released (it was in flight at the
 *   crash, so live it completed after all of them), then runs live, or, where the record is
 *   exhausted on a strict replay, or a recorded request is never made, is a ReplayDivergence.
 * - Once stopped (killed, diverged), every pending and later call rejects with the same error.
 * - A live call with a retry policy makes its attempts in src/retry/ (run.ts); only its final
 *   outcome is recorded and released here, as any call's is.
 *
 * The weft owns the calls' keys, the live calls and the replay; its base classes the count of
 * ordinals by key (src/weft-keys.ts), and the calls not yet settled and the release of live
 * outcomes, durable or early (src/weft-pending.ts).
 */
import { performance } from 'node:perf_hooks'
import { callIdOfCall, enterCall, type WeaveConfig } from './call-context.js'
import { crashArmed, crashPoint } from './crash-points.js'
import { encodeArgs } from './encoding.js'
import type { Journal } from './journal.js'
import type { Library, WeftLike } from './libraries.js'
import type { RunObservation } from './observer.js'
import { abort, askLibrary, Call, keptHook } from './call.js'
import { forget, inFlightCall, inFlightDivergence, isMarked, marksOf, unmark } from './in-flight.js'
import { markerLacked, markerPastEnd } from './replay-markers.js'
import { cancelFails, cancelling, deferCancel, takeCancel } from './cancel.js'
import type { ThreadCancelled } from './errors.js'
import { describeKey, Replay, type Entry } from './replay-record.js'
import { RecordBlocks } from './replay-blocks.js'
import { countRelease, ReplayRounds } from './replay-rounds.js'
import { divergenceAt, divergenceError, droppedEntry, giveBackReplayed, madeBy, replayLeft, threwBefore, unreplayable, warnContinued, type Divergence } from './weft-divergence.js'
import type { CallTrace, WeftOptions } from './weft-options.js'
import { KeyCounts } from './weft-keys.js'
import { recordOutcome, settleRecorded } from './weft-outcomes.js'
import { CallSecrets } from './secrets/calls.js'
import type { Policy, ThreadRetry } from './retry/policy.js'
import { callRetry } from './retry/resolve.js'
import { retryCall, weftRetryHost, type RetryHost } from './retry/run.js'
import { LONG_RECORD, longRecord, warnOnce } from './continue/long-record.js'

export { describeKey, splitKey, type Entry } from './replay-record.js'
export type { CallTrace, WeftOptions } from './weft-options.js'
export { releasedOutcomes, replayTick } from './replay-rounds.js'

export class Weft extends KeyCounts implements WeftLike {
  readonly threadId: string
  /** The thread's call scope, as a number (src/call-context.ts `scopeNumber`), -1 for none. */
  readonly scope: number
  readonly trace: CallTrace[] | null
  readonly #journal: Journal | null
  readonly #config: WeaveConfig
  readonly #onDivergence: 'fail' | 'continue'
  readonly #onStop: ((err: Error, weft: Weft) => void) | undefined
  readonly #type: string
  readonly #onDurable: (() => void) | undefined
  readonly #stacks: WeakMap<Call, string> | null
  readonly #onMarker: ((key: string, value: unknown) => void) | undefined
  /** How many entries the record replayed holds; the record itself until its last block came. */
  #base: number | RecordBlocks = 0
  readonly #observe: RunObservation | null
  readonly #retry: ThreadRetry | null
  readonly #onWait: ((weft: Weft) => void) | null
  readonly #onReplayed: ((weft: Weft, released: number) => void) | null
  /** What the retry runner calls back (made at the first call that has a policy). */
  #retryHost: RetryHost | null = null
  #seq = 0
  /** Entries queued for this thread since its record was read, less those dropped from it. */
  #added = 0
  /** The journal epoch in which this thread last queued an entry (its batch). */
  #batch = -1
  #replay: Replay | null = null
  /** How the calls of libraries with secrets are keyed, recorded and handed back; null: none. */
  #secrets: CallSecrets | null
  #stopped: Error | null = null
  #ended = false
  /** Set by detach() before the thread's function ended: the weave has let go of the thread, so no library call starts any more. */
  #detached = false

  constructor(o: WeftOptions) {
    super()
    this.threadId = o.threadId
    this.scope = o.scope ?? -1
    this.#journal = o.journal
    this.#config = o.config
    this.#onDivergence = o.onDivergence ?? 'fail'
    this.#onStop = o.onStop
    this.#type = o.type ?? 'thread'
    this.#onDurable = o.onDurable
    this.#stacks = o.stacks === true ? new WeakMap() : null
    this.#onMarker = o.onMarker
    this.#observe = o.observe ?? null
    this.#retry = o.retry ?? null
    this.#onWait = o.onWait ?? null
    this.#onReplayed = o.onReplayed ?? null
    this.trace = o.trace ? [] : null
    const { secrets, record } = CallSecrets.of(o.keyring ?? null, RecordBlocks.from(o.entries))
    this.#secrets = secrets
    const mismatch = this.#journal === null ? null : (secrets?.mismatch(this.threadId, this.#type) ?? null)
    if (mismatch !== null) warnOnce(this.#config, this.threadId, mismatch)
    if (record !== null && record.has(0)) {
      this.#replay = new Replay(record)
      this.#seq = record.lastSeq + 1
      this.#base = record.knownLength ?? record
    }
  }

  /** True while recorded outcomes remain to be released. */
  get replaying(): boolean {
    return this.#replay !== null
  }

  /** How many recorded outcomes replay has released so far (for progress). */
  get released(): number {
    return this.#replay === null ? 0 : this.#replay.next
  }

  /** How many journal entries the thread has, those queued included; undefined: its long record's last block has not come. */
  get recorded(): number | undefined {
    const base = typeof this.#base === 'number' ? this.#base : this.#base.knownLength
    return base === null ? undefined : base + this.#added
  }

  /** The replay is over (ended or stopped) after `next` releases: of its record, only its length is kept, once known. */
  #over(next: number): void {
    if (typeof this.#base !== 'number') this.#base = this.#base.knownLength ?? this.#base
    this.#onReplayed?.(this, next)
  }

  get stopped(): Error | null {
    return this.#stopped
  }

  call(lib: Library, method: string, args: unknown[]): Promise<unknown> {
    if (this.#stopped !== null) return Promise.reject(this.#stopped)
    // Ended or detached: a branch still running makes no call (not recorded, never answered).
    if (this.#ended || this.holding !== 0) return this.refused()
    let argsText: string
    let plain: boolean
    let retry: Policy | null = null
    try {
      // Retries (src/retry/): the call's policy, and its own `retry` option off the arguments.
      if (lib.retry !== null || this.#retry !== null) ({ args, policy: retry } = callRetry(lib, method, args, this.#retry))
      const s = this.#secrets
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
    const r = this.#replay
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
    const call = new Call(this.threadId, lib, method, args, key, ord, this.#config, this.scope, copy)
    call.retry = retry
    if (this.trace !== null) this.trace.push({ call: `${lib.name}.${method}`, args })
    if (this.#stacks !== null) this.#stacks.set(call, new Error().stack ?? '')
    this.addPending(call)
    if (this.#replay !== null) this.#request(this.#replay, call)
    else if (!this.holdUntilSure(call)) this.#live(call)
    return call.promise
  }

  /** A key's first ordinal: on replay, how many calls of it the record counts by their entries (src/weft-keys.ts). */
  protected firstOrdinal(key: string): number {
    return this.#replay === null ? 0 : this.#replay.firstCounted(key)
  }

  #live(call: Call): void {
    const marks = marksOf(this)
    if (marks !== undefined && this.#inFlightBefore(call, marks)) return
    if (this.#journal === null) {
      if (markerPastEnd(call, this)) return this.#answerMarker(call)
      this.#divergence({ what: `the dump holds no outcome for ${describeKey(call.key)} (ordinal ${call.ord}).`, detail: { kind: 'beyond', index: typeof this.#base === 'number' ? this.#base : this.#base.length, made: madeBy(call, this.#stacks) } })
      return
    }
    const cancel = takeCancel(this, this.#journal, this.threadId)
    if (cancel !== undefined) return void Promise.resolve(cancel).then((e) => this.#cancelled(call, e))
    if (this.#secrets !== null && this.#secrets.holdsUnopened(call.args)) {
      // Held, neither made nor answered: resumed with its key, the thread makes it (docs/secrets.md).
      warnOnce(this.#config, this.threadId, this.#secrets.held(this.threadId, this.#type, `${call.lib.name}.${call.method}`))
      return
    }
    if (call.retry !== null) {
      this.#retrying(call)
      return
    }
    const q = call.lib.queue
    if (q !== null) void q.add(() => this.#invoke(call))
    else void this.#invoke(call)
  }

  #invoke(call: Call): Promise<void> {
    const p = this.#attempt(call)
    if (p === null) return Promise.resolve()
    return p.then(
      (v) => this.#complete(call, true, v),
      (e: unknown) => this.#complete(call, false, e),
    )
  }

  /**
   * A live call of a thread that had calls in flight when its weave stopped (src/in-flight.ts):
   * true when it is settled here (a marker, answered as the code before it went; a divergence).
   */
  #inFlightBefore(call: Call, marks: Set<string>): boolean {
    const v = inFlightCall(this, marks, call)
    if (v === 'marker') return (this.#answerMarker(call), true)
    if (v === 'go') return false
    const d = inFlightDivergence(v, call, this.#seq, madeBy(call, this.#stacks))
    if (this.#onDivergence !== 'continue') return (this.#divergence(d), true)
    warnContinued(this.#config, this.threadId, this.#type, d)
    forget(this)
    return false
  }

  /** A marker call answered, unrecorded, as the code before the marker went (`absent`). */
  #answerMarker(call: Call): void {
    const absent = call.lib.markers!.get(call.method)
    this.removePending(call)
    this.#onMarker?.(call.key, absent)
    call.resolve(absent)
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
    if (this.#stopped !== null || this.#detached) return null
    if (this.holding !== 0 && !this.#ended) {
      void this.refused()
      return null
    }
    this.#start(call)
    // Made by a function that has ended (no run makes it again): no row.
    if (!this.#ended) this.#journal!.started(call)
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
      gated: () => this.#journal!.gated(),
      once: (c) => this.#attempt(c as Call),
      // Not made (the weave let go of the thread): nothing a move must wait for.
      notMade: (c) => ((c as Call).started = 0),
      active: () => this.#stopped === null && !this.#ended,
      waiting: () => {
        this.checkHeld()
      },
    })
    retryCall(call, call.retry!, this.#journal!, this.#retryHost).then(
      (v) => this.#complete(call, true, v),
      (e: unknown) => this.#complete(call, false, e),
    )
  }

  #complete(call: Call, ok: boolean, v: unknown): void {
    call.answered = true
    const recorded = this.#stopped === null && !this.#ended
    // Unrecorded: cut short if stopped or let go of; if not awaited by an ended function, made all the same.
    if (call.obs !== null) {
      // (Recorded implies not detached: a detach ends the weft.)
      if (this.#stopped === null && !this.#detached) call.obs.end(ok, v)
      else call.obs.abandon()
    }
    if (!recorded) return
    // Recorded: an abort is not a wait's any more (only a take's hook is kept: src/call.ts).
    call.unreleased = keptHook(call)
    call.abortHook = null
    if (crashArmed) crashPoint('after-call')
    // What the thread is to see goes to call.ok and call.value (src/weft-outcomes.ts).
    const text = recordOutcome(call, ok, v, this.#secrets)
    const seq = this.#seq++
    this.#added++
    if (this.recorded === LONG_RECORD) longRecord(this.#config, this.threadId, this.#type)
    const journal = this.#journal!
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
    return this.#stopped === null && !this.#ended && this.holding === 0
  }

  /**
   * A journal-only outcome that may have gone early is durable: released now if it did not;
   * once every early one is, the calls held meanwhile start (not once the weave let go of the
   * thread; those held as the thread ended started then: finish()).
   */
  #sure(call: Call): void {
    // The crash point of a durable outcome the thread has seen (one not seen goes through #durable's).
    if (crashArmed && !this.isPending(call)) crashPoint('after-commit')
    this.earlyDurable(call, (c) => this.#durable(c), (c) => this.#live(c))
  }

  #durable(call: Call): void {
    if (crashArmed) crashPoint('after-commit')
    if (this.#stopped !== null || this.#ended) return
    if (this.#onDurable !== undefined) {
      this.detach()
      this.#onDurable()
      return
    }
    this.releaseDurable(call, this.#journal!.epoch)
  }

  #request(r: Replay, call: Call): void {
    const e = r.find(call.key, call.ord)
    if (e !== undefined && e.call === null) e.call = call
    // A marker the record's code went on without (src/replay-markers.ts): answered as it went, unrecorded.
    else if (e === undefined && markerLacked(r, call, this)) return this.#answerMarker(call)
    else r.held.push(call)
    this.#schedule(r)
  }

  /** Every replaying weft of the process is pumped in shared rounds (src/replay-rounds.ts). */
  static readonly #rounds = new ReplayRounds<Weft>((w) => w.#pump())

  #schedule(r: Replay): void {
    if (r.scheduled) return
    r.scheduled = true
    Weft.#rounds.add(this)
  }

  /**
   * Runs when the thread has drained: release the next recorded outcome, or decide what next. A
   * record that cannot be read on (damaged, its blocks lost) fails this thread alone.
   */
  #pump(): void {
    try {
      this.#pumpRecord()
    } catch (e) {
      const err = unreplayable(this.#journal?.file ?? null, this.threadId, e)
      if (err === null) throw e
      this.stop(err)
      this.#onStop?.(err, this)
    }
  }

  #pumpRecord(): void {
    const r = this.#replay
    if (r === null || this.#stopped !== null) return
    r.scheduled = false
    const record = r.record
    while (record.has(r.next)) {
      const e = record.at(r.next)
      // Undefined: the record's blocks read ahead stopped coming (the weave closed; src/replay-ahead.ts).
      if (e === undefined) return
      if (e.call !== null) {
        record.passed(++r.next)
        this.#release(e)
        if (r.held.length > 0 || record.has(r.next)) this.#schedule(r)
        else this.#goLive(r)
        return
      }
      if (!r.skipUnrequested) {
        if (this.#ended || this.holding !== 0) return // held: a move or reload takes it, no call is made
        this.#divergenceAt(r, e)
        return
      }
      // Held (a move or reload takes the record) or let go of: nothing is dropped from it.
      if (this.#ended || this.holding !== 0) return
      r.next++
      this.#dropEntry(e)
    }
    this.#goLive(r)
  }

  #dropEntry(e: Entry): void {
    if (this.#journal === null) return
    this.#journal.dropEntry(this.threadId, e.seq)
    this.#added--
    droppedEntry(this.#config, this.threadId, e)
  }

  #release(e: Entry): void {
    countRelease()
    const call = e.call!
    // A released entry is behind `next` and its (key, ordinal) is never asked for again (ordinals
    // only grow), so nothing reads `call` again: let the call (promise, args) be collected.
    e.call = null
    this.removePending(call)
    settleRecorded(call, e, this.#secrets, this)
  }

  /** @internal A secret outcome of the record cannot be opened here (sealed with key `kid`, not this weave's): the weave warns, once for the thread. */
  unopenedSecret(kid: string): void {
    if (this.#journal === null || this.#secrets === null) return
    warnOnce(this.#config, this.threadId, this.#secrets.unopened(this.threadId, this.#type, kid))
    this.#secrets = this.#secrets.withUnopened()
  }

  #goLive(r: Replay): void {
    this.#replay = null
    this.#over(r.next)
    this.firstKeys = r.implicit.empty ? null : r.record.replayedKeys(r.implicit, !r.skipUnrequested)
    const held = r.held
    for (const call of held) {
      if (this.#stopped !== null) return
      this.#live(call)
    }
  }

  #divergenceAt(r: Replay, expected: Entry): void {
    if (this.#onDivergence === 'continue' && this.#journal !== null) {
      warnContinued(this.#config, this.threadId, this.#type, divergenceAt(r, expected, this.firstPending, (c) => madeBy(c, this.#stacks)))
      r.skipUnrequested = true
      this.#schedule(r)
      return
    }
    this.#divergence(divergenceAt(r, expected, this.firstPending, (c) => madeBy(c, this.#stacks)))
  }

  #divergence(d: Divergence): void {
    const err = divergenceError(this.threadId, this.#type, this.#replay, d)
    this.stop(err)
    this.#onStop?.(err, this)
  }

  /**
   * The thread's `does` has settled (`thrown`: the error it threw, if it did). Returns the error
   * the thread must end with instead of its own outcome (a divergence, or the kill), or null.
   */
  finish(thrown?: unknown): Error | null {
    if (this.#stopped !== null) return this.#stopped
    const r = this.#replay
    // Warned of at the first entry dropped, unless it diverged before (and was warned of then).
    let warned = r?.skipUnrequested === true
    const d =
      r === null
        ? null
        : replayLeft(r, r.skipUnrequested || this.#onDivergence === 'continue', (e, ended) => {
            if (!warned) warnContinued(this.#config, this.threadId, this.#type, ended())
            warned = true
            this.#dropEntry(e)
          })
    if (d !== null) {
      this.#divergence(thrown === undefined ? d : threwBefore(d, thrown))
      return this.#stopped
    }
    this.#ended = true
    this.startHeld((c) => this.#live(c))
    this.endWaits()
    // A take recorded that the function never saw: its message goes back (the end then
    // dead-letters what is left in the inbox; a continue keeps it for the new run).
    this.giveBackUnreleased()
    this.checkHeld()
    return null
  }

  /** The thread's function ended: besides a live take not released, one its replay had not released goes back. */
  override giveBackUnreleased(): void {
    super.giveBackUnreleased()
    if (this.#replay !== null && this.#journal !== null) giveBackReplayed(this.#config, this.threadId, this.#replay)
  }

  /** For src/passivation/: the oldest pending call (a list through `nextPending`); 'busy' while outcomes are left to replay or release; null once ended, stopped or held. */
  pendingCalls(): Call | 'busy' | null {
    if (this.#stopped !== null || this.#ended || this.holding !== 0) return null
    return this.#replay !== null || this.releasing ? 'busy' : this.firstPending
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
    if (this.#journal === null || this.gone || cancelling(this, (c) => this.isPending(c as Call))) return false
    let c = this.#replay === null ? this.firstPending : null
    while (c !== null && (c.answered || c.abortHook === null)) c = c.nextPending
    if (c === null) return (deferCancel(this, err), true)
    cancelFails(this, c)
    abort(c, err)
    return false
  }

  /** Disconnects the thread: every pending and later call rejects with `err`. */
  stop(err: Error): void {
    if (this.#stopped !== null) return
    this.#stopped = err
    forget(this)
    this.#replay?.record.release()
    if (this.#replay !== null) this.#over(this.#replay.next)
    this.#replay = null
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
    if (!this.#ended) this.#detached = true
    this.#ended = true
    if (this.#observe !== null) this.abandonObserved()
    this.detachPending()
    this.checkHeld()
  }

  /** Stopped or ended (src/weft-pending.ts: a hold lets go of it). */
  protected get gone(): boolean {
    return this.#stopped !== null || this.#ended
  }
}


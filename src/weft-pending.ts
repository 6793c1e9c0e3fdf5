/**
 * The calls of one weft (src/weft.ts) not yet settled, and the live outcomes waiting for their
 * turn to reach the thread.
 *
 * Invariants:
 * - The list holds every call the thread made that is not settled yet (live, replayed-and-waiting,
 *   and held), oldest first. It is linked through the calls themselves (`prevPending`,
 *   `nextPending`), so a thread holds no Set and a call needs no hash.
 * - A call leaves the list when it is settled, or with all the others when the weft stops.
 * - Durable live outcomes reach the thread one at a time, in the order they became durable: the
 *   first of a commit batch (journal epoch) at once when none waits, every other queued behind
 *   those waiting and released one per microtask drain, so the thread's microtasks drain between
 *   two of them.
 * - Early outcomes: the outcome of a journal-only call (`Library.journalOnly`: a take, a send, a
 *   clock read) may reach the thread before its commit: once the thread's microtasks have
 *   drained after it was recorded (as any release, so replay, which releases after each drain,
 *   sees the same interleaving), when it was the thread's only call pending then and no outcome
 *   of the thread waits to be released (so outcomes still reach it in the order they were
 *   recorded), and the thread has neither ended nor stopped meanwhile (a receive it left pending
 *   as it ends or continues as new gives its message back, unreleased); at most EARLY_MAX at a
 *   time, 1,024 in a batch for all threads (src/journal.ts `earlyRoom`). Otherwise it is
 *   released once durable, as any outcome. The drain comes before the group commit (a later
 *   turn), so what the thread does on it joins the same batch.
 *   Until every early outcome is durable, the thread's calls of other methods are held, not
 *   started: nothing the thread does on an early outcome reaches outside the process before the
 *   journal has it (but for calls held as it ends, below; what journal-only calls do leaves only
 *   once committed: the outbox's relay
 *   reads committed rows; joiners learn of an end once it is committed). A crash before the
 *   commit loses the outcome and all that followed from it together, as if the thread had not
 *   got that far: the message taken is still in its inbox, or is redelivered, unacknowledged.
 *   Calls still held as the thread's function ends start then (`startHeld`), as they would have
 *   without an early outcome, so that the end's batch holds what they record at once (a spawn):
 *   started after the end's commit, a crash between the two would lose them. One that reaches
 *   outside (a fetch not awaited) may then do so before the commit; after a crash the thread
 *   takes the same message again and makes it again with the same call id, as any call in
 *   flight at a crash.
 *
 * The weft extends this class rather than holding one, so a thread carries no object more for
 * it (an idle thread's memory is counted in bytes: `npm run bench`, idle); the state stays
 * private here, and the weft reaches it through the protected methods.
 */
import { abort, type Call } from './call.js'
import { afterDrain } from './replay-rounds.js'

const noop = (): void => {}
const HELD = 1
const REFUSED = 2

/**
 * At most this many early outcomes of one thread wait for their commit: a thread that loops on
 * journal-only calls (sends, takes of messages already there) gives way to the commit after as
 * many, rather than growing one batch for ever within a turn of the event loop.
 */
const EARLY_MAX = 16

/** A thread's early outcomes not yet durable, its calls held until they are, and the outcome about to go early. */
interface Early {
  count: number
  held: Call[] | null
  /** The call whose outcome goes early once the thread's microtasks drain (`#earlyNow`), if it still may. */
  next: Call | null
}

export abstract class PendingCalls {
  /** The oldest and the newest call of the list; both null when it is empty. */
  #first: Call | null = null
  #last: Call | null = null
  /** The journal epoch of the last outcome released directly. */
  #epoch = -1
  /** Outcomes of one batch waiting for their turn (released one per microtask drain). */
  #queue: Call[] | null = null
  /** Early outcomes not yet durable, and the calls held meanwhile; null while there are none. */
  #early: Early | null = null
  /** Who waits for a hold (`hold`) to let go of the thread. */
  #held: (() => void) | null = null
  /** 0: not held; HELD (a move, reload or stop: no call is made); REFUSED: held, and it asked for a call since. */
  protected holding: 0 | typeof HELD | typeof REFUSED = 0

  /** Stopped or ended (the weft says). */
  protected abstract get gone(): boolean

  /** The oldest pending call (the list goes on through `nextPending`), or null. */
  protected get firstPending(): Call | null {
    return this.#first
  }

  /** True while durable live outcomes wait for their turn, or early ones for their commit. */
  protected get releasing(): boolean {
    return this.#queue !== null || this.#early !== null
  }

  /** Whether the thread may still be handed an outcome (not ended, stopped, detached or held). */
  protected abstract get open(): boolean

  /**
   * `call`'s outcome is recorded, not committed: if it may go early (see the invariant: a
   * journal-only call, the thread's only call pending, no outcome of it waiting, room in the
   * batch, `batch` being the journal), it is released once the thread's microtasks drain, if it
   * still may then. Returns whether it may: `earlyDurable()` must then be called once its commit
   * is durable (it releases the outcome there if it did not go early).
   */
  protected releaseEarly(call: Call, batch: { earlyRoom(): boolean }): boolean {
    if (!call.lib.isJournalOnly(call.method) || this.#queue !== null || this.#first !== call || call.nextPending !== null) return false
    const early = this.#early
    if ((early !== null && early.count >= EARLY_MAX) || !batch.earlyRoom()) return false
    if (early === null) this.#early = { count: 0, held: null, next: call }
    else early.next = call
    afterDrain(PendingCalls.#earlySoon, this)
    return true
  }

  static #earlySoon(p: PendingCalls): void {
    process.nextTick(PendingCalls.#earlyNow, p)
  }

  /** The thread's microtasks have drained: its outcome goes early if it still may. */
  static #earlyNow(p: PendingCalls): void {
    const early = p.#early
    // Stopped meanwhile: the weft has let go of everything.
    if (early === null) return
    const call = early.next
    early.next = null
    if (call !== null && p.#queue === null && p.#first === call && p.open) {
      early.count++
      p.settle(call)
    } else if (early.count === 0) p.#early = null
  }

  /**
   * The commit of an outcome that `releaseEarly` let go early is durable: it is released now if
   * it did not go early (`release`); once every early outcome is durable, the calls held
   * meanwhile go to `start`, in the order made.
   */
  protected earlyDurable(call: Call, release: (call: Call) => void, start: (call: Call) => void): void {
    if (this.isPending(call)) {
      release(call)
      return
    }
    const early = this.#early
    if (early === null || --early.count > 0) return
    this.#early = null
    if (early.held !== null) for (const held of early.held) start(held)
  }

  /**
   * The thread's function has ended: the calls it made and did not await, held behind its early
   * outcomes, go to `start` now, as they would have gone had no outcome gone early. What they
   * record at once (a spawn's thread, a kill's end) then joins the batch of the thread's end.
   * Held on, they would start only once the early outcomes were durable, and so after the end's
   * commit: a crash between the two would keep the end and lose them for good.
   */
  protected startHeld(start: (call: Call) => void): void {
    const early = this.#early
    if (early === null || early.held === null) return
    const held = early.held
    early.held = null
    for (const call of held) start(call)
  }

  /** True if `call` must wait for the thread's early outcomes to be durable (it is held meanwhile). */
  protected holdUntilSure(call: Call): boolean {
    const early = this.#early
    if (early === null || early.count === 0 || call.lib.isJournalOnly(call.method)) return false
    ;(early.held ??= []).push(call)
    return true
  }

  /** Whether `call` is on the list (not settled, the weft not stopped). */
  protected isPending(call: Call): boolean {
    return call.prevPending !== null || this.#first === call
  }

  protected addPending(call: Call): void {
    const last = this.#last
    call.prevPending = last
    if (last === null) this.#first = call
    else last.nextPending = call
    this.#last = call
  }

  /** Takes `call` off the list; a call not on it is left alone. */
  protected removePending(call: Call): void {
    if (!this.isPending(call)) return
    const prev = call.prevPending
    const next = call.nextPending
    if (prev === null) this.#first = next
    else prev.nextPending = next
    if (next === null) this.#last = prev
    else next.prevPending = prev
    call.prevPending = null
    call.nextPending = null
  }

  /** Takes `call` off the list and settles it with its outcome (`call.ok`, `call.value`). */
  protected settle(call: Call): void {
    this.removePending(call)
    call.unreleased = null
    if (call.ok) call.resolve(call.value)
    else call.reject(call.value)
  }

  /**
   * `call`'s live outcome is durable, in journal epoch `epoch`: released at once when it is the
   * first of its batch and no other waits, else queued behind those that do.
   */
  protected releaseDurable(call: Call, epoch: number): void {
    if (this.#queue === null && this.#epoch !== epoch) {
      this.#epoch = epoch
      this.settle(call)
      return
    }
    if (this.#queue === null) {
      this.#queue = [call]
      afterDrain(PendingCalls.#pumpSoon, this)
    } else this.#queue.push(call)
  }

  static #pumpSoon(p: PendingCalls): void {
    process.nextTick(PendingCalls.#pumpNow, p)
  }

  /**
   * Releases the next queued outcome. (Static, as the class has no private instance method: one
   * would give each weft a private brand, a field more.)
   */
  static #pumpNow(p: PendingCalls): void {
    // A stopped weft has no queue (stopPending() drops it, and nothing is queued after).
    const q = p.#queue
    if (q === null) return
    const call = q.shift()
    if (call !== undefined) p.settle(call)
    if (q.length > 0) afterDrain(PendingCalls.#pumpSoon, p)
    else p.#queue = null
  }

  /** The weft stops: every pending call is taken off the list, aborted and rejected with `err`; queued outcomes are dropped. */
  protected stopPending(err: Error): void {
    this.#queue = null
    this.#early = null
    let call = this.#first
    this.#first = null
    this.#last = null
    while (call !== null) {
      const next = call.nextPending
      call.prevPending = null
      call.nextPending = null
      abort(call, err)
      call.promise.catch(noop)
      call.reject(err)
      call = next
    }
  }

  /**
   * The thread's function has ended: what its waits still pending (a receive, a sleep it did not
   * await) hold is let go, and left unsettled. A receive that took a message not yet recorded
   * gives it back (its thread's inbox then goes to the dead letters); one still waiting leaves
   * the inbox, so later messages stay there.
   */
  protected endWaits(): void {
    runHooks(this.#first, 'abortHook', new Error('thread ended'))
  }

  /**
   * The thread's record is dropped (continue-as-new): a receive whose take is recorded and not
   * released (its thread never saw the message) gives the message back.
   */
  giveBackUnreleased(): void {
    runHooks(this.#first, 'unreleased', new Error('record dropped'))
    // Nor is any outcome queued for release handed to the old run's function any more: a take
    // given back would reach it and the new run both.
    this.#queue = null
  }

  /** The calls in flight, observed, will not be recorded (the weft stops or is let go of): their spans end now, abandoned, whether or not the library ever answers. */
  protected abandonObserved(): void {
    for (let call = this.#first; call !== null; call = call.nextPending) {
      if (call.obs !== null && !call.answered) call.obs.abandon()
    }
  }

  /** The weave lets go of the thread: every pending call is aborted, and left unsettled. */
  protected detachPending(): void {
    let call = this.#first
    while (call !== null) {
      const next = call.nextPending
      abort(call, new Error('weave shutting down'))
      call = next
    }
  }

  /**
   * Stops the thread at its next call (a move, a reload, a stop): no call is made from now on, and
   * this resolves once every call the library was asked for, but waits (made again wherever it
   * resumes), is answered and queued for the journal, or the thread ends, stops or is detached
   * (`finishing`: some is not yet); a second holder (a reload while a move waits) with the first.
   */
  hold(): Promise<void> {
    if (this.holding === 0) this.holding = HELD
    return new Promise((resolve) => {
      const first = this.#held
      this.#held = first === null ? resolve : () => (first(), resolve())
      this.checkHeld()
    })
  }

  /** Held, it asked for a call that was not made: it must not end here (resumed from its record, it makes it). */
  get heldBack(): boolean {
    return this.holding === REFUSED && !this.gone
  }

  /** It has calls in flight that a hold waits for. */
  get finishing(): boolean {
    return !this.gone && this.mustFinish()
  }

  /** A call not made (held, or ended): it never settles; held, the thread cannot end here (`heldBack`). */
  protected refused(): Promise<never> {
    if (!this.gone && this.holding === HELD) this.holding = REFUSED
    return new Promise(noop)
  }

  /** Lets go of the hold's waiters once nothing must finish. */
  protected checkHeld(): void {
    if (this.#held === null || this.finishing) return
    const resolve = this.#held
    this.#held = null
    resolve()
  }

  /**
   * True while a call must finish before the thread can be held: the library was asked for it,
   * has not answered, and it is not a wait (a call that registered `onAbort`).
   */
  protected mustFinish(): boolean {
    for (let c = this.#first; c !== null; c = c.nextPending) {
      if (c.started !== 0 && !c.answered && c.abortHook === null) return true
    }
    return false
  }
}

/** Runs (once) the `hook` of each call of the list from `first` that has one. */
function runHooks(first: Call | null, hook: 'abortHook' | 'unreleased', reason: Error): void {
  for (let call = first; call !== null; call = call.nextPending) {
    const fn = call[hook]
    if (fn === null) continue
    call[hook] = null
    fn(reason)
  }
}

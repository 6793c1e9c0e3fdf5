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
 *
 * The weft extends this class rather than holding one, so a thread carries no object more for
 * it (an idle thread's memory is counted in bytes: `npm run bench`, idle); the state stays
 * private here, and the weft reaches it through the protected methods.
 */
import { abort, type Call } from './call.js'
import { afterDrain } from './replay-rounds.js'

const noop = (): void => {}

export abstract class PendingCalls {
  /** The oldest and the newest call of the list; both null when it is empty. */
  #first: Call | null = null
  #last: Call | null = null
  /** The journal epoch of the last outcome released directly. */
  #epoch = -1
  /** Outcomes of one batch waiting for their turn (released one per microtask drain). */
  #queue: Call[] | null = null

  /** The oldest pending call (the list goes on through `nextPending`), or null. */
  protected get firstPending(): Call | null {
    return this.#first
  }

  /** True while durable live outcomes wait for their turn. */
  protected get releasing(): boolean {
    return this.#queue !== null
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
    const prev = call.prevPending
    const next = call.nextPending
    if (prev === null && this.#first !== call) return
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

/**
 * Cancelling a thread so that it can clean up (`Weave.cancel`, `threads.cancel`, `raiment cancel`):
 * Temporal's cancel, where a kill is its terminate.
 *
 * Invariants:
 * - A cancel interrupts the thread once: the call it waits on fails with ThreadCancelled (a wait
 *   in progress — a receive, a sleep, a join, a retry's pause, a library call that registered
 *   onAbort — at once; else the next call it makes live, once a call in flight that is no wait,
 *   whose effect may be made, has ended as it does), and that failure is recorded as the call's outcome, so the
 *   thread replays to the same place. Its other calls run as any: a catch or finally compensates.
 *   Cancels before the thread has that failure (it is released after its commit) are one
 *   (`cancelling`; deferred ones, one entry); one after it is a new one and interrupts again.
 * - The request is durable until applied: a cancel put off to the thread's next call queues
 *   meta `cancel:<id>`, deleted in the batch that records the failure (one that aborts a wait
 *   records it in its own batch, and keeps none). A weave that stops first applies it again when it resumes
 *   the thread (to the first call the thread makes live once replayed); one whose thread ended
 *   first drops it, as does one whose thread ends with it untaken (`dropCancel`, in the end's batch).
 * - A deferred cancel costs the call path one integer test while none is pending (`pending`). A
 *   weft that goes with one untaken without an end (stopped, passivated) keeps the count up: a
 *   look-up per live call from then on; its meta stays for the thread's next run. One that
 *   continues as new hands it to the new run's weft (`passCancel`): its first call takes it.
 */
import { ThreadCancelled } from './errors.js'
import type { Journal } from './journal.js'

/** Cancels waiting for the next call their weft makes live, by weft (held here: a weft keeps no field for it). */
const deferred = new WeakMap<object, ThreadCancelled>()
let pending = 0

/** The next call `weft` makes live fails with `err` (it waits on none now). */
export function deferCancel(weft: object, err: ThreadCancelled): void {
  if (!deferred.has(weft)) pending++
  deferred.set(weft, err)
}

/**
 * The cancel `weft`'s next live call fails with, if one waits; taken (once), and its meta deleted
 * in the current batch (the one the failure is recorded in).
 */
export function takeCancel(weft: object, journal: Journal, thread: string): ThreadCancelled | undefined {
  if (pending === 0) return undefined
  const err = deferred.get(weft)
  if (err === undefined) return undefined
  deferred.delete(weft)
  pending--
  cancelApplied(journal, thread)
  return err
}

/**
 * The thread of `weft` ends (done, failed, killed) with a cancel untaken (it waited in a call that
 * cannot be aborted and made none after): moot, its meta goes in the batch of the end.
 */
export function dropCancel(weft: object, journal: Journal, thread: string): void {
  if (pending === 0 || !deferred.delete(weft)) return
  pending--
  cancelApplied(journal, thread)
}

/**
 * The call a cancel failed (the wait it aborted, or the call it was put off to), by weft, until
 * that failure reaches the thread (it is released after its commit): a cancel meanwhile is that one.
 */
const failing = new WeakMap<object, object>()

/** A cancel fails `call`, of `weft`. */
export function cancelFails(weft: object, call: object): void {
  failing.set(weft, call)
}

/**
 * A cancel of `weft` came before the thread saw the failure of the last (`isPending`: its call is
 * still the weft's, not released): it is the same cancel. One after it is a new one.
 */
export function cancelling(weft: object, isPending: (call: object) => boolean): boolean {
  const c = failing.get(weft)
  return c !== undefined && isPending(c)
}

/** The thread of `from` continues as new on `to`: a cancel it had not taken goes with it, to the new run's first call. */
export function passCancel(from: object, to: object): void {
  if (pending === 0) return
  const err = deferred.get(from)
  if (err === undefined) return
  deferred.delete(from)
  deferred.set(to, err)
}

/**
 * Cancels thread `thread` through its weft: a wait in progress fails now (its failure recorded in
 * this batch); with none, the cancel is put off to the next call made live, and kept (meta
 * `cancel:<id>`) until applied.
 */
export function cancelThread(weft: { cancel(err: ThreadCancelled): boolean }, journal: Journal, thread: string, reason: string): void {
  if (weft.cancel(new ThreadCancelled(thread, reason))) journal.queueMeta(`cancel:${thread}`, reason)
}

/** The cancel of `thread` is applied (or moot): its meta goes in the current batch. */
export function cancelApplied(journal: Journal, thread: string): void {
  journal.queueMetaDelete(`cancel:${thread}`)
}

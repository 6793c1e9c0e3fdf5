/**
 * How a test clock learns what the weave using it does (src/time/test-clock.ts): the weave
 * attaches itself at open and detaches at close, handing the clock a look at whether its threads
 * are quiet. A clock of another kind (the real one, a user's) has no ATTACH and is left alone.
 *
 * Quiet: nothing is queued for the journal, and every thread in memory waits only (each call it
 * has pending is a live wait, unanswered: a sleep, a receive, a join, a retry's pause), with its
 * outcomes released: no library call in flight, no replay, nothing to commit. A passivated thread
 * is quiet by definition (a row says what wakes it), and so is one waiting for its type (it runs
 * nothing: src/weave-parked.ts). Then, with no message to come from outside,
 * only time can move the weave on.
 */
import type { Journal } from '../journal.js'
import { waitsOf } from '../passivation/waits.js'
import type { ScheduleClock } from '../schedules/clock.js'
import type { Run } from '../weave-types.js'

/** The key of a clock's attach method. */
export const ATTACH: unique symbol = Symbol('raiment.clock.attach')

/** What an attached clock may ask of its weave. */
export interface AttachedWeave {
  /** The weave's id, for messages. */
  readonly weaveId: string
  /** Whether the weave is quiet now (see the module's comment). */
  quiet(): boolean
  /** Whether a thread is in a library call now: one made live, unanswered, neither a wait nor journal-only (a fetch, a query). */
  calling(): boolean
  /** Resolves once what is queued for the journal now is committed and released. */
  committed(): Promise<void>
}

/** A clock that wants to know its weave: ATTACH returns what detaches it. */
export interface AttachableClock extends ScheduleClock {
  [ATTACH]?(weave: AttachedWeave): () => void
}

/**
 * Attaches `clock` to the weave of `journal` and `runs`, detached when the journal closes.
 * @throws ClockInUse (from ATTACH) when `clock` is attached to another open weave
 */
export function attachClock(clock: ScheduleClock, journal: Journal, runs: () => Iterable<Run>, parked: (run: Run) => boolean): void {
  const attach = (clock as AttachableClock)[ATTACH]
  if (attach === undefined) return
  const detach = attach.call(clock, {
    weaveId: journal.weaveId,
    quiet: () => !journal.closed && !journal.queued && everyRunWaits(runs(), parked),
    calling: () => !journal.closed && someRunCalls(runs()),
    committed: () => journal.committed(),
  })
  journal.beforeClose.push(detach)
}

function someRunCalls(runs: Iterable<Run>): boolean {
  for (const run of runs) {
    if (run.ended) continue
    const first = run.weft.pendingCalls()
    if (first === null || first === 'busy') continue
    for (let c: typeof first | null = first; c !== null; c = c.nextPending) {
      if (c.started !== 0 && !c.answered && c.abortHook === null && !c.lib.isJournalOnly(c.method)) return true
    }
  }
  return false
}

function everyRunWaits(runs: Iterable<Run>, parked: (run: Run) => boolean): boolean {
  for (const run of runs) {
    // (One waiting for its type runs nothing: quiet, as a passivated one is.)
    if (run.ended || parked(run)) continue
    const waits = waitsOf(run.weft.pendingCalls())
    if (!Array.isArray(waits)) return false
  }
  return true
}

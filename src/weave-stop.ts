/**
 * The wait of a stop (`Weave.close`, SIGTERM in the CLI): before the weave lets its threads go,
 * the calls they have in flight may finish and be recorded, up to a time, so that a planned stop
 * (a deploy) does not make them again at the next start, as a crash would.
 *
 * Invariants:
 * - From the wait's start no thread makes a call: each stops at its next one (src/weft.ts
 *   `hold`), and so does a thread that starts during the wait (spawned, woken, arrived).
 * - Waits (a receive, a sleep, a retry's pause) are not waited for: they are made again at the
 *   next start, as after any stop.
 * - The wait ends when no call is in flight, or its time is up; a second stop can shorten it.
 * - The close (`closeWeave`) marks the weave closed only after the wait, at a turn where no step is
 *   halfway, and lets go of the journal, then of what its I/O libraries hold open: its joins still
 *   pending are rejected, and the libraries closed, even when the journal's last commit fails.
 */
import { InvalidArgument } from './errors.js'
import { disposeLibraries } from './libraries.js'
import { ownTurn } from './group-commit.js'
import type { Run } from './weave-types.js'
import type { WeaveParts } from './weave-parts.js'
import type { Weave } from './weave.js'
import { MAX_TIMER_MS } from './durations.js'
import { valueText } from './value-text.js'

/** How long `raiment start` waits by default, at a signal, for the calls in flight (`close()` waits only when told). */
export const STOP_WAIT_MS = 10_000

/** What a stop's wait found: threads with calls in flight at its start, those still so at its end, and how long it took. */
export interface StopWait {
  threads: number
  left: number
  ms: number
}

/**
 * A stop's `wait`, checked.
 * @throws InvalidArgument for anything but a number of ms from 0 up (Infinity: no limit)
 */
export function stopWaitMs(wait: unknown): number {
  if (wait === undefined) return 0
  if (typeof wait === 'number' && wait >= 0) return wait
  throw new InvalidArgument(`close: 'wait' must be a number of ms from 0 up (how long calls in flight may finish), got ${valueText(wait)}`)
}

export class StopCalls {
  /** Resolves once no call is in flight, or the time is up. */
  readonly done: Promise<StopWait>
  /** How many threads had calls in flight at the start. */
  readonly threads: number
  /** The threads running the code a reload kept them on (src/check/reload.ts): the next start resumes them under the files on disk. */
  readonly oldCode: string[] = []
  readonly #since = performance.now()
  readonly #timers: NodeJS.Timeout[] = []
  #timeUp: () => void = () => {}
  #over = false

  /** Holds every run of `runs` at its next call, and waits up to `ms` for their calls in flight. */
  constructor(runs: Iterable<Run>, ms: number) {
    const timeUp = new Promise<void>((resolve) => (this.#timeUp = resolve))
    this.shorten(ms)
    let left = 0
    const holds: Promise<void>[] = []
    for (const run of runs) {
      if (run.ended) continue
      if (run.kept === true) this.oldCode.push(run.id)
      const finishing = run.weft.finishing
      if (finishing) left++
      const held = run.weft.hold()
      if (finishing) holds.push(held.then(() => void left--))
    }
    const threads = (this.threads = left)
    this.done = Promise.race([Promise.all(holds), timeUp]).then(() => {
      this.#over = true
      for (const t of this.#timers) clearTimeout(t)
      return { threads, left, ms: performance.now() - this.#since }
    })
  }

  /**
   * Tells the weave's listeners of the wait: 'stop-wait' now, 'stop-waited' at its end. A listener
   * that throws does not stop the stop (the journal still closes): its error is emitted apart as
   * the weave's 'error' (thrown, as from a timer, when nothing listens for that).
   */
  announce(weave: { emit(event: 'stop-wait' | 'stop-waited' | 'error', payload: unknown): boolean }, wait: number): void {
    const tell = (event: 'stop-wait' | 'stop-waited', payload: unknown): void => {
      try {
        weave.emit(event, payload)
      } catch (e) {
        setImmediate(() => weave.emit('error', e))
      }
    }
    tell('stop-wait', { threads: this.threads, wait, oldCode: this.oldCode })
    void this.done.then((w) => tell('stop-waited', w))
  }

  /** Ends the wait `ms` from now at the latest (a second stop asked for less); past a timer's range (24.8 days), no limit. */
  shorten(ms: number): void {
    if (this.#over) return
    if (ms === 0) this.#timeUp()
    else if (ms < MAX_TIMER_MS) this.#timers.push(setTimeout(this.#timeUp, ms))
  }
}

/** The wait of a weave's stop (`Weave.stopCalls`): started once, shortened by a later one; none once closed. */
export function stopCalls(weave: Weave, p: WeaveParts, wait: number): Promise<void> {
  if (p.stopCalls !== null) p.stopCalls.shorten(wait)
  else if (!p.closed) {
    // Held even with no wait: a call made from here to the detach would be made again at the next start.
    p.stopCalls = new StopCalls(p.runs.values(), wait)
    if (wait > 0 || p.stopCalls.oldCode.length > 0) p.stopCalls.announce(weave, wait)
  }
  return p.stopCalls?.done.then(() => undefined) ?? Promise.resolve()
}

/**
 * The close of a weave (`Weave.close`): its wait, then its threads detached, what is queued
 * committed, the journal closed and given up, its libraries closed (LibraryModule.default).
 * @throws JournalWriteFailed when the last commit fails (the journal is closed and let go all the same)
 * @throws the error of a library's close, once the others are closed
 */
export async function closeWeave(weave: Weave, p: WeaveParts, wait: number): Promise<void> {
  await weave.stopCalls(wait)
  // A step may be halfway (a call's side write queued, its entry a microtask later): committed
  // apart, the next weave would make the call again. So with anything queued, the threads are
  // detached at a turn of their own, where no step is halfway (src/group-commit.ts `ownTurn`).
  if (weave.journal.queued) await ownTurn()
  p.closed = true
  p.control.stop()
  weave.schedules.stop()
  p.passivation?.stop()
  weave.messages.stop()
  for (const run of p.runs.values()) {
    run.weft.detach()
    run.obs?.end('detached')
  }
  p.observer?.detach()
  await p.dumps.settled()
  // Commits what is queued (ends committed now resolve their joins); after a failed batch
  // (JournalWriteFailed) it still closes the file and lets go of the lock, then throws that error.
  let failed: { error: unknown } | null = null
  try {
    weave.journal.close()
  } catch (error) {
    failed = { error }
  } finally {
    p.joins.close()
  }
  // Last, even after a failed commit: what the libraries hold open (the sqlite library's
  // connections). The journal's error, if any, is the one thrown, else a library's.
  const closing = disposeLibraries(p.libs.values())
  if (failed !== null) {
    await closing.catch(() => {})
    throw failed.error
  }
  await closing
}

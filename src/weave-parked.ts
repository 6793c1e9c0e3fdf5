/**
 * Threads recorded here whose type this weave cannot run: no module for it in its threads
 * directory (a `--threads` typo, a unit started in the wrong directory), or one that failed to
 * load (a syntax error in a deploy). A user trial's weave started so ended every running thread
 * of the journal failed, for good; Temporal keeps a workflow's task queued until a worker
 * registers its type. Here such a thread waits.
 *
 * Invariants:
 * - A parked thread is a run whose weft runs nothing: it can be joined, killed, cancelled (the
 *   cancel is kept for its first call), moved to a weave that runs its type, and sent to (its
 *   inbox keeps what comes). Nothing of it in the journal changes: status, record, inbox, rows of
 *   calls in flight.
 * - It is never passivated, nor checked by a reload as a thread running old code: the reload that
 *   loads its type resumes it (`unpark`), by replay of its record, as a start would.
 * - The journal says which threads wait (meta `parked:<id>` = since when, ms), for the read-only
 *   views (ps, show, the UI): written when one parks, deleted when it resumes, ends or moves away;
 *   a weave opening deletes those its last run left, and writes again those it parks.
 * - A thread whose record its code does not replay as it resumes waits the same way under
 *   `onDivergence: 'wait'` (`diverged`, src/divergence-wait.ts), its row's value saying where it
 *   diverges; a reload of its type resumes it only if its record replays under the new code.
 * - One warning per type (ThreadsWaitForType): at open for all the threads parked then, later for
 *   the first parked of a type (a passivated thread woken, a thread moved here); told again for
 *   a thread parked after the last one of its type ended or moved away.
 */
import { passCancel } from './cancel.js'
import { decodeValue } from './encoding.js'
import { ThreadsWaitForType } from './errors.js'
import { divergedValue, PARKED } from './parked-listing.js'
import type { ThreadRow } from './journal.js'
import type { Run, WeaveHost } from './weave-types.js'

/** What parking reads of a thread's row (or of the record a moving thread came with). */
export type Parkable = Pick<ThreadRow, 'id' | 'type' | 'parent' | 'trace' | 'scope'> & { continued?: number }

/** What parking needs of the weave's runs (src/weave-runs.ts). */
export interface ParkHost {
  readonly host: WeaveHost
  /** The weave's known types, and those whose module failed, for the warning's why. */
  why(type: string): { text: string; cause?: Error }
}

export class ParkedRuns {
  readonly #o: ParkHost
  readonly #runs = new Set<Run>()
  readonly #warned = new Set<string>()
  /** The runs that wait for code that replays their record (onDivergence 'wait'): since when (ms), by id. */
  readonly #diverged = new Map<string, number>()
  #warn: ((w: Error) => void) | null = null
  /** While the weave opens: the threads parked, by type, for one warning each once it has resumed them all. */
  #found: Map<string, string[]> | null = null

  constructor(o: ParkHost) {
    this.#o = o
  }

  has(run: Run): boolean {
    return this.#runs.size !== 0 && this.#runs.has(run)
  }

  /** The weave opens: threads parked from now are told to `warn`, by type, at `opened`. */
  opening(warn: (w: Error) => void): void {
    this.#warn = warn
    this.#found = new Map()
    const journal = this.#o.host.weave.journal
    for (const [id] of journal.metaWithPrefix(PARKED)) journal.queueMetaDelete(PARKED + id)
  }

  opened(): void {
    const found = this.#found
    this.#found = null
    for (const [type, ids] of found ?? []) this.#tell(type, ids)
  }

  /** Recorded thread `row`, of a type this weave cannot run: it waits, as a run that runs nothing. */
  park(row: Parkable): Run {
    const run = this.#o.host.prepare(row.id, row.type, row.parent, null, row.trace ?? null, row.continued ?? 0, row.scope ?? null)
    this.#runs.add(run)
    this.#o.host.weave.journal.queueMeta(PARKED + row.id, String(Date.now()))
    if (this.#found !== null) {
      const ids = this.#found.get(row.type)
      if (ids === undefined) this.#found.set(row.type, [row.id])
      else ids.push(row.id)
    } else if (!this.#warned.has(row.type)) this.#tell(row.type, [row.id])
    return run
  }

  /**
   * Run `run` diverged from its record as it replayed (onDivergence 'wait'; `where`: where): it
   * waits, as a run that runs nothing, a cancel put off on its diverged weft kept for its next.
   */
  diverged(run: Run, where: string): void {
    const stopped = run.weft
    run.weft = this.#o.host.weft(run, null)
    passCancel(stopped, run.weft)
    this.#runs.add(run)
    const since = Date.now()
    this.#diverged.set(run.id, since)
    this.#o.host.weave.journal.queueMeta(PARKED + run.id, divergedValue(since, where))
  }

  /**
   * Thread `id`, waiting for code that replays its record, still diverges under the code a reload
   * loaded (`where`: where now): its row says that, since when it waits kept.
   */
  stillDiverges(id: string, where: string): void {
    const since = this.#diverged.get(id)
    if (since !== undefined) this.#o.host.weave.journal.queueMeta(PARKED + id, divergedValue(since, where))
  }

  /** The ids of the runs of `type` (of every type when none is given) that wait for code that replays their record. */
  waitingForCode(type?: string): string[] {
    const ids: string[] = []
    for (const r of this.#runs) if ((type === undefined || r.type === type) && this.#diverged.has(r.id)) ids.push(r.id)
    return ids
  }

  /** The run ended (killed, moved away, a linked thread's end): it waits no more. */
  ended(run: Run): void {
    if (this.#runs.size === 0 || !this.#runs.delete(run)) return
    this.#diverged.delete(run.id)
    this.#o.host.weave.journal.queueMetaDelete(PARKED + run.id)
    // The last of its type: a thread parked later for it is told again.
    for (const r of this.#runs) if (r.type === run.type) return
    this.#warned.delete(run.type)
  }

  /**
   * The weave runs `type` now (a reload loaded it): its parked threads resume by replay, or start
   * if pending; their ids. One that waits for code that replays it resumes only if in `replays`.
   */
  unpark(type: string, replays: ReadonlySet<string> = new Set()): string[] {
    const host = this.#o.host
    const t = host.type(type)
    const resumed: string[] = []
    if (t === undefined || this.#runs.size === 0) return resumed
    this.#warned.delete(type)
    const journal = host.weave.journal
    for (const run of [...this.#runs]) {
      if (run.type !== type || (this.#diverged.has(run.id) && !replays.has(run.id))) continue
      this.#runs.delete(run)
      this.#diverged.delete(run.id)
      journal.queueMetaDelete(PARKED + run.id)
      const row = journal.thread(run.id)
      if (run.ended || row === undefined) continue
      resumed.push(run.id)
      const params = decodeValue(row.params)
      // A weft made now: the parked one was made while the weave had no type (its retry policy, say).
      const parked = run.weft
      const pending = row.status === 'pending'
      run.weft = host.weft(run, pending ? null : host.record(run.id))
      passCancel(parked, run.weft)
      if (pending) {
        journal.setStatus(run.id, 'running', () => {
          if (!host.closed() && !run.ended) host.start(run, t, params, false)
        })
        continue
      }
      host.start(run, t, params, true)
    }
    return resumed
  }

  #tell(type: string, ids: string[]): void {
    this.#warned.add(type)
    const why = this.#o.why(type)
    this.#warn?.(new ThreadsWaitForType(type, ids, why.text, why.cause))
  }
}

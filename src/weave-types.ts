/**
 * What a weave tells and reports: how a thread ended, resume progress, the weave's events; and
 * the record of one run the weave keeps (internal, not exported by src/index.ts).
 */
import { decodeValue } from './encoding.js'
import { errorFromRecord, type ErrorRecord } from './error-records.js'
import type { ThreadRow } from './journal.js'
import type { Parkable } from './weave-parked.js'
import type { Observer, RunObservation } from './observer.js'
import type { ReloadReport } from './check/reload.js'
import type { RaimentError } from './errors.js'
import type { AnyThreadType } from './thread.js'
import type { Weave } from './weave.js'
import type { StopWait } from './weave-stop.js'
import type { RecordBlocks } from './replay-blocks.js'
import type { Entry, Weft } from './weft.js'

declare const resultType: unique symbol

/**
 * A thread's id: a string. `Weave.spawn` of a thread type given as an object returns it carrying
 * the type's result type, which `Weave.join` gives back (`end.result` typed).
 */
export type ThreadId<R = unknown> = string & { readonly [resultType]?: R }

/** Options of `Weave.spawn`: the parent told of its end, a key of your own (spawned once per key), the trace to join. */
export interface SpawnOptions {
  parent?: string
  id?: string
  trace?: string | null
}

/** How a thread ended; `R`: its result's type, where the id tells it (`ThreadId<R>`). */
export type ThreadEnd<R = unknown> =
  | { id: string; type: string; status: 'done'; result: R }
  | { id: string; type: string; status: 'failed'; error: Error }
  | { id: string; type: string; status: 'killed' }
  /** The thread runs on weave `to` now (`Weave.migrate`); join it there. */
  | { id: string; type: string; status: 'moved'; to: string }

/** @internal A thread's run in this weave: registered before it starts, until its end is committed. */
export interface Run {
  readonly id: string
  readonly type: string
  readonly parent: string | null
  weft: Weft
  joiners: Array<(end: ThreadEnd) => void> | null
  ended: boolean
  /** The run's observation (a span), when the weave is observed. */
  obs: RunObservation | null
  /** How many times the thread continued as new (src/continue/); absent for none. */
  continued?: number
  /** The stamp of its entry in passivation's queue of runs to look at (src/passivation/), once at a time; 0: not queued. */
  waitQueued: number
  /**
   * A reload is checking it, or kept it on the code it started with (its record does not fit the
   * new code): it is not passivated, since it would wake on the new code.
   */
  kept?: boolean
  /** It is moving to another weave (src/weave-moves.ts): it is not passivated meanwhile. */
  moving?: boolean
}

/**
 * @internal Calls `end(run, ok, value)` once the run's body settles, unless the run has another
 * weft by then (re-run, reloaded). Here, not in the weave, so that the two handlers, which an idle
 * thread keeps, hold these three values alone (not the thread's params and `this`).
 */
export function watchBody(body: Promise<unknown>, run: Run, weft: Weft, end: (run: Run, ok: boolean, value: unknown) => void): void {
  body.then(
    (r) => {
      if (run.weft === weft) end(run, true, r)
    },
    (e: unknown) => {
      if (run.weft === weft) end(run, false, e)
    },
  )
}

/** How far the threads a weave resumed have replayed their records (`Weave.resumeProgress`). */
export interface ResumeProgress {
  /** Threads resumed, and how many of them have replayed their whole record (or ended). */
  threads: number
  done: number
  /**
   * Entries their records hold (a long record's, before its last block came, at most: one a
   * seq, src/replay-blocks.ts), and how many replay has released.
   */
  entries: number
  replayed: number
}

/** @internal Counts how far the runs resumed when a weave opened have replayed (`Weave.resumeProgress`). */
export class ResumeCounter {
  /** Resumed runs still replaying, each with its record (its length known once its last block came) and whether `replayed` was told it. */
  readonly #replaying = new Map<Run, { record: RecordBlocks; told: boolean }>()
  readonly #replayed: ((run: Run, entries: number) => void) | null
  #replayedDone = 0
  #resumedDone = 0

  /** `replayed`: told how many entries each resumed run replays, once known (the observer's count). */
  constructor(replayed: ((run: Run, entries: number) => void) | null = null) {
    this.#replayed = replayed
  }

  /** Run `run` resumes with `record` to replay. */
  add(run: Run, record: RecordBlocks): void {
    const n = record.knownLength
    if (n !== null) this.#replayed?.(run, n)
    this.#replaying.set(run, { record, told: n !== null })
  }

  /** Run `run` has ended, or its replay is over after `released` releases. */
  done(run: Run, released = run.weft.released): void {
    const r = this.#replaying.get(run)
    if (r === undefined) return
    this.#replaying.delete(run)
    this.#resumedDone++
    // Stopped before its record's last block came: what it released.
    const n = r.record.knownLength ?? released
    this.#replayedDone += n
    if (!r.told) this.#replayed?.(run, n)
  }

  progress(): ResumeProgress {
    for (const run of [...this.#replaying.keys()]) if (run.ended || !run.weft.replaying) this.done(run)
    let partial = 0
    let entries = this.#replayedDone
    for (const [run, { record }] of this.#replaying) {
      partial += run.weft.released
      // Not known before its last block came (not counted): at most one a seq.
      entries += record.knownLength ?? record.lastSeq + 1
    }
    return { threads: this.#resumedDone + this.#replaying.size, done: this.#resumedDone, entries, replayed: this.#replayedDone + partial }
  }
}

/**
 * What woke a passivated thread: a message it takes, its due time, the end of the thread it joins,
 * or a kill, an exit signal of a linked thread, a cancel, a move or a reload acting on it.
 */
export type WokenBy = 'message' | 'timer' | 'join' | 'kill' | 'exit' | 'cancel' | 'move' | 'reload'

export interface WeaveEvents {
  /**
   * `continued`: how many times the thread has continued as new (src/continue/), absent for none.
   * `woke`: what woke a passivated thread (src/passivation/), for a run that is its wake (resumed).
   */
  'thread-start': [{ id: string; type: string; resumed: boolean; continued?: number; woke?: WokenBy }]
  'thread-end': [ThreadEnd]
  /** A waiting thread left memory (src/passivation/); it wakes by replay when what it waits for comes. */
  'thread-passivated': [{ id: string; type: string }]
  /** A reload (`reload()`) loaded changed thread files: which threads moved to the new code, which kept theirs. */
  reload: [ReloadReport]
  /**
   * A close waits for the calls in flight (`close({ wait })`) of `threads` threads, up to `wait` ms.
   * `oldCode`: the threads a reload kept on their old code, which the next start resumes under the
   * files on disk (emitted for them even with no wait).
   */
  'stop-wait': [{ threads: number; wait: number; oldCode: string[] }]
  /** It waited `ms`: `left` threads still had calls in flight (they are made again at the next start). */
  'stop-waited': [StopWait]
  error: [Error]
}

/** How a recorded thread ended, or null while it is pending or running. */
export function rowEnd(row: ThreadRow, forward?: string): ThreadEnd | null {
  switch (row.status) {
    case 'moved':
      return { id: row.id, type: row.type, status: 'moved', to: forward ?? '(unknown)' }
    case 'done':
      return { id: row.id, type: row.type, status: 'done', result: decodeValue(row.outcome ?? 'U') }
    case 'failed':
      return { id: row.id, type: row.type, status: 'failed', error: errorFromRecord(decodeValue(row.outcome ?? 'U') as ErrorRecord) }
    case 'killed':
      return { id: row.id, type: row.type, status: 'killed' }
    default:
      return null
  }
}

/**
 * @internal What the helpers that act on a weave's runs (moves between weaves, forks, reloads)
 * reach of it: src/weave.ts makes one over its private state, so none of it is public.
 */
export interface WeaveHost {
  readonly weave: Weave
  closed(): boolean
  /** A close waits for the calls in flight: a run's new weft stops at its next call too. */
  stopping(): boolean
  run(id: string): Run | undefined
  runs(): Iterable<Run>
  /** The thread type of that name this weave runs, if it runs it. */
  type(name: string): AnyThreadType | undefined
  /**
   * Registers a run before it starts (`entries`: its record, for a resumed run; `trace`: the
   * traceparent it goes on; `continued`: how many times it continued as new).
   */
  prepare(id: string, type: string, parent: string | null, entries: Entry[] | RecordBlocks | null, trace?: string | null, continued?: number, scope?: string | null): Run
  /** `woke`: the run is the wake of a passivated thread, by that. */
  start(run: Run, t: AnyThreadType, params: unknown, resumed: boolean, woke?: WokenBy): void
  /** The run's end is committed: tell its joiners and the 'thread-end' listeners. */
  ended(run: Run, end: ThreadEnd): void
  /** A recorded thread whose type this weave cannot run ends failed with why. */
  cannotRun(id: string, type: string, parent: string | null): void
  /** A recorded thread whose type this weave cannot run waits for it, as a run that runs nothing (src/weave-parked.ts). */
  park(row: Parkable): Run
  isParked(run: Run): boolean
  /** The weave runs `type` now (a reload loaded it): its waiting threads resume (those waiting for code only if in `replays`); their ids. */
  unpark(type: string, replays?: ReadonlySet<string>): string[]
  /** The ids of the threads of `type` (of every type when none is given) that wait for code that replays their record (src/divergence-wait.ts). */
  waitingForCode(type?: string): string[]
  /** Thread `id`, waiting for code that replays its record, still diverges (`where`: where) under the code a reload loaded. */
  stillDiverges(id: string, where: string): void
  cannotRunType(type: string): RaimentError
  /** The thread's record as committed, for a replay. */
  entries(id: string): Entry[]
  /** The thread's record as committed, in blocks split as a replay reaches them. */
  record(id: string): RecordBlocks
  /** A new weft for the run, replaying `entries`. */
  weft(run: Run, entries: Entry[] | RecordBlocks | null): Weft
  observer(): Observer | null
  /** The run of thread `id`, woken by replay first (by `by`) if it is passivated (src/passivation/). */
  wake(id: string, by: WokenBy): Run | undefined
  /** The ids of the passivated threads of `type` (none when passivation is off). */
  passivated(type: string): string[]
}

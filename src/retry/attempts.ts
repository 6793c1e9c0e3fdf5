/**
 * The record of retried attempts: one row of `retry_attempts` per failed attempt of a call that
 * is retried, keyed by the call id (the same for every attempt of a call) and the attempt number.
 *
 * Invariant: a row is written through the journal's group commit (so it is replicated like any
 * other write), and the wait it announces starts only once it is durable: after a crash, the
 * attempts already made and the time the next one is due are both read back from here.
 */
import type Database from 'better-sqlite3'
import type { Journal } from '../journal.js'

/** One failed attempt, as recorded. */
export interface AttemptRow {
  /** The call id. */
  call: string
  /** The attempt, from 1. */
  n: number
  /** `lib.method` */
  name: string
  /** The error, encoded as the journal encodes errors (decodeError). */
  error: string
  /** When the attempt started and when it failed (ms since the epoch). */
  started: number
  ended: number
  /** When the next attempt may start (ms since the epoch). */
  due: number
}

type Stmt = Database.Statement<unknown[]>

const COLS = 'call, n, name, error, started, ended, due'

/** The attempts of one journal. */
export class AttemptLog {
  readonly #journal: Journal
  #insert: Stmt | null = null
  #ofCall: Stmt | null = null
  #ofThread: Stmt | null = null
  /**
   * The calls of unfinished threads that have failed attempts and no final outcome: read once,
   * then kept up to date by add and settled, so that a fresh call (nearly every call) asks SQLite
   * nothing.
   */
  #calls: Set<string> | null = null

  private constructor(journal: Journal) {
    this.#journal = journal
  }

  static readonly #logs = new WeakMap<Journal, AttemptLog>()

  /** The log of `journal` (one per journal, its statements prepared once). */
  static of(journal: Journal): AttemptLog {
    let log = AttemptLog.#logs.get(journal)
    if (log === undefined) AttemptLog.#logs.set(journal, (log = new AttemptLog(journal)))
    return log
  }

  /** The failed attempts of call `callId` so far, in order. */
  ofCall(callId: string): AttemptRow[] {
    if (!this.#known().has(callId)) return []
    this.#ofCall ??= this.#journal.db.prepare(`SELECT ${COLS} FROM retry_attempts WHERE call = ? ORDER BY n`)
    return this.#ofCall.all(callId) as AttemptRow[]
  }

  #known(): Set<string> {
    return (this.#calls ??= new Set(
      this.#journal.db
        .prepare('SELECT DISTINCT a.call FROM retry_attempts a JOIN threads t ON t.id = a.thread WHERE t.ended IS NULL')
        .pluck()
        .all() as string[],
    ))
  }

  /** Every failed attempt of a thread's calls, by call id then attempt. */
  ofThread(thread: string): AttemptRow[] {
    this.#ofThread ??= this.#journal.db.prepare(`SELECT ${COLS} FROM retry_attempts WHERE thread = ? ORDER BY call, n`)
    return this.#ofThread.all(thread) as AttemptRow[]
  }

  /** @internal How many call ids it keeps in memory (none for calls that have their final outcome). */
  get keptCalls(): number {
    return this.#calls?.size ?? 0
  }

  /** Call `callId` has its final outcome (recorded next): its id is let go of (its rows stay, for `raiment show`). */
  settled(callId: string): void {
    this.#calls?.delete(callId)
  }

  /** Queues a failed attempt into the next commit; `after` runs once it is durable. */
  add(thread: string, a: AttemptRow, after?: () => void): void {
    this.#insert ??= this.#journal.db.prepare(
      `INSERT OR REPLACE INTO retry_attempts (thread, ${COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    )
    this.#known().add(a.call)
    this.#journal.queue(this.#insert, [thread, a.call, a.n, a.name, a.error, a.started, a.ended, a.due], after)
  }
}

/**
 * The journal's `control` table: what other processes (the CLI, the UI) ask of the weave running
 * on it (src/weave-control.ts), and its answers.
 *
 * Invariants:
 * - A request is `done` 0 until answered; the asker may withdraw it (delete it) only then.
 * - An answer is given (`done` 2, with its reply) in the group commit of what it answers (a kill's
 *   end, a send's inbox row, queued before it), so a crash loses both or neither; it is told
 *   (`done` 1, what the asker waits for) in a later commit, once that one is released (under
 *   'replicated': in the journal's stream). Answers given by a weave that stopped before telling
 *   them are told by the next one (`answered`, `release`).
 */
import type Database from 'better-sqlite3'
import type { Journal } from './journal.js'

export interface ControlRow {
  n: number
  kind: string
  thread: string | null
  arg: string | null
}

type Stmt = Database.Statement<unknown[]>

export class ControlTable {
  readonly #journal: Journal
  readonly #pending: Stmt
  readonly #waiting: Stmt
  readonly #answered: Stmt
  readonly #answer: Stmt
  readonly #release: Stmt

  constructor(journal: Journal) {
    this.#journal = journal
    const db = journal.db
    this.#pending = db.prepare('SELECT n, kind, thread, arg FROM control WHERE done = 0 ORDER BY n')
    this.#waiting = db.prepare('SELECT 1 FROM control WHERE n = ? AND done = 0')
    this.#answered = db.prepare('SELECT n FROM control WHERE done = 2').pluck()
    this.#answer = db.prepare('UPDATE control SET done = 2, reply = ? WHERE n = ?')
    this.#release = db.prepare('UPDATE control SET done = 1 WHERE n = ? AND done = 2')
  }

  /** The requests not answered yet, oldest first. */
  pending(): ControlRow[] {
    return this.#pending.all() as ControlRow[]
  }

  /** Whether request `n` is still there, unanswered (its asker withdraws it after a while). */
  waiting(n: number): boolean {
    return this.#waiting.get(n) !== undefined
  }

  /** Answers request `n` in the next group commit, and tells it once that commit is released. */
  reply(n: number, reply: string): void {
    this.#journal.queue(this.#answer, [reply, n], () => this.#journal.queue(this.#release, [n]))
  }

  /** The requests answered and not yet told (a weave stopped between). */
  answered(): number[] {
    return this.#answered.all() as number[]
  }

  /** Tells the answers `ns` (of `answered`), in the next group commit. */
  release(ns: readonly number[]): void {
    for (const n of ns) this.#journal.queue(this.#release, [n])
  }
}

/**
 * The journal's `control` table: what other processes (the CLI, the UI) ask of the weave running
 * on it (src/weave-control.ts), and its answers.
 *
 * Invariants:
 * - A request is `done` 0 until the weave takes it; the asker may withdraw it (delete it) only
 *   then. The weave claims it (`done` 3) in the transaction that reads it, before acting on it, so
 *   nothing an asker withdrew is ever done. A claimed request left by a weave that stopped before
 *   answering is taken again by the next one (what it did was not committed: see below); its
 *   asker withdraws it only while no weave owns the journal (`withdraw`).
 * - An answer is given (`done` 2, with its reply) in the group commit of what it answers (a kill's
 *   end, a send's inbox row, queued before it), so a crash loses both or neither; it is told
 *   (`done` 1, what the asker waits for) in a later commit, once that one is released (under
 *   'replicated': in the journal's stream). Answers given by a weave that stopped before telling
 *   them are told by the next one (`answered`, `release`).
 * - A told answer is deleted TOLD_KEPT_MS after it was told (or after the weave opened, for one
 *   told before), once its asker has read it: the table holds what is under way, not history.
 */
import type Database from 'better-sqlite3'
import { JournalLock } from './journal-owner.js'
import type { Journal } from './journal.js'

export interface ControlRow {
  n: number
  /** 0: new; 3: claimed before (by this weave, or one that stopped before answering). */
  done: number
  kind: string
  thread: string | null
  arg: string | null
  /** A send's message id, chosen by the asker (null in a request written before there was one). */
  msg_id: string | null
}

type Stmt = Database.Statement<unknown[]>

/** How long a told answer stays for its asker to read (askers read it within a poll, and give up after 35 s). */
export const TOLD_KEPT_MS = 60_000
const FORGET_AT_ONCE = 1_000

export class ControlTable {
  readonly #journal: Journal
  readonly #pending: Stmt
  readonly #claim: Stmt
  readonly #answered: Stmt
  readonly #answer: Stmt
  readonly #release: Stmt
  readonly #forget: Stmt
  readonly #newest: Stmt
  /** Answers told (`done` 1), oldest first, with when: deleted TOLD_KEPT_MS later, read by then. */
  readonly #told: Array<[n: number, at: number]> = []

  constructor(journal: Journal) {
    this.#journal = journal
    const db = journal.db
    this.#pending = db.prepare('SELECT n, done, kind, thread, arg, msg_id FROM control WHERE done IN (0, 3) ORDER BY n')
    this.#claim = db.prepare('UPDATE control SET done = 3 WHERE done = 0 AND n <= ?')
    this.#answered = db.prepare('SELECT n FROM control WHERE done = 2').pluck()
    this.#answer = db.prepare('UPDATE control SET done = 2, reply = ? WHERE n = ?')
    this.#release = db.prepare('UPDATE control SET done = 1 WHERE n = ? AND done = 2')
    this.#forget = db.prepare('DELETE FROM control WHERE n = ? AND done = 1')
    this.#newest = db.prepare('SELECT max(n) FROM control').pluck()
    // Told before this weave opened: their askers get as long from now.
    const now = Date.now()
    for (const n of db.prepare('SELECT n FROM control WHERE done = 1 ORDER BY n').pluck().all() as number[]) this.#told.push([n, now])
  }

  /**
   * The requests not answered yet, oldest first, claimed (those new are `done` 3 from now on) in
   * the transaction that reads them: their askers can no longer withdraw them.
   */
  take(): ControlRow[] {
    return this.#journal.db
      .transaction(() => {
        this.#forgetRead()
        const rows = this.#pending.all() as ControlRow[]
        if (rows.some((r) => r.done === 0)) this.#claim.run(rows[rows.length - 1]!.n)
        return rows
      })
      .immediate()
  }

  /** Deletes the answers told TOLD_KEPT_MS ago or more: their askers have read them (or gone). */
  #forgetRead(): void {
    const told = this.#told
    const before = Date.now() - TOLD_KEPT_MS
    if (told.length === 0 || told[0]![1] > before) return
    // The newest row stays (`n` is a rowid: deleting the highest would give its number again), and
    // at most FORGET_AT_ONCE go at one poll (an old journal's backlog goes over several).
    const newest = this.#newest.get() as number
    let i = 0
    for (; i < told.length && i < FORGET_AT_ONCE && told[i]![1] <= before && told[i]![0] < newest; i++) this.#forget.run(told[i]![0])
    if (i > 0) told.splice(0, i)
  }

  /** Request `n` is told (`done` 1) in the next group commit. */
  #tell(n: number): void {
    this.#journal.queue(this.#release, [n], () => this.#told.push([n, Date.now()]))
  }

  /** Answers request `n` in the next group commit, and tells it once that commit is released. */
  reply(n: number, reply: string): void {
    this.#journal.queue(this.#answer, [reply, n], () => this.#tell(n))
  }

  /** The requests answered and not yet told (a weave stopped between). */
  answered(): number[] {
    return this.#answered.all() as number[]
  }

  /** Tells the answers `ns` (of `answered`), in the next group commit. */
  release(ns: readonly number[]): void {
    for (const n of ns) this.#tell(n)
  }
}

/**
 * The asker's withdrawal of request `n` (the CLI gave up waiting): true when it is withdrawn and
 * will never be acted on. A request the weave has not taken is; one it claimed is only when no
 * weave owns the journal (one that claimed it and stopped before answering committed nothing of
 * it), checked in the transaction that deletes it, so a weave opening now finds it gone.
 */
export function withdraw(journal: Journal, n: number | bigint): boolean {
  return journal.db
    .transaction(() => {
      if (journal.db.prepare('DELETE FROM control WHERE n = ? AND done = 0').run(n).changes === 1) return true
      return !JournalLock.held(journal.file) && journal.db.prepare('DELETE FROM control WHERE n = ? AND done = 3').run(n).changes === 1
    })
    .immediate()
}

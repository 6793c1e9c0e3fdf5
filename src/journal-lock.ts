/**
 * The owner lock of a journal: whatever runs threads on a journal file holds it for as long as
 * it does, so one process (one weave) runs a journal at a time.
 *
 * Invariants:
 * - The lock is an exclusive SQLite lock (a POSIX fcntl lock, through better-sqlite3) on the
 *   sidecar file `<journal>-lock`, held by a transaction kept open on a connection of its own.
 *   The kernel drops it when the process ends, however it ends (a SIGKILL included), so no crash
 *   leaves a stale lock; within one process, SQLite's own lock table keeps a second connection
 *   out, so a second owner in the same process is refused too.
 * - Nothing is ever written to the sidecar: it stays an empty file, and its rollback journal is
 *   in memory, so no `-journal` file appears beside it.
 * - The sidecar is never deleted: a process that opened it before a deletion could lock the old
 *   file while another process locks a new one, and both would own the journal.
 * - `held` opens the sidecar read-only and creates no file.
 */
import Database from 'better-sqlite3'

/** The sidecar file whose lock says who owns `journal`. */
export function lockPath(journal: string): string {
  return `${journal}-lock`
}

/** The lock is held by someone else (the caller names them). */
export class LockHeld extends Error {}

export class JournalLock {
  /** The open connection whose transaction holds the lock; null once released. */
  #db: Database.Database | null

  private constructor(db: Database.Database) {
    this.#db = db
  }

  /**
   * Takes the owner lock of `journal` (creating the empty sidecar file if needed), or fails at
   * once when another connection, in this process or another, holds it.
   * @throws LockHeld when it is held
   */
  static take(journal: string): JournalLock {
    const file = lockPath(journal)
    // A process only probing the lock (`held`) holds a shared lock for a moment, and that makes
    // an attempt fail too: after a refusal, a lock nobody holds is tried once more, waiting up
    // to a second for such a probe to end.
    for (const wait of [0, 1_000]) {
      const db = new Database(file, { timeout: wait })
      try {
        db.pragma('journal_mode = MEMORY')
        db.pragma('locking_mode = EXCLUSIVE')
        db.exec('BEGIN EXCLUSIVE')
        return new JournalLock(db)
      } catch (e) {
        db.close()
        if ((e as { code?: string }).code !== 'SQLITE_BUSY') throw e
        if (JournalLock.held(journal)) break
      }
    }
    throw new LockHeld(`${file} is locked`)
  }

  /**
   * Whether someone (this process included) holds the owner lock of `journal` now. Opens the
   * sidecar read-only and creates no file; a missing sidecar means no one ever held the lock.
   */
  static held(journal: string): boolean {
    let db: Database.Database
    try {
      db = new Database(lockPath(journal), { readonly: true, fileMustExist: true, timeout: 0 })
    } catch {
      return false
    }
    try {
      db.pragma('schema_version')
      return false
    } catch (e) {
      return (e as { code?: string }).code === 'SQLITE_BUSY'
    } finally {
      db.close()
    }
  }

  /** Releases the lock (closing its connection); a second call does nothing. */
  release(): void {
    this.#db?.close()
    this.#db = null
  }
}

/**
 * Who may open a journal, and how: the owner lock (whatever runs threads on a journal file holds
 * it for as long as it does, so one process, one weave, runs a journal at a time), opening a
 * journal only to read it without creating a file, and leaving WAL mode when no owner remains.
 *
 * Invariants:
 * - The lock is an exclusive SQLite lock (a POSIX fcntl lock, through better-sqlite3) on the
 *   sidecar file `<journal>-lock` (beside the real file, symbolic links resolved), held by a transaction kept open on a connection of its own.
 *   The kernel drops it when the process ends, however it ends (a SIGKILL included), so no crash
 *   leaves a stale lock; within one process, SQLite's own lock table keeps a second connection
 *   out, so a second owner in the same process is refused too.
 * - Nothing is ever written to the sidecar: it stays an empty file, and its rollback journal is
 *   in memory, so no `-journal` file appears beside it.
 * - The sidecar is never deleted: a process that opened it before a deletion could lock the old
 *   file while another process locks a new one, and both would own the journal.
 * - `held` opens the sidecar read-only and creates no file.
 * - A journal file is replaced or deleted only under its owner lock (a restore, a takeover's
 *   rebuild, a refused start removing the journal it made), and an owner opens the file before it
 *   takes the lock: once it holds it, it checks that the path still leads to the file it opened
 *   (`fileId` before the open and after the lock, src/journal-open.ts), or opens it again, so it never
 *   runs on a file unlinked under it.
 * - A journal file with two names (a hard link) is never written (`refuseLinked`): its sidecar,
 *   and SQLite's -wal, are beside the name, so each name would have an owner of its own.
 * - The journal is in WAL mode only while an owner runs, or after one died (src/journal-open.ts turns
 *   WAL on for owners only; `leaveWal` turns it off), so `openToRead` finds the file alone, or its
 *   -wal and -shm already there.
 */
import Database from 'better-sqlite3'
import { closeSync, existsSync, openSync, readFileSync, readSync, realpathSync, statSync } from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { hostname } from 'node:os'
import { InvalidArgument, JournalLinked, JournalOwned, type JournalOwner } from './errors.js'

/**
 * The sidecar file whose lock says who owns `journal`: beside the file the path leads to, its
 * links followed as SQLite follows them, so a journal opened through a symbolic link (of the file
 * or of a directory on its path) has the one sidecar whatever path names it.
 */
export function lockPath(journal: string): string {
  return `${realFile(journal)}-lock`
}

/** `journal` with its symbolic links resolved; for a file not there yet, its directory's. */
export function realFile(journal: string): string {
  if (journal === ':memory:') return journal
  try {
    return realpathSync(journal)
  } catch {
    try {
      return join(realpathSync(dirname(journal)), basename(journal))
    } catch {
      return journal
    }
  }
}

/**
 * Refuses journal `file` to whatever would write it (its owner, a CLI command writing beside it,
 * a replication's rebuild) while the file has more than one name: the owner lock and SQLite's
 * -wal and -shm are beside the name, so through a hard link a second owner takes a lock of its
 * own and writes a WAL of its own. Reads the file's inode only; a file not there yet passes.
 * @throws JournalLinked when the file has more than one hard link
 */
export function refuseLinked(file: string): void {
  if (file === ':memory:') return
  const links = statSync(file, { throwIfNoEntry: false })?.nlink ?? 1
  if (links > 1) throw new JournalLinked(file, links)
}

/**
 * The file at `journal` now, as `device:inode` (symbolic links followed, as SQLite follows them),
 * or null when there is none. A file that a connection holds open keeps its inode, unlinked or
 * not, so no other file can have it meanwhile: the same value before an open and once the owner
 * lock is held says the connection is on the file the path leads to.
 */
export function fileId(journal: string): string | null {
  const s = statSync(journal, { bigint: true, throwIfNoEntry: false })
  return s === undefined ? null : `${s.dev}:${s.ino}`
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
    const file = lockPath(journal)
    if (!existsSync(file)) return false
    // Any other failure to look (no permission, no file descriptor left) is thrown: taken for
    // "no owner", it would let a writer work beside a running weave.
    const db = new Database(file, { readonly: true, fileMustExist: true, timeout: 0 })
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

/**
 * Takes the journal that `db` (a connection that may write) is open on back to rollback mode
 * (the WAL checkpointed into the file, then removed) when no owner remains: `owner` closing, or
 * no one holding the lock. Another connection still open keeps it in WAL mode (busy): then that
 * one, or the next owner, does it; either way every -wal and -shm stays until it is not needed.
 */
export function leaveWal(db: Database.Database, journal: string, owner: boolean): void {
  if (journal === ':memory:' || (!owner && JournalLock.held(journal))) return
  try {
    if (db.pragma('journal_mode', { simple: true }) !== 'wal') return
    db.pragma('busy_timeout = 250')
    db.pragma('journal_mode = DELETE')
  } catch {
    // Busy: see above.
  }
}

/**
 * A connection to `journal` that only reads and creates no file. Read-only SQLite creates -wal
 * and -shm for a WAL-mode file that has neither (as a Raiment before owner locks left one, or a
 * program other than Raiment). Such a file holds every committed page itself, so it is read from
 * a copy in memory, its header set to rollback mode: readers running at once never see each
 * other's files. A file too large to copy is opened for writing with writes refused instead, and
 * SQLite removes the two files again when its last connection closes (two such readers at once
 * can leave them behind).
 */
export function openToRead(journal: string): Database.Database {
  // SQLite keeps -wal beside the real file: through a symbolic link, look there.
  if (!walMode(journal) || existsSync(`${realFile(journal)}-wal`)) return new Database(journal, { readonly: true, fileMustExist: true })
  if (statSync(journal).size <= COPY_LIMIT) {
    const image = readFileSync(journal)
    // Bytes 18 and 19: the file format's write and read versions, 2 for WAL, 1 for rollback.
    image[18] = 1
    image[19] = 1
    return new Database(image, { readonly: true })
  }
  let db: Database.Database
  try {
    db = new Database(journal, { fileMustExist: true })
  } catch {
    return new Database(journal, { readonly: true, fileMustExist: true })
  }
  db.pragma('query_only = ON')
  return db
}

/** The largest WAL-mode journal without a -wal that `openToRead` reads from a copy in memory. */
const COPY_LIMIT = 256 * 1024 * 1024

/** Whether the header of an SQLite file says WAL mode (its read and write versions are 2). */
function walMode(file: string): boolean {
  const header = Buffer.alloc(20)
  let fd: number
  try {
    fd = openSync(file, 'r')
  } catch {
    return false
  }
  try {
    return readSync(fd, header, 0, 20, 0) === 20 && header[18] === 2 && header[19] === 2
  } finally {
    closeSync(fd)
  }
}

/** How long a statement waits for another process's lock before 'database is locked'. */
export const BUSY_MS = 5_000

/**
 * Runs `f`, again while it fails busy, for up to `ms`. For what SQLite's busy timeout does not
 * wait on: a change of journal mode fails at once while another process writes (a CLI's kill).
 */
export function whenNotBusy<T>(f: () => T, ms: number): T {
  const until = Date.now() + ms
  const pause = new Int32Array(new SharedArrayBuffer(4))
  for (;;) {
    try {
      return f()
    } catch (e) {
      if ((e as { code?: string }).code !== 'SQLITE_BUSY' || Date.now() >= until) throw e
      Atomics.wait(pause, 0, 0, 10)
    }
  }
}

/** The owner record (meta 'owner') as written by an owner's open, or null. */
export function parseOwner(text: string | undefined): JournalOwner | null {
  if (text === undefined) return null
  try {
    const o = JSON.parse(text) as Partial<JournalOwner>
    if (typeof o.pid !== 'number' || typeof o.host !== 'string' || typeof o.since !== 'number') return null
    return { pid: o.pid, host: o.host, since: o.since, ...(o.replicated === true ? { replicated: true } : {}) }
  } catch {
    return null
  }
}

/**
 * Takes the owner lock of `file`, or throws JournalOwned naming the owner as it recorded itself
 * (`ownerMeta` reads it through a connection that has written nothing).
 */
export function takeOwnerLock(file: string, ownerMeta: () => string | undefined): JournalLock {
  try {
    return JournalLock.take(file)
  } catch (e) {
    if (!(e instanceof LockHeld)) {
      throw new InvalidArgument(`could not take the owner lock of ${file} (${(e as Error).message}); its sidecar ${lockPath(file)} must be an empty file`)
    }
    let owner: JournalOwner | null = null
    try {
      owner = parseOwner(ownerMeta())
    } catch {
      // No meta table yet: the owner is creating the journal now.
    }
    throw new JournalOwned(file, owner, owner !== null && owner.pid === process.pid && owner.host === hostname())
  }
}

/** The weave id of a new journal not given one: the host's name and the file's. */
export function defaultWeaveId(file: string): string {
  const host = hostname().split('.')[0] ?? 'host'
  const name = file === ':memory:' ? 'memory' : basename(file).replace(/\.[^.]*$/, '')
  return `${host}-${name}`.replace(/[^A-Za-z0-9_.-]/g, '-')
}

/**
 * Opening a journal's connection (src/journal.ts): the checks of the path that give a clearer
 * error than SQLite would, the schema's check and migration, and for an owner its lock and WAL.
 *
 * Invariant: an owner runs on the file its path leads to. The file's identity (device and inode)
 * read before the open must still be the path's once the owner lock is taken, before anything is
 * written. Else (the file replaced or deleted meanwhile, under that lock, by a restore, a
 * takeover's rebuild or a refused start; a check failing on such a file too) it closes, releases
 * and opens again, up to OPEN_TRIES times, then throws JournalReplaced. A file it created, it
 * opens again, so that its identity is known.
 */
import Database from 'better-sqlite3'
import { existsSync, statSync } from 'node:fs'
import { dirname } from 'node:path'
import { InvalidArgument, JournalReplaced, NotARaimentDb } from './errors.js'
import { stopPoint } from './crash-points.js'
import { BUSY_MS, fileId, openToRead, refuseLinked, takeOwnerLock, whenNotBusy, type JournalLock } from './journal-owner.js'
import { checkAndMigrate } from './journal-schema.js'
import type { Durability } from './journal-types.js'

/** How many times an owner opens a file replaced before it took the lock, before JournalReplaced. */
const OPEN_TRIES = 5

export interface OpenHow {
  readonly: boolean
  /** It takes the owner lock (a writer that runs threads on the file). */
  own: boolean
  memory: boolean
  durability: Durability
}

/**
 * Opens journal `file` (`path`: resolved): checked, migrated, for an owner locked and in WAL mode.
 * @throws see `Journal`'s constructor
 */
export function openJournal(file: string, path: string, o: OpenHow): { db: Database.Database; lock: JournalLock | null } {
  if (o.readonly && !o.memory && !existsSync(file)) {
    throw new InvalidArgument(`no journal at ${file}; start a weave there first (raiment start --db ${file})`)
  }
  if (!o.memory && existsSync(file) && statSync(file).isDirectory()) {
    throw new NotARaimentDb(file, 'it is a directory')
  }
  // SQLite would say only 'unable to open database file'.
  if (!o.memory && !existsSync(dirname(path))) {
    throw new InvalidArgument(`the directory of journal ${file} (${dirname(path)}) does not exist; create it first (Raiment creates the journal file, not its directory), or use a path in a directory that exists`)
  }
  // A second name of the file would be a second owner (src/journal-owner.ts): refused before it is opened.
  if (!o.readonly && !o.memory) refuseLinked(file)
  // An owner's file replaced or deleted between its open and the lock: opened again (see the invariant).
  for (let tries = 1; ; tries++) {
    const opened = o.own ? fileId(file) : null
    let db: Database.Database
    try {
      db = o.readonly ? openToRead(file) : new Database(file)
    } catch (e) {
      throw new NotARaimentDb(file, (e as Error).message)
    }
    // Created by this open: what it is is known from the next one.
    if (o.own && opened === null && tries < OPEN_TRIES) {
      db.close()
      continue
    }
    if (o.own && tries === 1) stopPoint('journal-opened')
    if (o.own) stopPoint('journal-opened-each')
    // First: every statement below, the checks included, waits out another's lock (not 'database is locked').
    db.pragma(`busy_timeout = ${BUSY_MS}`)
    let lock: JournalLock | null = null
    try {
      checkAndMigrate(db, file, o.readonly, o.own, () => {
        lock = takeOwnerLock(file, () => (db.prepare("SELECT v FROM meta WHERE k = 'owner'").get() as { v: string } | undefined)?.v)
        const found = fileId(file)
        if (found !== opened) throw new JournalReplaced(file, tries, opened, found)
      })
      if (!o.readonly) {
        // Only an owner turns WAL on: beside one, the journal is in WAL mode already; without
        // one, a short write keeps it in rollback mode, which a read-only open needs no new file for.
        if (o.own) whenNotBusy(() => db.pragma('journal_mode = WAL'), BUSY_MS)
        db.pragma(`synchronous = ${o.durability === 'sync' || o.durability === 'replicated' ? 'FULL' : o.durability === 'batched' ? 'NORMAL' : 'OFF'}`)
      }
      return { db, lock }
    } catch (e) {
      db.close()
      ;(lock as JournalLock | null)?.release()
      // Replaced or deleted since the open, found once locked or by a check failing on it (a
      // deleted file in WAL mode cannot be read): opened again.
      const found = o.own ? fileId(file) : null
      if (o.own && found !== opened) {
        if (tries < OPEN_TRIES) continue
        throw e instanceof JournalReplaced ? e : new JournalReplaced(file, tries, opened, found, e instanceof Error ? e : undefined)
      }
      throw e
    }
  }
}

/**
 * The journal files a ReplicatedHost keeps (src/replication/host.ts): what a file says of itself
 * (its epoch, durability, weave id, the types of its live threads), read without owning it, and
 * the moves of a file set aside, made one file or removed.
 */
import { copyFileSync, existsSync, readdirSync, renameSync, rmSync } from 'node:fs'
import { basename, dirname, join, resolve } from 'node:path'
import Database from 'better-sqlite3'
import { InvalidArgument, JournalOwned } from '../errors.js'
import { DURABILITIES, Journal, type Durability } from '../journal.js'
import { JournalLock, parseOwner, refuseLinked, takeOwnerLock } from '../journal-owner.js'
import { fsyncPath, syncDir } from '../fsync.js'

/** The epoch journal `db` writes (meta 'repl_epoch'; 1 for a new one). */
export function journalEpoch(db: string): number {
  return Number(journalMeta(db, 'repl_epoch') ?? '1')
}

/** The durability journal `db`'s weave last ran with (its meta says since 2026-12-06), if it says. */
export function journalDurability(db: string): Durability | undefined {
  const d = journalMeta(db, 'durability') as Durability | undefined
  return d !== undefined && DURABILITIES.includes(d) ? d : undefined
}

/** Meta `k` of journal `db`, read without owning it; undefined when there is no such row or file. */
function journalMeta(db: string, k: string): string | undefined {
  if (!existsSync(db)) return undefined
  const j = new Journal(db, { readonly: true })
  try {
    return j.meta(k)
  } finally {
    j.close()
  }
}

/**
 * The weave id of journal `db` (the lease is named by it), creating the journal if there is none
 * (as Weave.open would).
 * @throws InvalidArgument when `wanted` is not the id the journal was created with
 */
export function weaveIdOf(db: string, wanted: string | undefined): string {
  const j = existsSync(db) ? new Journal(db, { readonly: true }) : new Journal(db, wanted !== undefined ? { weaveId: wanted } : {})
  try {
    if (wanted !== undefined && j.weaveId !== wanted) {
      throw new InvalidArgument(`${db} belongs to weave '${j.weaveId}' (its thread ids name it); pass --id ${j.weaveId}, or another --db for weave '${wanted}'`)
    }
    return j.weaveId
  } finally {
    j.close()
  }
}

/** Refuses journal `db` while another process has it open (it is about to be set aside). */
export function refuseOwned(db: string): void {
  if (!existsSync(db) || !JournalLock.held(db)) return
  const j = new Journal(db, { readonly: true })
  try {
    throw new JournalOwned(db, parseOwner(j.meta('owner')), false)
  } finally {
    j.close()
  }
}

/** `name`, or `name.2`, `name.3`, ...: the first that no file has. */
export function freeName(name: string): string {
  let n = 1
  let out = name
  while (existsSync(out) || existsSync(`${out}-wal`)) out = `${name}.${++n}`
  return out
}

/**
 * Checkpoints journal `db`'s WAL into it and leaves WAL mode: the file alone holds it.
 * @throws JournalLinked when the file has another name (a hard link): left untouched
 */
function oneFile(db: string): void {
  refuseLinked(db)
  const d = new Database(db)
  try {
    d.pragma('wal_checkpoint(TRUNCATE)')
    d.pragma('journal_mode = DELETE')
  } finally {
    d.close()
  }
}

/**
 * The owner lock of journal `db`, taken to remove or replace the file: whatever would run on it
 * meanwhile is refused (src/journal-owner.ts). Its sidecar stays, as every sidecar does.
 * @throws JournalOwned when a weave runs on it
 */
export function lockJournal(db: string): JournalLock {
  return takeOwnerLock(db, () => journalMeta(db, 'owner'))
}

/**
 * Removes journal `file` with its WAL and shared memory, those that exist, under its owner lock;
 * never its lock's sidecar.
 * @throws JournalOwned when a weave runs on it (nothing is removed)
 */
export function removeJournal(file: string): void {
  if (!existsSync(file) && !existsSync(`${file}-wal`)) return
  const lock = lockJournal(file)
  try {
    for (const f of [file, `${file}-wal`, `${file}-shm`]) rmSync(f, { force: true })
  } finally {
    lock.release()
  }
}

/**
 * The thread types of journal `db`'s threads still to run (pending or running, passivated ones
 * included) that are not in `known`: a weave that cannot run them must not take the journal over.
 */
export function missingTypes(db: string, known: readonly string[]): string[] {
  const j = new Journal(db, { readonly: true })
  try {
    const types = j.db.prepare("SELECT DISTINCT type FROM threads WHERE status IN ('pending', 'running') ORDER BY type").pluck().all() as string[]
    return types.filter((t) => !known.includes(t))
  } finally {
    j.close()
  }
}

/** Removes what a rebuild into `fresh` left (an attempt that did not finish): the file, its WAL, its temporary files. */
export function clearRebuild(fresh: string): void {
  const dir = dirname(resolve(fresh))
  for (const f of readdirSync(dir)) if (f.startsWith(`${basename(fresh)}.rebuild-`)) rmSync(join(dir, f), { force: true })
  removeJournal(fresh)
}

/**
 * Journal `db` is replaced by `fresh`, rebuilt beside it: the old one, made one file (its WAL
 * checkpointed into it), is copied to `aside`, and the rebuilt one replaces it in one rename, so
 * a crash at any point leaves `db` whole (old or new). A copy, not a second name (a hard link):
 * a crash before the rename would leave `db` with two names, which no writer opens
 * (src/journal-owner.ts `refuseLinked`), and the start after it could not rebuild it. The caller
 * holds `db`'s owner lock throughout (`lockJournal`): no weave runs on the file it replaces.
 */
export function swapInRebuilt(db: string, fresh: string, aside: string): void {
  oneFile(db)
  // Under a name of its own until whole: a crash while copying leaves no half file named `aside`
  // (and its leftover goes at the next attempt).
  const copying = `${aside}.copying`
  rmSync(copying, { force: true })
  copyFileSync(db, copying)
  fsyncPath(copying)
  renameSync(copying, aside)
  renameSync(fresh, db)
  for (const f of [`${db}-wal`, `${db}-shm`]) rmSync(f, { force: true })
  syncDir(dirname(resolve(db)))
}

/**
 * Threads a reload kept on the code they started with (src/check/reload.ts): their record does
 * not replay under the file on disk, so a restart or a crash resumes them under it, where they
 * diverge. A user trial missed the `kept` line of a reload and lost a saga's compensation at the
 * next crash; so each of them is told where it cannot be missed: `raiment reload` exits 2,
 * `raiment ps` says `running (old code)`, `raiment show` and the UI say why.
 *
 * Invariants:
 * - The journal says which threads run old code (meta `oldcode:<id>` = why it was kept), for the
 *   read-only views: written when a reload keeps one, deleted when a reload moves it to the new
 *   code, when it continues as new (on the current code), ends or moves away; a weave opening
 *   deletes every such row (after a start no thread runs old code).
 */
import type Database from 'better-sqlite3'
import type { Journal } from './journal.js'

/** The prefix of the meta rows that say which threads run old code; the value: why it was kept. */
export const OLD_CODE = 'oldcode:'

/** Thread `id` was kept on old code by a reload, for `why` (`diverges at entry 1: …`). */
export function keptOnOldCode(journal: Journal, id: string, why: string): void {
  journal.queueMeta(OLD_CODE + id, why)
}

/** Thread `id` runs the code on disk now, or no more (ended, moved away). */
export function offOldCode(journal: Journal, id: string): void {
  journal.queueMetaDelete(OLD_CODE + id)
}

/** A weave opens: no thread of it runs old code. */
export function noOldCode(journal: Journal): void {
  for (const [id] of journal.metaWithPrefix(OLD_CODE)) journal.queueMetaDelete(OLD_CODE + id)
}

const ofStmt = new WeakMap<Database.Database, Database.Statement>()

/** Why running thread `id` was kept on old code by a reload, or undefined when it runs the code on disk. */
export function oldCodeOf(db: Database.Database, id: string): string | undefined {
  let stmt = ofStmt.get(db)
  if (stmt === undefined) ofStmt.set(db, (stmt = db.prepare('SELECT v FROM meta WHERE k = ?').pluck()))
  return stmt.get(OLD_CODE + id) as string | undefined
}

/** The threads running old code, by id: why each was kept. */
export function oldCodeThreads(journal: Journal): Map<string, string> {
  return new Map(journal.metaWithPrefix(OLD_CODE))
}

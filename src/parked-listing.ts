/**
 * What the read-only views (`raiment ps`, `raiment show`, the UI) tell of threads waiting for
 * their type (src/weave-parked.ts): a running thread with a meta row `parked:<id>` was left
 * waiting, not run, by the last weave on its journal, which could not run its type.
 */
import type Database from 'better-sqlite3'
import type { Journal } from './journal.js'

/** The prefix of the meta rows that say which threads wait for their type; the value: since when (ms). */
export const PARKED = 'parked:'

/** Since when (ms) each thread waiting for its type has waited, by id. */
export function parkedSince(journal: Journal): Map<string, number> {
  return new Map(journal.metaWithPrefix(PARKED).map(([id, v]) => [id, Number(v)]))
}

const ofStmt = new WeakMap<Database.Database, Database.Statement>()

/** Since when (ms) running thread `id` has waited for its type, or undefined. */
export function parkedOf(db: Database.Database, id: string): number | undefined {
  let stmt = ofStmt.get(db)
  if (stmt === undefined) ofStmt.set(db, (stmt = db.prepare('SELECT v FROM meta WHERE k = ?').pluck()))
  const v = stmt.get(PARKED + id) as string | undefined
  return v === undefined ? undefined : Number(v)
}

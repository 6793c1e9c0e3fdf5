/**
 * What the read-only views (`raiment ps`, `raiment show`, the UI) tell of threads waiting for
 * their type (src/weave-parked.ts): a running thread with a meta row `parked:<id>` was left
 * waiting, not run, by the last weave on its journal, which could not run its type.
 */
import type Database from 'better-sqlite3'

/** The prefix of the meta rows that say which threads wait for their type; the value: since when (ms). */
export const PARKED = 'parked:'

/** Since when (ms) each thread waiting for its type has waited, by id. */
export function parkedSince(db: Database.Database): Map<string, number> {
  const rows = db.prepare('SELECT substr(k, ?), v FROM meta WHERE substr(k, 1, ?) = ?').raw(true).all(PARKED.length + 1, PARKED.length, PARKED) as Array<[string, string]>
  return new Map(rows.map(([id, v]) => [id, Number(v)]))
}

const ofStmt = new WeakMap<Database.Database, Database.Statement>()

/** Since when (ms) running thread `id` has waited for its type, or undefined. */
export function parkedOf(db: Database.Database, id: string): number | undefined {
  let stmt = ofStmt.get(db)
  if (stmt === undefined) ofStmt.set(db, (stmt = db.prepare('SELECT v FROM meta WHERE k = ?').pluck()))
  const v = stmt.get(PARKED + id) as string | undefined
  return v === undefined ? undefined : Number(v)
}

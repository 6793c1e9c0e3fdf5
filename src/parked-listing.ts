/**
 * What the read-only views (`raiment ps`, `raiment show`, the UI) tell of threads that wait, not
 * run (src/weave-parked.ts): a running thread with a meta row `parked:<id>` was left waiting by
 * the last weave on its journal, which could not run its type (the value: since when, ms), or,
 * under `onDivergence: 'wait'`, whose record its code did not replay (the value: JSON
 * `{ since, diverges }`, `diverges` saying where: src/divergence-wait.ts).
 */
import type Database from 'better-sqlite3'
import type { Journal } from './journal.js'

/** The prefix of the meta rows that say which threads wait; the value: since when (ms), or JSON `{ since, diverges }`. */
export const PARKED = 'parked:'

/** Why a thread waits: for its type, or (`diverges`: where) for code that replays its record. */
export interface Parked {
  since: number
  diverges?: string
}

/** The value of a `parked:` row, read. */
export function parkedValue(v: string): Parked {
  if (!v.startsWith('{')) return { since: Number(v) }
  try {
    const o = JSON.parse(v) as { since?: unknown; diverges?: unknown }
    return { since: Number(o.since), ...(typeof o.diverges === 'string' ? { diverges: o.diverges } : {}) }
  } catch {
    return { since: NaN }
  }
}

/** The value of a `parked:` row of a thread that waits for code that replays it. */
export function divergedValue(since: number, diverges: string): string {
  return JSON.stringify({ since, diverges })
}

/** Since when and why each waiting thread has waited, by id. */
export function parkedSince(journal: Journal): Map<string, Parked> {
  return new Map(journal.metaWithPrefix(PARKED).map(([id, v]) => [id, parkedValue(v)]))
}

const ofStmt = new WeakMap<Database.Database, Database.Statement>()

/** Since when and why running thread `id` has waited, or undefined. */
export function parkedOf(db: Database.Database, id: string): Parked | undefined {
  let stmt = ofStmt.get(db)
  if (stmt === undefined) ofStmt.set(db, (stmt = db.prepare('SELECT v FROM meta WHERE k = ?').pluck()))
  const v = stmt.get(PARKED + id) as string | undefined
  return v === undefined ? undefined : parkedValue(v)
}

/**
 * What the read-only views (`raiment ps`, `raiment show`, the UI) tell of passivated threads: a
 * running thread with a row in `passivated` is out of memory, waiting for what the row says.
 */
import type Database from 'better-sqlite3'
import { readFilter } from './waits.js'

/** What a passivated thread waits for, and since when (ms since the epoch). */
export interface PassivatedView {
  /** When its sleep or receive timeout is due, or null. */
  due: number | null
  /** It waits for a message. */
  mailbox: boolean
  /** Which message wakes it (src/passivation/waits.ts), encoded; null: any. */
  filter: string | null
  /** The thread whose end it waits for, or null. */
  joins: string | null
  since: number
}

/** Whether the journal has table `name` (one of an older schema, opened read-only, may lack it); default `passivated`. */
export function hasTable(db: Database.Database, name = 'passivated'): boolean {
  return db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(name) !== undefined
}

/** The ids of the passivated threads. */
export function passivatedIds(db: Database.Database): Set<string> {
  if (!hasTable(db)) return new Set()
  return new Set(db.prepare('SELECT thread FROM passivated').pluck().all() as string[])
}

const isStmt = new WeakMap<Database.Database, Database.Statement | null>()

/** Is running thread `id` passivated? One lookup by its key (for a page of rows). */
export function isPassivated(db: Database.Database, id: string): boolean {
  let stmt = isStmt.get(db)
  if (stmt === undefined) isStmt.set(db, (stmt = hasTable(db) ? db.prepare('SELECT 1 FROM passivated WHERE thread = ?').pluck() : null))
  return stmt !== null && stmt.get(id) !== undefined
}

/** What passivated thread `id` waits for, or undefined if it is not passivated. */
export function passivatedOf(db: Database.Database, id: string): PassivatedView | undefined {
  if (!hasTable(db)) return undefined
  // *: a journal of schema 14, opened read-only, has no filter column.
  const r = db.prepare('SELECT * FROM passivated WHERE thread = ?').get(id) as { due: number | null; mailbox: number; filter?: string | null; joins: string | null; at: number } | undefined
  return r === undefined ? undefined : { due: r.due, mailbox: r.mailbox === 1, filter: r.filter ?? null, joins: r.joins, since: r.at }
}

/**
 * What it waits for, in words: `a message, until 2026-12-04T18:00:00.000Z` and the like; `at`
 * writes the time (ISO 8601 unless told).
 */
export function waitText(p: PassivatedView, at: (ms: number) => string = (ms) => new Date(ms).toISOString()): string {
  const what: string[] = []
  if (p.mailbox) what.push(`a message${filterText(p.filter)}`)
  if (p.joins !== null) what.push(`the end of ${p.joins}`)
  if (p.due !== null) what.push(`${what.length > 0 ? 'until ' : ''}${at(p.due)}`)
  return what.join(', ')
}

/** ` matching {"kind":"order"}`, ` its predicate accepts`, or nothing (any message). */
function filterText(filter: string | null): string {
  const f = readFilter(filter)
  if (f === null) return ''
  // (A predicate's wait is for any message it has not looked at: past an inbox position, which tells a user nothing.)
  return 'after' in f ? ' its predicate accepts' : ` matching ${JSON.stringify(f.match) ?? String(f.match)}`
}

/**
 * The schedules table of one journal: its rows, and its writes as prepared statements.
 *
 * The weave queues its writes into the journal's group commit (`journal.queue`), so a write
 * commits in the same transaction as whatever is queued beside it (the spawn of a thread and the
 * move of `upto` past its time) and reaches replication like any other. A process that does not
 * own the journal (the CLI while no weave runs) runs them at once, in its own transaction.
 */
import type Database from 'better-sqlite3'
import { decodeValue } from '../encoding.js'
import type { Journal } from '../journal.js'
import type { Definition, MissedPolicy, ScheduleInfo, ScheduleSource } from './spec.js'

/** A row of the schedules table. */
export interface ScheduleRow {
  name: string
  cron: string
  tz: string
  type: string
  params: string
  missed: MissedPolicy
  paused: 0 | 1
  upto: number
  last_fired: number | null
  last_thread: string | null
  source: ScheduleSource
  created: number
}

type Stmt = Database.Statement<unknown[]>

/** The writes, each a statement and the params to run it with. */
export type Write = [Stmt, unknown[]]

export class ScheduleStore {
  readonly #db: Database.Database
  readonly #insert: Stmt
  readonly #define: Stmt
  readonly #fired: Stmt
  readonly #upto: Stmt
  readonly #pause: Stmt
  readonly #resume: Stmt
  readonly #delete: Stmt

  constructor(journal: Journal) {
    const db = (this.#db = journal.db)
    this.#insert = db.prepare(
      'INSERT INTO schedules (name, cron, tz, type, params, missed, paused, upto, source, created) VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?, ?)',
    )
    this.#define = db.prepare('UPDATE schedules SET cron = ?, tz = ?, type = ?, params = ?, missed = ? WHERE name = ?')
    this.#fired = db.prepare('UPDATE schedules SET upto = ?, last_fired = ?, last_thread = ? WHERE name = ?')
    this.#upto = db.prepare('UPDATE schedules SET upto = max(upto, ?) WHERE name = ?')
    this.#pause = db.prepare('UPDATE schedules SET paused = 1 WHERE name = ?')
    // The times that passed while it was paused are not fired: it counts from when it resumes.
    this.#resume = db.prepare('UPDATE schedules SET paused = 0, upto = max(upto, ?) WHERE name = ?')
    this.#delete = db.prepare('DELETE FROM schedules WHERE name = ?')
  }

  all(): ScheduleRow[] {
    return scheduleRows(this.#db)
  }

  get(name: string): ScheduleRow | undefined {
    return this.#db.prepare('SELECT * FROM schedules WHERE name = ?').get(name) as ScheduleRow | undefined
  }

  insert(d: Definition, source: ScheduleSource, now: number): Write {
    return [this.#insert, [d.name, d.cron.expr, d.cron.tz, d.type, d.paramsText, d.missed, now, source, now]]
  }

  define(d: Definition): Write {
    return [this.#define, [d.cron.expr, d.cron.tz, d.type, d.paramsText, d.missed, d.name]]
  }

  /** Time `at` was handled; `thread`: the thread spawned for it (null: none was). */
  fired(name: string, at: number, thread: string | null, last: { at: number | null; thread: string | null }): Write {
    return thread === null ? [this.#fired, [at, last.at, last.thread, name]] : [this.#fired, [at, at, thread, name]]
  }

  upto(name: string, at: number): Write {
    return [this.#upto, [at, name]]
  }

  pause(name: string): Write {
    return [this.#pause, [name]]
  }

  resume(name: string, now: number): Write {
    return [this.#resume, [now, name]]
  }

  delete(name: string): Write {
    return [this.#delete, [name]]
  }
}

/** Every schedule of a journal, by name (works on a read-only connection). */
export function scheduleRows(db: Database.Database): ScheduleRow[] {
  return db.prepare('SELECT * FROM schedules ORDER BY name').all() as ScheduleRow[]
}

/** Meta key: the schedules blocked in the running weave, and why (`raiment schedule ls`; local to the file). */
export const BLOCKED_META = 'schedules-blocked'

/** A row as the API shows it, with its next time (`next`: computed by the caller). */
export function infoOf(row: ScheduleRow, next: number | null): ScheduleInfo {
  return {
    name: row.name,
    cron: row.cron,
    tz: row.tz,
    type: row.type,
    params: decodeValue(row.params) as Record<string, unknown>,
    missed: row.missed,
    paused: row.paused === 1,
    source: row.source,
    created: row.created,
    lastFired: row.last_fired,
    lastThread: row.last_thread,
    next,
  }
}

/**
 * Queries of a journal's tables that read no state of its owner (statements it keeps, its batch):
 * the CLI's and the weave's listings.
 */
import type Database from 'better-sqlite3'
import type { ThreadRow, ThreadStatus } from './journal-types.js'

export interface ThreadsWhere {
  status?: ThreadStatus[]
  type?: string
}

/** The threads of `db`, in the order they were made; of these statuses, of this type. */
export function threadRows(db: Database.Database, where: ThreadsWhere): ThreadRow[] {
  const clauses: string[] = []
  const args: unknown[] = []
  if (where.status?.length) {
    clauses.push(`status IN (${where.status.map(() => '?').join(', ')})`)
    args.push(...where.status)
  }
  if (where.type) {
    clauses.push('type = ?')
    args.push(where.type)
  }
  const sql = `SELECT * FROM threads ${clauses.length ? 'WHERE ' + clauses.join(' AND ') : ''} ORDER BY rowid`
  return db.prepare(sql).all(...args) as ThreadRow[]
}

/** How many entries thread `id` has in its record (as `callCounts` counts them). */
export function callCountOf(db: Database.Database, id: string): number {
  return db.prepare('SELECT count(*) FROM journal WHERE thread = ?').pluck().get(id) as number
}

/** How many entries each thread of `db` has in its record, by thread. */
export function callCounts(db: Database.Database): Map<string, number> {
  const rows = db.prepare('SELECT thread, count(*) AS n FROM journal GROUP BY thread').all() as Array<{ thread: string; n: number }>
  return new Map(rows.map((r) => [r.thread, r.n]))
}

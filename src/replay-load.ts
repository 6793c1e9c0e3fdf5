/**
 * Reading threads' records for replay: a weave's resume at open (all running threads at once),
 * a thread adopted or re-run later, and `raiment check`.
 *
 * A thread's entries in journal_main are read in blocks of BLOCK rows (`all()`, by seq), not a
 * row at a time: better-sqlite3 hands a block over in one call, where a cursor costs a call, an
 * array and a result object a row, and a record of a million entries still never sits in one
 * array of rows. journal_tail (bounded, not indexed by thread; empty after an owner's open, which
 * moves it into journal_main) is read once for many threads.
 *
 * Invariant: `resumeSet` reads the thread rows and their records in one read transaction, so a
 * record is that of the row's state (a CLI that ends a thread meanwhile is seen in neither or both).
 */
import type Database from 'better-sqlite3'
import type { Journal, ThreadRow } from './journal.js'
import type { Entry } from './replay-record.js'

/** A row as read: [seq, key, ord, ok, outcome]. */
type Row = [number, string, number, 0 | 1, string]

const BLOCK = 4096
const COLS = 'seq, key, ord, ok, outcome'

function entry(r: Row): Entry {
  return { seq: r[0], key: r[1], ord: r[2], ok: r[3] === 1, text: r[4], call: null }
}

/** Reads records of one journal; `many`: of many threads (journal_tail is then read once). */
export class RecordReader {
  readonly #db: Database.Database
  readonly #main: Database.Statement<unknown[]>
  readonly #many: boolean
  #tail: Map<string, Row[]> | null = null

  constructor(db: Database.Database, many: boolean) {
    this.#db = db
    this.#many = many
    this.#main = db.prepare(`SELECT ${COLS} FROM journal_main WHERE thread = ? AND seq > ? ORDER BY seq LIMIT ${BLOCK}`).raw(true)
  }

  /** Thread `id`'s entries in completion order (journal_main, then the tail's, which all come after). */
  entries(id: string): Entry[] {
    const out: Entry[] = []
    let last = -1
    for (;;) {
      const rows = this.#main.all(id, last) as Row[]
      for (let i = 0; i < rows.length; i++) out.push(entry(rows[i]!))
      if (rows.length < BLOCK) break
      last = rows[rows.length - 1]![0]
    }
    const tail = this.#many ? this.#tailOf(id) : (this.#db.prepare(`SELECT ${COLS} FROM journal_tail WHERE thread = ? ORDER BY seq`).raw(true).all(id) as Row[])
    for (const r of tail) out.push(entry(r))
    return out
  }

  #tailOf(id: string): Row[] {
    if (this.#tail === null) {
      this.#tail = new Map()
      for (const r of this.#db.prepare(`SELECT thread, ${COLS} FROM journal_tail ORDER BY thread, seq`).raw(true).iterate() as IterableIterator<[string, ...Row]>) {
        let list = this.#tail.get(r[0])
        if (list === undefined) this.#tail.set(r[0], (list = []))
        list.push(r.slice(1) as Row)
      }
    }
    return this.#tail.get(id) ?? []
  }
}

/**
 * The running and pending threads of `journal`, in rowid order, and the records of the running
 * ones by thread id.
 */
export function resumeSet(journal: Journal, which?: () => ThreadRow[]): { rows: ThreadRow[]; records: Map<string, Entry[]> } {
  return journal.db.transaction(() => {
    // `which`: the rows to resume, where not every running one is (src/passivation/ keeps the passivated asleep).
    const rows = which !== undefined ? which() : journal.threads({ status: ['running', 'pending'] })
    const reader = new RecordReader(journal.db, true)
    const records = new Map<string, Entry[]>()
    for (const row of rows) if (row.status === 'running') records.set(row.id, reader.entries(row.id))
    return { rows, records }
  })()
}

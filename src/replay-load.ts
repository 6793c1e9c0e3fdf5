/**
 * Reading threads' records for replay: a weave's resume at open (all running threads at once),
 * a thread adopted or re-run later, and `raiment check`.
 *
 * A thread's entries in journal_main are read in blocks of BLOCK rows (by seq), each block as one
 * row of columns joined by SQLite (`group_concat`, separated by US, U+001F) and split here: a
 * block costs five strings handed over, not five values and an array a row (better-sqlite3 hands
 * a row over as an array of values; at a million entries that hand-over was half of a replay).
 * JSON text, which keys and outcomes are, never holds a raw U+001F; a block whose pieces do not
 * count up to its rows, or whose seqs do not rise (SQLite keeps the subquery's order in the
 * aggregate, but does not promise it), or whose joined text is too long for one string, is read
 * again row by row. journal_tail (bounded, not
 * indexed by thread; empty after an owner's open, which moves it into journal_main) is read once
 * for many threads, and skipped by an owner's reader of one record for a thread it holds nothing
 * of (the group commit knows which threads it put there).
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
const US = '\x1f'
const JOINED =
  "SELECT count(*), group_concat(seq, char(31)), group_concat(key, char(31)), group_concat(ord, char(31)), group_concat(ok, ''), group_concat(outcome, char(31)) " +
  `FROM (SELECT ${COLS} FROM journal_main WHERE thread = ? AND seq > ? ORDER BY seq LIMIT ${BLOCK})`

/** A block as read joined: [rows, seqs, keys, ords, oks, outcomes]. */
type Joined = [number, string | null, string | null, string | null, string | null, string | null]

function entry(r: Row): Entry {
  return { seq: r[0], key: r[1], ord: r[2], ok: r[3] === 1, text: r[4], call: null }
}

/** Reads records of one journal; `many`: of many threads (journal_tail is then read once). */
export class RecordReader {
  readonly #db: Database.Database
  readonly #main: Database.Statement<unknown[]>
  readonly #joined: Database.Statement<unknown[]>
  readonly #many: boolean
  #tail: Map<string, Row[]> | null = null
  /** One thread's entries in journal_tail (a reader of one thread at a time). */
  #tailOne: Database.Statement<unknown[]> | null = null

  readonly #mayHaveTail: ((id: string) => boolean) | null

  /** `mayHaveTail`: false when journal_tail holds no entry of a thread (its scan is skipped). */
  constructor(db: Database.Database, many: boolean, mayHaveTail: ((id: string) => boolean) | null = null) {
    this.#db = db
    this.#many = many
    this.#mayHaveTail = mayHaveTail
    this.#main = db.prepare(`SELECT ${COLS} FROM journal_main WHERE thread = ? AND seq > ? ORDER BY seq LIMIT ${BLOCK}`).raw(true)
    this.#joined = db.prepare(JOINED).raw(true)
  }

  /** Thread `id`'s entries in completion order (journal_main, then the tail's, which all come after). */
  entries(id: string): Entry[] {
    const out: Entry[] = []
    let last = -1
    for (;;) {
      let n = this.#block(id, last, out)
      if (n < 0) {
        const rows = this.#main.all(id, last) as Row[]
        for (let i = 0; i < rows.length; i++) out.push(entry(rows[i]!))
        n = rows.length
      }
      if (n < BLOCK) break
      last = out[out.length - 1]!.seq
    }
    if (this.#mayHaveTail !== null && !this.#mayHaveTail(id)) return out
    const tail = this.#many ? this.#tailOf(id) : (this.#tailOne ??= this.#db.prepare(`SELECT ${COLS} FROM journal_tail WHERE thread = ? ORDER BY seq`).raw(true)).all(id) as Row[]
    for (const r of tail) out.push(entry(r))
    return out
  }

  /**
   * Appends the block of `id`'s entries after seq `last`, read joined, to `out`; returns how many,
   * or -1 (nothing appended) when the block must be read row by row.
   */
  #block(id: string, last: number, out: Entry[]): number {
    let joined: Joined
    try {
      joined = this.#joined.get(id, last) as Joined
    } catch (e) {
      // A block whose joined text passes the longest string SQLite may hand over (outcomes of
      // ~130 KB a row, 4,096 rows): read by row.
      if ((e as { code?: string }).code === 'SQLITE_TOOBIG') return -1
      throw e
    }
    const [n, seqText, keyText, ordText, oks, textText] = joined
    if (n === 0) return 0
    if (seqText === null || keyText === null || ordText === null || oks === null || textText === null || oks.length !== n) return -1
    const seqs = seqText.split(US)
    const keys = keyText.split(US)
    const ords = ordText.split(US)
    const texts = textText.split(US)
    if (seqs.length !== n || keys.length !== n || ords.length !== n || texts.length !== n) return -1
    const start = out.length
    let prev = last
    for (let i = 0; i < n; i++) {
      const seq = +seqs[i]!
      if (!(seq > prev)) {
        out.length = start
        return -1
      }
      prev = seq
      const o = ords[i]!
      out.push({ seq, key: keys[i]!, ord: o === '0' ? 0 : +o, ok: oks.charCodeAt(i) === 49, text: texts[i]!, call: null })
    }
    return n
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

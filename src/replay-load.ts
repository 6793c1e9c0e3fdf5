/**
 * Reading threads' records for replay: a weave's resume at open (all running threads at once),
 * a thread adopted or re-run later, and `raiment check`.
 *
 * A thread's entries in journal_main are read in blocks of BLOCK rows (by seq), each block as one
 * row of columns joined by SQLite (`group_concat`, separated by US, U+001F), split into entries
 * only as a replay reaches it (src/replay-blocks.ts): a block costs five strings handed over, not
 * five values and an array a row (better-sqlite3 hands a row over as an array of values; at a
 * million entries that hand-over was half of a replay).
 * JSON text, which keys and outcomes are, never holds a raw U+001F; a block whose pieces do not
 * count up to its rows, or whose seqs do not rise (SQLite keeps the subquery's order in the
 * aggregate, but does not promise it), or whose joined text is too long for one string, is read
 * again row by row. A resume reads the first block of 512 threads at a time in one statement
 * (`records`), and goes on by thread only for those with more. journal_tail (bounded, not
 * indexed by thread; empty after an owner's open, which moves it into journal_main) is read once
 * for many threads, and skipped by an owner's reader of one record for a thread it holds nothing
 * of (the group commit knows which threads it put there).
 *
 * Invariant: `resumeSet` reads the thread rows and their records in one read transaction, so a
 * record is that of the row's state (a CLI that ends a thread meanwhile is seen in neither or both);
 * the later blocks of long records are read ahead in a snapshot taken within it (src/replay-ahead.ts).
 */
import type Database from 'better-sqlite3'
import type { Journal, ThreadRow } from './journal.js'
import { readAhead, ReadAhead, type AheadBlock, type Joined } from './replay-ahead.js'
import { cut, RecordBlocks, US, type Entry, type JoinedBlock, type PendingBlocks } from './replay-blocks.js'
import { rowEntry } from './replay-joined.js'
import { MARK } from './secrets/marker.js'

/** A row as read: [seq, key, ord, ok, outcome]. */
type Row = [number, string, number, 0 | 1, string]

const BLOCK = 4096
const COLS = 'seq, key, ord, ok, outcome'
const SEP = `char(${US.charCodeAt(0)})`
const JOINED =
  `SELECT count(*), group_concat(seq, ${SEP}), group_concat(key, ${SEP}), group_concat(ord, ${SEP}), group_concat(ok, ''), group_concat(outcome, ${SEP}) ` +
  `FROM (SELECT ${COLS} FROM journal_main WHERE thread = ? AND seq > ? ORDER BY seq LIMIT ${BLOCK})`

/**
 * The first block of many threads' records at once (a resume): their entries of seq below BLOCK,
 * one row a thread, by journal_main's key (a seek a thread, no sort); and which of them have
 * entries from seq BLOCK on (a seek a thread; those are read on by thread). One statement a
 * CHUNK of threads instead of one a thread: 10,000 records of 100 entries are read in ~360 ms
 * instead of ~500.
 */
const FIRSTS =
  `SELECT thread, count(*), group_concat(seq, ${SEP}), group_concat(key, ${SEP}), group_concat(ord, ${SEP}), group_concat(ok, ''), group_concat(outcome, ${SEP}) ` +
  `FROM journal_main WHERE thread IN (SELECT value FROM json_each(?)) AND seq < ${BLOCK} GROUP BY thread`
const LONGER = `SELECT value FROM json_each(?) WHERE EXISTS (SELECT 1 FROM journal_main WHERE thread = value AND seq >= ${BLOCK})`
const CHUNK = 512

/**
 * Of a thread's entries after a seq: the last one's seq (a seek); whether a key holds a secret's
 * marker (a seek in journal_marked, which indexes only the entries whose key holds one).
 */
const LAST_SEQ = 'SELECT max(seq) FROM journal_main WHERE thread = ? AND seq > ?'
const MARKED = `SELECT EXISTS (SELECT 1 FROM journal_main INDEXED BY journal_marked WHERE thread = ? AND seq > ? AND instr(key, '${MARK}') > 0)`

/** A record read ahead: its first block, read here, up to seq `after`; its last seq; whether a later key holds a secret's marker. */
interface Job {
  readonly id: string
  readonly first: Array<Entry[] | JoinedBlock>
  readonly after: number
  readonly lastSeq: number
  readonly marked: boolean
}

/** A block read joined, cut into units (`cut`); null when a column is missing or it does not split cleanly. */
function joinedCut([n, seqs, keys, ords, oks, texts]: Joined, after: number): ReturnType<typeof cut> {
  if (seqs === null || keys === null || ords === null || oks === null || texts === null) return null
  return cut({ n, seqs, keys, ords, oks, texts }, after)
}

/** A block the worker checked and indexed (src/replay-ahead.ts `AheadBlock`): one unit, split by its index. */
function indexed({ j: [n, seqs, keys, ords, oks, texts], x, k }: AheadBlock): { units: JoinedBlock[]; last: number } {
  const keyBytes = Buffer.from(k!.buffer, k!.byteOffset, k!.byteLength)
  return { units: [{ n, seqs: seqs!, keys: keys!, ords: ords!, oks: oks!, texts: texts!, index: x!, keyBytes }], last: x![n - 1]! }
}


/** Reads records of one journal; `many`: of many threads (journal_tail is then read once). */
export class RecordReader {
  readonly #db: Database.Database
  readonly #main: Database.Statement<unknown[]>
  readonly #joined: Database.Statement<unknown[]>
  readonly #many: boolean
  #tail: Map<string, Row[]> | null = null
  #firstsOf: Database.Statement<unknown[]> | null = null
  #longerOf: Database.Statement<unknown[]> | null = null
  #lastSeq: Database.Statement<unknown[]> | null = null
  #marked: Database.Statement<unknown[]> | null = null
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

  /** Thread `id`'s entries in completion order, split (src/replay-blocks.ts `RecordBlocks` keeps them joined). */
  entries(id: string): Entry[] {
    return this.record(id).toArray()
  }

  /**
   * Thread `id`'s record in completion order (journal_main, then the tail's, which all come
   * after), its blocks joined, split as a replay reaches them.
   */
  record(id: string, first?: Array<Entry[] | JoinedBlock>, after?: number): RecordBlocks {
    // A copy: the tail is added to it (`first` is the caller's).
    const blocks: Array<Entry[] | JoinedBlock> = first !== undefined ? [...first] : []
    // The blocks after seq `after`: all of them without `first`; none after a whole first.
    let last = first === undefined ? -1 : (after ?? null)
    while (last !== null) {
      const { n, units, end } = this.#block(id, last)
      for (const u of units) blocks.push(u)
      last = n < BLOCK ? null : end
    }
    if (this.#mayHaveTail === null || this.#mayHaveTail(id)) {
      const tail = this.#many ? this.#tailOf(id) : (this.#tailOne ??= this.#db.prepare(`SELECT ${COLS} FROM journal_tail WHERE thread = ? ORDER BY seq`).raw(true)).all(id) as Row[]
      if (tail.length > 0) blocks.push(tail.map(rowEntry))
    }
    return new RecordBlocks(blocks)
  }

  /**
   * The records of threads `ids` (a reader of `many`), their first blocks read CHUNK threads at a
   * time; `file`: the journal's, where long records may be read ahead by a worker
   * (src/replay-ahead.ts; null: read here, whole). Returns the read-ahead to stop at the latest
   * when the journal closes, if one runs.
   */
  records(ids: readonly string[], file: string | null = null): { records: Map<string, RecordBlocks>; ahead: ReadAhead | null } {
    const out = new Map<string, RecordBlocks>()
    const long: string[] = []
    for (let i = 0; i < ids.length; i += CHUNK) {
      const chunk = ids.slice(i, i + CHUNK)
      const firsts = this.#firsts(chunk)
      for (const id of chunk) {
        const first = firsts.get(id)
        if (first === undefined && file !== null) long.push(id)
        else out.set(id, this.record(id, first))
      }
    }
    const ahead = long.length === 0 ? null : this.#long(long, file!, out)
    return { records: out, ahead }
  }

  /**
   * Records with more than a first block: their first read here, the rest read ahead when they
   * hold readAhead.minRows entries in all (else, or when the worker does not start, read here).
   * Their rows are not counted: a record's length is known once its last block came
   * (src/replay-blocks.ts).
   */
  #long(ids: readonly string[], file: string, out: Map<string, RecordBlocks>): ReadAhead | null {
    const jobs: Job[] = []
    let most = 0
    for (const id of ids) {
      const { n, units, end } = this.#block(id, -1)
      if (n < BLOCK || this.#tailOf(id).length > 0) {
        out.set(id, this.record(id, units, n < BLOCK ? undefined : end))
        continue
      }
      const lastSeq = ((this.#lastSeq ??= this.#db.prepare(LAST_SEQ).pluck()).get(id, end) as number | null) ?? end
      // A secret's marker past the first block: a seek in the index of the keys that hold one.
      const marked = ((this.#marked ??= this.#db.prepare(MARKED).pluck()).get(id, end) as number) === 1
      jobs.push({ id, first: units, after: end, lastSeq, marked })
      most += lastSeq - end
    }
    // Started on what the seqs allow (gaps only make fewer rows); its snapshot is taken before
    // this transaction ends (`ready`).
    const ahead = most >= readAhead.minRows && file !== ':memory:' ? ReadAhead.start(file, JOINED, jobs.map(({ id, after }) => ({ id, after }))) : null
    const ready = ahead?.ready() ?? false
    jobs.forEach((job, t) => out.set(job.id, ready ? new RecordBlocks(job.first, this.#pending(job, t, ahead!)) : this.record(job.id, job.first, job.after)))
    return ready ? ahead : null
  }

  /** Thread `t`'s blocks after its first, from the read-ahead as its record asks for them. */
  #pending(job: Job, t: number, ahead: ReadAhead): PendingBlocks {
    let last = job.after
    let alone = false
    const next = (): Array<Entry[] | JoinedBlock> | null | 'gone' => {
      if (alone) {
        const b = this.#block(job.id, last)
        last = b.end
        return b.n === 0 ? null : b.units
      }
      const a = ahead.next(t)
      if (a === 'end') return null
      if (a === 'gone') return a
      const c = a === 'alone' ? null : a.x !== null ? indexed(a) : joinedCut(a.j, last)
      if (c === null) {
        // Given up by the worker, or not split cleanly: read on here, from the last block had.
        alone = true
        ahead.drop(t)
        return next()
      }
      last = c.last
      return c.units
    }
    return { lastSeq: job.lastSeq, keysInclude: (text) => (text === MARK ? job.marked : null), next, drop: () => ahead.drop(t) }
  }

  /**
   * The whole records in journal_main of those of `ids` whose entries all have seqs below BLOCK,
   * cut into units (none for a thread without entries); a thread with more, or whose block does
   * not split cleanly, is left out (read by thread).
   */
  #firsts(ids: readonly string[]): Map<string, Array<Entry[] | JoinedBlock>> {
    const firsts = new Map<string, Array<Entry[] | JoinedBlock>>()
    // Those with more than a first block are read by thread, so their first is not read here.
    const longer = new Set((this.#longerOf ??= this.#db.prepare(LONGER).pluck()).all(JSON.stringify(ids)) as string[])
    const short = longer.size === 0 ? ids : ids.filter((id) => !longer.has(id))
    let rows: Array<[string, ...Joined]>
    try {
      rows = (this.#firstsOf ??= this.#db.prepare(FIRSTS).raw(true)).all(JSON.stringify(short)) as Array<[string, ...Joined]>
    } catch (e) {
      // Blocks whose joined text is too long for one string: all read by thread.
      if ((e as { code?: string }).code === 'SQLITE_TOOBIG') return firsts
      throw e
    }
    const read = new Set<string>()
    for (const [thread, ...joined] of rows) {
      read.add(thread)
      const c = joinedCut(joined, -1)
      if (c !== null) firsts.set(thread, c.units)
    }
    for (const id of short) if (!read.has(id)) firsts.set(id, [])
    return firsts
  }

  /**
   * The block of `id`'s entries after seq `last` (n rows, the last of seq `end`): joined and cut
   * into units, or read by row where it does not split cleanly.
   */
  #block(id: string, last: number): { n: number; units: Array<Entry[] | JoinedBlock>; end: number } {
    let joined: Joined
    try {
      joined = this.#joined.get(id, last) as Joined
    } catch (e) {
      // A block whose joined text passes the longest string SQLite may hand over (outcomes of
      // ~130 KB a row, 4,096 rows): read by row.
      if ((e as { code?: string }).code === 'SQLITE_TOOBIG') return this.#byRow(id, last)
      throw e
    }
    const n = joined[0]
    if (n === 0) return { n: 0, units: [], end: last }
    const c = joinedCut(joined, last)
    return c === null ? this.#byRow(id, last) : { n, units: c.units, end: c.last }
  }

  #byRow(id: string, last: number): { n: number; units: Array<Entry[] | JoinedBlock>; end: number } {
    const entries = (this.#main.all(id, last) as Row[]).map(rowEntry)
    return { n: entries.length, units: [entries], end: entries.length === 0 ? last : entries[entries.length - 1]!.seq }
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
export function resumeSet(journal: Journal, which?: () => ThreadRow[]): { rows: ThreadRow[]; records: Map<string, RecordBlocks> } {
  return journal.db.transaction(() => {
    // `which`: the rows to resume, where not every running one is (src/passivation/ keeps the passivated asleep).
    const rows = which !== undefined ? which() : journal.threads({ status: ['running', 'pending'] })
    const reader = new RecordReader(journal.db, true)
    const { records, ahead } = reader.records(
      rows.filter((row) => row.status === 'running').map((row) => row.id),
      journal.path,
    )
    if (ahead !== null) journal.beforeClose.push(() => ahead.stop())
    return { rows, records }
  })()
}

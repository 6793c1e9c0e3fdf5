/**
 * The sqlite library's connection to one database file (io-libs/sqlite.ts is the library), which
 * the weave's threads share. Its invariants:
 * - No call leaves it in a transaction: transaction statements (BEGIN, COMMIT, SAVEPOINT…) are
 *   refused, and a call after which it is still in one is rolled back and fails (`guard`).
 * - An idempotent call is done once per call id (`once`): the id and the result are stored in
 *   `_raiment_calls`, in the same IMMEDIATE transaction as the statements.
 * - `id` is the device and inode of the file it opened: the library compares it with the path's
 *   before each call, and opens a file removed or replaced again.
 * - Integers are read as bigints (safeIntegers) and returned by int(): numbers where exact.
 * - `attached` is what is ATTACHed to it, all of it: ATTACH and DETACH statements are refused, a
 *   call's `attach` option makes it so (io-libs/sqlite.ts).
 */
import Database from 'better-sqlite3'
import { statSync } from 'node:fs'
import { RaimentError, registerError } from 'raiment'

/**
 * A statement the sqlite library will not run, or undid. `code`:
 * - RAIMENT_SQLITE_TRANSACTION_ACROSS_CALLS: a transaction statement (BEGIN, COMMIT, SAVEPOINT…),
 *   or a statement that left a transaction open (rolled back): use `sqlite.transaction`.
 * - RAIMENT_SQLITE_FILE_REPLACED: the file was replaced, and the old one is still read by another
 *   connection (see the module comment); nothing was run.
 * - RAIMENT_SQLITE_ATTACH_JOURNAL: a Raiment journal (or one of its files) in a call's `attach`: not
 *   attached (or detached again).
 * - RAIMENT_SQLITE_ATTACH_STATEMENT: an ATTACH or DETACH statement: name the databases in the
 *   call's `attach` option instead.
 */
export class SqliteRefused extends RaimentError {
  /** The database file, as the thread named it. */
  readonly file: string
  constructor(code: string, message: string, file: string) {
    super(code, message)
    this.file = file
  }
}
registerError(SqliteRefused)

/** How long an idempotent run's call id is kept: a weave down longer, with such a run in flight, runs it again. */
const CALL_IDS_KEPT_MS = 30 * 24 * 3600 * 1000
/** Prepared statements kept per database. */
const STATEMENT_CACHE = 200

export interface RunResult {
  /** Rows inserted, updated or deleted. */
  changes: number
  /** The rowid of the last row inserted by this connection: a bigint beyond ±Number.MAX_SAFE_INTEGER. */
  lastInsertRowid: number | bigint
}

/** Whitespace and comments before a statement's first word. */
const LEADING = /^(?:\s+|--[^\n]*(?:\n|$)|\/\*[\s\S]*?(?:\*\/|$))*/
/** Statements that open, end or nest a transaction. */
const TRANSACTION_WORDS = new Set(['BEGIN', 'COMMIT', 'END', 'ROLLBACK', 'SAVEPOINT', 'RELEASE'])

/** The first word of `sql`, in upper case ('' when it starts otherwise). */
export function firstWord(sql: string): string {
  return /^[A-Za-z]+/.exec(sql.slice(LEADING.exec(sql)![0].length))?.[0].toUpperCase() ?? ''
}

function acrossCalls(method: string, file: string, what: string): SqliteRefused {
  return new SqliteRefused(
    'RAIMENT_SQLITE_TRANSACTION_ACROSS_CALLS',
    `sqlite.${method}: ${what} on ${file}: a transaction must not span calls (the weave's threads share one connection per file, ` +
      `and a crash between calls loses an open transaction). Run the statements that must commit together in one call: ` +
      `sqlite.transaction(file, [[sql, params], …], { idempotent? }).`,
    file,
  )
}

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER)

/** An SQLite integer (read as a bigint) as a number where that is exact, else as the bigint. */
export function int(v: bigint | number): number | bigint {
  return typeof v === 'number' || v > MAX_SAFE || v < -MAX_SAFE ? v : Number(v)
}

/** What `_raiment_calls` holds for a `transaction`: each statement's changes and rowid, as decimal text. */
function resultsText(results: readonly RunResult[]): string {
  return JSON.stringify(results.map((r) => [String(r.changes), String(r.lastInsertRowid)]))
}

function resultsOf(text: string): RunResult[] {
  return (JSON.parse(text) as [string, string][]).map(([c, id]) => ({ changes: Number(c), lastInsertRowid: int(BigInt(id)) }))
}

/** A prepared statement and the arguments it is run with. */
export type Bound = readonly [Database.Statement, unknown[]]

/** Which file is at `path` now (device and inode), or null when none is. */
export function fileId(path: string): string | null {
  const st = statSync(path, { bigint: true, throwIfNoEntry: false })
  return st === undefined ? null : `${st.dev}:${st.ino}`
}

/** A connection to one database file, shared by the weave's threads; no call leaves it in a transaction. */
export class Db {
  readonly db: Database.Database
  /** The file as the thread first named it, for messages. */
  readonly file: string
  /** The device and inode of the file it opened (fileId); null for `:memory:`. */
  readonly id: string | null = null
  readonly #stmts = new Map<string, Database.Statement>()
  /** What is attached, by schema name in lower case (SQLite's are case-insensitive): the name as given, and the path. */
  readonly attached = new Map<string, { name: string; path: string }>()
  #markSeen: Database.Statement | null = null
  #markAdd: Database.Statement | null = null
  #markDrop: Database.Statement | null = null

  constructor(db: Database.Database, file: string, path: string | null) {
    this.db = db
    this.file = file
    if (path !== null) this.id = fileId(path)
  }

  /** The prepared statement for `sql` (cached); a transaction statement is refused. */
  stmt(method: string, sql: string): Database.Statement {
    let s = this.#stmts.get(sql)
    if (s !== undefined) {
      // Most recently used last.
      this.#stmts.delete(sql)
      this.#stmts.set(sql, s)
      return s
    }
    const word = firstWord(sql)
    if (TRANSACTION_WORDS.has(word)) throw acrossCalls(method, this.file, `${word} refused`)
    if (word === 'ATTACH' || word === 'DETACH') {
      throw new SqliteRefused(
        'RAIMENT_SQLITE_ATTACH_STATEMENT',
        `sqlite.${method}: ${word} refused on ${this.file}: what is attached is a state of the connection, which the weave's threads share ` +
          `and a crash loses (a resumed thread's next call would not find it). Name the databases a call's statements use in its options: ` +
          `sqlite.query(file, 'SELECT … FROM archive.t', params, { attach: { archive: 'archive.db' } }).`,
        this.file,
      )
    }
    s = this.db.prepare(sql)
    this.#stmts.set(sql, s)
    if (this.#stmts.size > STATEMENT_CACHE) this.#stmts.delete(this.#stmts.keys().next().value!)
    return s
  }

  /** Runs `fn`; if the connection is left in a transaction, rolls it back (and fails, if `fn` did not). */
  guard<T>(method: string, fn: () => T): T {
    let r: T
    try {
      r = fn()
    } catch (e) {
      if (this.db.inTransaction) this.db.exec('ROLLBACK')
      throw e
    }
    if (this.db.inTransaction) {
      this.db.exec('ROLLBACK')
      throw acrossCalls(method, this.file, 'the statement left a transaction open (rolled back)')
    }
    return r
  }

  run(s: Database.Statement, args: unknown[]): RunResult {
    const r = s.run(...args)
    return { changes: Number(r.changes), lastInsertRowid: int(r.lastInsertRowid) }
  }

  /** Runs the statements in one IMMEDIATE transaction: all commit, or none. */
  transaction(stmts: readonly Bound[]): RunResult[] {
    return this.db.transaction(() => this.runAll(stmts)).immediate()
  }

  runAll(stmts: readonly Bound[]): RunResult[] {
    return stmts.map(([s, args]) => this.run(s, args))
  }

  /**
   * Runs `body` once per call id, in one IMMEDIATE transaction with the id and its result; a
   * second time returns the first result. `single`: a `run`'s one result, kept in the columns
   * `changes` and `last_insert_rowid` (as before `results` was added); a `transaction`'s list
   * goes in `results`.
   */
  once(callId: string, single: boolean, body: () => RunResult[]): RunResult[] {
    if (this.#markSeen === null || this.#markAdd === null || this.#markDrop === null) {
      this.db.exec('CREATE TABLE IF NOT EXISTS _raiment_calls (call_id TEXT PRIMARY KEY, changes INTEGER NOT NULL, last_insert_rowid INTEGER NOT NULL, at INTEGER NOT NULL, results TEXT)')
      // A table made before transactions had no `results`.
      const hasResults = () => (this.db.pragma('table_info(_raiment_calls)') as { name: string }[]).some((c) => c.name === 'results')
      if (!hasResults()) {
        try {
          this.db.exec('ALTER TABLE _raiment_calls ADD COLUMN results TEXT')
        } catch (e) {
          // Another connection added it first.
          if (!hasResults()) throw e
        }
      }
      this.#markSeen = this.db.prepare('SELECT changes, last_insert_rowid AS lastInsertRowid, results FROM _raiment_calls WHERE call_id = ?')
      this.#markAdd = this.db.prepare('INSERT INTO _raiment_calls (call_id, changes, last_insert_rowid, at, results) VALUES (?, ?, ?, ?, ?)')
      // The two oldest rows by rowid (the order they were added in), of those only the expired.
      this.#markDrop = this.db.prepare('DELETE FROM _raiment_calls WHERE rowid IN (SELECT rowid FROM _raiment_calls ORDER BY rowid LIMIT 2) AND at < ?')
    }
    const seen = this.#markSeen
    const add = this.#markAdd
    const drop = this.#markDrop
    return this.db.transaction((): RunResult[] => {
      const done = seen.get(callId) as (RunResult & { results: string | null }) | undefined
      if (done !== undefined) {
        return done.results === null ? [{ changes: Number(done.changes), lastInsertRowid: int(done.lastInsertRowid) }] : resultsOf(done.results)
      }
      const results = body()
      const last = results[results.length - 1] ?? { changes: 0, lastInsertRowid: 0 }
      const now = Date.now()
      drop.run(now - CALL_IDS_KEPT_MS)
      add.run(callId, last.changes, last.lastInsertRowid, now, single ? null : resultsText(results))
      return results
    }).immediate()
  }
}

/**
 * sqlite: statements against the application's own SQLite database files (better-sqlite3).
 * What a query returned and what a statement changed are recorded, so a resumed or replayed
 * thread gets the same rows without opening the database.
 *
 * Each file is opened once per weave and kept open (WAL mode; synchronous FULL under the weave's
 * `sync` durability, NORMAL otherwise), with its prepared statements cached. Relative paths
 * resolve against `process.cwd()`. The weave's own journal, and any Raiment journal, is refused.
 *
 * A `run` in flight when the weave died runs again on resume; with `{ idempotent: true }` it is
 * done once: the call id is stored in a table `_raiment_calls` of the same database, in the same
 * transaction as the statement, and a second run returns the first run's result. A call id is kept
 * CALL_IDS_KEPT_MS (30 days): each such run deletes up to two of the oldest rows past it, so the
 * table stays as large as 30 days of idempotent runs, and no run pays more than two deletes.
 */
import { describe } from './_describe.js'
import Database from 'better-sqlite3'
import { existsSync, realpathSync } from 'node:fs'
import { basename, dirname, join, resolve } from 'node:path'
import { callContext, InvalidArgument, registerError } from 'raiment'
import type { LibraryApi, WeaveConfig } from 'raiment'

registerError(Database.SqliteError, 'SqliteError')

/** A Raiment journal's `PRAGMA application_id` ('RAIM'). */
const JOURNAL_APPLICATION_ID = 0x5241494d
/** How long an idempotent run's call id is kept: a weave down longer, with such a run in flight, runs it again. */
const CALL_IDS_KEPT_MS = 30 * 24 * 3600 * 1000
/** Prepared statements kept per database. */
const STATEMENT_CACHE = 200

/** A value that can be bound to a parameter. */
export type SqlValue = string | number | bigint | boolean | null | Uint8Array
/** Positional (`?`) parameters as an array, or named ones (`@name`, `:name`, `$name`) as an object. */
export type SqlParams = readonly SqlValue[] | Readonly<Record<string, SqlValue>>

export interface RunResult {
  /** Rows inserted, updated or deleted. */
  changes: number
  /** The rowid of the last row inserted by this connection. */
  lastInsertRowid: number
}

export interface RunOptions {
  /** Do the statement once even if the call runs again after a crash (see the module comment). */
  idempotent?: boolean
}

/** The file's real path where it exists, or its parent's real path joined with its name. */
function realish(file: string): string {
  const abs = resolve(file)
  try {
    if (existsSync(abs)) return realpathSync(abs)
    return join(realpathSync(dirname(abs)), basename(abs))
  } catch {
    return abs
  }
}


function bindValue(v: unknown, where: string): unknown {
  if (v === null || typeof v === 'string' || typeof v === 'number' || typeof v === 'bigint') return v
  if (typeof v === 'boolean') return v ? 1 : 0
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength)
  throw new InvalidArgument(`sqlite: ${where} must be a string, number, bigint, boolean, null or Uint8Array, got ${describe(v)}`)
}

function bindParams(method: string, params: unknown): unknown[] {
  if (params === undefined) return []
  if (Array.isArray(params)) return params.map((v, i) => bindValue(v, `params[${i}]`))
  if (typeof params === 'object' && params !== null) {
    const proto = Object.getPrototypeOf(params) as unknown
    if (proto === Object.prototype || proto === null) {
      const out: Record<string, unknown> = {}
      for (const [k, v] of Object.entries(params)) out[k] = bindValue(v, `params.${k}`)
      return [out]
    }
  }
  throw new InvalidArgument(`sqlite.${method}(file, sql, params?) expects params as an array (for ?) or a plain object (for @name), got ${describe(params)}`)
}

/** Rows as plain data: BLOBs as Uint8Array (a Buffer cannot be recorded as itself). */
function plainRow(row: unknown): Record<string, unknown> {
  const r = row as Record<string, unknown>
  for (const k in r) {
    const v = r[k]
    if (v instanceof Uint8Array) r[k] = new Uint8Array(v)
  }
  return r
}

class Db {
  readonly db: Database.Database
  readonly #stmts = new Map<string, Database.Statement>()
  #markSeen: Database.Statement | null = null
  #markAdd: Database.Statement | null = null
  #markDrop: Database.Statement | null = null

  constructor(db: Database.Database) {
    this.db = db
  }

  stmt(sql: string): Database.Statement {
    let s = this.#stmts.get(sql)
    if (s !== undefined) {
      // Most recently used last.
      this.#stmts.delete(sql)
      this.#stmts.set(sql, s)
      return s
    }
    s = this.db.prepare(sql)
    this.#stmts.set(sql, s)
    if (this.#stmts.size > STATEMENT_CACHE) this.#stmts.delete(this.#stmts.keys().next().value!)
    return s
  }

  /** Runs `s` once per call id: the id and the result are stored in the same transaction. */
  runOnce(s: Database.Statement, args: unknown[], callId: string): RunResult {
    if (this.#markSeen === null || this.#markAdd === null || this.#markDrop === null) {
      this.db.exec('CREATE TABLE IF NOT EXISTS _raiment_calls (call_id TEXT PRIMARY KEY, changes INTEGER NOT NULL, last_insert_rowid INTEGER NOT NULL, at INTEGER NOT NULL)')
      this.#markSeen = this.db.prepare('SELECT changes, last_insert_rowid AS lastInsertRowid FROM _raiment_calls WHERE call_id = ?')
      this.#markAdd = this.db.prepare('INSERT INTO _raiment_calls (call_id, changes, last_insert_rowid, at) VALUES (?, ?, ?, ?)')
      // The two oldest rows by rowid (the order they were added in), of those only the expired.
      this.#markDrop = this.db.prepare('DELETE FROM _raiment_calls WHERE rowid IN (SELECT rowid FROM _raiment_calls ORDER BY rowid LIMIT 2) AND at < ?')
    }
    const seen = this.#markSeen
    const add = this.#markAdd
    const drop = this.#markDrop
    return this.db.transaction((): RunResult => {
      const done = seen.get(callId) as RunResult | undefined
      if (done !== undefined) return { changes: done.changes, lastInsertRowid: done.lastInsertRowid }
      const r = s.run(...args)
      const result = { changes: r.changes, lastInsertRowid: Number(r.lastInsertRowid) }
      const now = Date.now()
      drop.run(now - CALL_IDS_KEPT_MS)
      add.run(callId, result.changes, result.lastInsertRowid, now)
      return result
    }).immediate()
  }
}

const make = (config: WeaveConfig) => {
  const dbs = new Map<string, Db>()
  const journal = typeof config.db === 'string' && config.db !== '' && config.db !== ':memory:' ? realish(config.db) : null
  const synchronous = config.durability === 'sync' || config.durability === 'replicated' || config.durability === undefined ? 'FULL' : 'NORMAL'

  function open(method: string, file: unknown): Db {
    if (typeof file !== 'string' || file === '') {
      throw new InvalidArgument(`sqlite.${method}(file, sql, params?) expects file as a path to a database file, got ${describe(file)}`)
    }
    const memory = file === ':memory:'
    const path = memory ? file : realish(file)
    const known = dbs.get(path)
    if (known !== undefined) return known
    if (journal !== null && !memory) {
      for (const suffix of ['', '-wal', '-shm', '-journal', '-lock']) {
        if (path === journal + suffix) {
          throw new InvalidArgument(
            `sqlite.${method}: ${file} is this weave's own journal${suffix ? ` (its ${suffix.slice(1)} file)` : ''}; ` +
              `Raiment's journal must not be written by threads. Keep application data in a database file of its own.`,
          )
        }
      }
    }
    const db = new Database(path)
    try {
      if (!memory && db.pragma('application_id', { simple: true }) === JOURNAL_APPLICATION_ID) {
        throw new InvalidArgument(
          `sqlite.${method}: ${file} is a Raiment journal; threads must not write journals. Keep application data in a database file of its own.`,
        )
      }
      db.pragma('journal_mode = WAL')
      db.pragma(`synchronous = ${synchronous}`)
      db.pragma('busy_timeout = 5000')
    } catch (e) {
      db.close()
      throw e
    }
    const d = new Db(db)
    dbs.set(path, d)
    return d
  }

  function sqlOf(method: string, sql: unknown): string {
    if (typeof sql !== 'string' || sql.trim() === '') {
      throw new InvalidArgument(`sqlite.${method}(file, sql, params?) expects sql as one SQL statement, got ${describe(sql)}`)
    }
    return sql
  }

  return {
    /**
     * Runs one statement that changes data (INSERT, UPDATE, DELETE, CREATE…).
     * @throws SqliteError from SQLite, with its `code` (SQLITE_CONSTRAINT_UNIQUE…)
     * @throws InvalidArgument for a bad argument, or the weave's journal as `file`
     */
    async run(file: string, sql: string, params?: SqlParams, options?: RunOptions): Promise<RunResult> {
      const ctx = callContext()
      if (options !== undefined && (typeof options !== 'object' || options === null || Object.keys(options).some((k) => k !== 'idempotent'))) {
        throw new InvalidArgument(`sqlite.run(file, sql, params?, options?) expects options as { idempotent?: boolean }, got ${describe(options)}`)
      }
      const d = open('run', file)
      const s = d.stmt(sqlOf('run', sql))
      const args = bindParams('run', params)
      if (options?.idempotent === true) return d.runOnce(s, args, ctx.callId)
      const r = s.run(...args)
      return { changes: r.changes, lastInsertRowid: Number(r.lastInsertRowid) }
    },

    /**
     * Runs one statement that returns rows (SELECT, or … RETURNING) and returns them all, as plain
     * objects keyed by column name; BLOBs come back as Uint8Array, integers as numbers.
     * @throws SqliteError from SQLite, with its `code`
     * @throws TypeError for a statement that returns no data (use run())
     * @throws InvalidArgument for a bad argument, or the weave's journal as `file`
     */
    async query(file: string, sql: string, params?: SqlParams): Promise<Record<string, unknown>[]> {
      const d = open('query', file)
      const s = d.stmt(sqlOf('query', sql))
      return s.all(...bindParams('query', params)).map(plainRow)
    },
  }
}
export default make

type Base = LibraryApi<ReturnType<typeof make>>
export type SqliteApi = Omit<Base, 'query'> & {
  /** Rows as plain objects; name their type with `query<Order>(…)`. */
  query<T = Record<string, unknown>>(file: string, sql: string, params?: SqlParams): Promise<T[]>
}

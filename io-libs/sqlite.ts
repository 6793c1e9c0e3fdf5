/**
 * sqlite: statements against the application's own SQLite database files (better-sqlite3).
 * What a query returned and what a statement changed are recorded, so a resumed or replayed
 * thread gets the same rows without opening the database.
 *
 * Each file is opened once per weave and kept open (WAL mode; synchronous FULL under the weave's
 * `sync` durability, NORMAL otherwise), with its prepared statements cached. Relative paths
 * resolve against `process.cwd()`. The weave's own journal, and any Raiment journal, is refused,
 * as a file and as one to attach.
 * Other databases are attached by a call's `attach` option, never by ATTACH or DETACH statements
 * (refused): what is attached is a state of the shared connection, which a crash loses, so each
 * call names the databases it needs and its statements see those (attached, and others detached,
 * before they run); a resumed thread's next call finds them on the new connection.
 * Each call first checks that the file at the path is still the one opened (device and inode): one
 * removed or replaced (a restore by `mv`) is opened again. The stale connection goes first, its WAL
 * checkpointed into the file that is gone and emptied (TRUNCATE): SQLite does not checkpoint a
 * moved file at close, and would leave its -wal at the path for the new file to read as its own.
 *
 * No call leaves a transaction open: the weave's threads share the one connection to a file, and a
 * transaction open between two calls would take in other threads' statements (a ROLLBACK undoes
 * their recorded writes) and die with the process (a crash loses what it held, recorded as done).
 * Transaction statements (BEGIN, COMMIT, SAVEPOINT…) are refused, and a call after which the
 * connection is still in a transaction is rolled back and fails (SqliteRefused). Statements that
 * must commit together go in one `transaction` call.
 *
 * A `run` or `transaction` in flight when the weave died runs again on resume; with
 * `{ idempotent: true }` it is done once: the call id is stored in a table `_raiment_calls` of the
 * same database, in the same transaction as the statements, and a second run returns the first
 * run's result. A call id is kept CALL_IDS_KEPT_MS (30 days, io-libs/_sqlite-db.ts): each such
 * call deletes up to two of the oldest rows past it, so the table stays as large as 30 days of
 * idempotent calls, and no call pays more than two deletes.
 *
 * The connection to one file, and what it keeps true, is io-libs/_sqlite-db.ts. The weave closes
 * them when it closes (`Symbol.dispose`), so their -wal files are checkpointed and removed.
 */
import { describe } from './_describe.js'
import Database from 'better-sqlite3'
import { existsSync, realpathSync } from 'node:fs'
import { basename, dirname, join, resolve } from 'node:path'
import { callContext, InvalidArgument, registerError } from 'raiment'
import type { LibraryApi, WeaveConfig } from 'raiment'
import { Db, fileId, int, SqliteRefused, type Bound, type RunResult } from './_sqlite-db.js'

export { SqliteRefused, type RunResult }

registerError(Database.SqliteError, 'SqliteError')

/** A Raiment journal's `PRAGMA application_id` ('RAIM'). */
const JOURNAL_APPLICATION_ID = 0x5241494d
/** The files beside a journal that are its own (SQLite's, and the owner lock's). */
const JOURNAL_SUFFIXES = ['', '-wal', '-shm', '-journal', '-lock']

/** A value that can be bound to a parameter. */
export type SqlValue = string | number | bigint | boolean | null | Uint8Array
/** Positional (`?`) parameters as an array, or named ones (`@name`, `:name`, `$name`) as an object. */
export type SqlParams = readonly SqlValue[] | Readonly<Record<string, SqlValue>>

export interface AttachOptions {
  /**
   * The databases the call's statements see besides `file`, by schema name, each a path (resolved
   * like `file`): `{ archive: 'archive.db' }`, then `archive.orders` in the SQL. They are attached
   * before the statements run, and any other a call left attached is detached (see the module
   * comment). A Raiment journal is refused.
   */
  attach?: Readonly<Record<string, string>>
}

export interface RunOptions extends AttachOptions {
  /** Do the statement(s) once even if the call runs again after a crash (see the module comment). */
  idempotent?: boolean
}

/** One statement of a `transaction`: its SQL, alone or with its parameters. */
export type SqlStatement = string | readonly [sql: string, params?: SqlParams]

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

/** A schema name as an SQL identifier. */
const ident = (name: string): string => `"${name.replaceAll('"', '""')}"`

/** What a call's `attach` option names, by schema name in lower case. */
type Attach = Map<string, { name: string; path: string; file: string }>

function attachOf(method: string, attach: unknown): Attach | null {
  if (attach === undefined) return null
  if (typeof attach !== 'object' || attach === null || Array.isArray(attach)) {
    throw new InvalidArgument(`sqlite.${method}: the option attach must be an object { schemaName: 'file.db' }, got ${describe(attach)}`)
  }
  const out: Attach = new Map()
  for (const [name, file] of Object.entries(attach)) {
    const key = name.toLowerCase()
    if (name === '' || key === 'main' || key === 'temp' || out.has(key)) {
      throw new InvalidArgument(`sqlite.${method}: attach: ${JSON.stringify(name)} cannot name an attached database (empty, main, temp, or named twice)`)
    }
    if (typeof file !== 'string' || file === '') throw new InvalidArgument(`sqlite.${method}: attach.${name} must be a path to a database file, got ${describe(file)}`)
    out.set(key, { name, path: file === ':memory:' ? file : realish(file), file })
  }
  return out.size === 0 ? null : out
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

/** Rows as plain data: BLOBs as Uint8Array (a Buffer cannot be recorded as itself), integers by int(). */
function plainRow(row: unknown): Record<string, unknown> {
  const r = row as Record<string, unknown>
  for (const k in r) {
    const v = r[k]
    if (v instanceof Uint8Array) r[k] = new Uint8Array(v)
    else if (typeof v === 'bigint') r[k] = int(v)
  }
  return r
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
    if (known !== undefined) {
      if (memory || fileId(path) === known.id) return known
      // Removed or replaced since it was opened: the stale connection goes first (see the module comment).
      const [done] = known.db.pragma('wal_checkpoint(TRUNCATE)') as { busy: unknown }[]
      if (Number(done?.busy) !== 0) {
        throw new SqliteRefused(
          'RAIMENT_SQLITE_FILE_REPLACED',
          `sqlite.${method}: ${file} was removed or replaced while the weave held it open, and another connection still reads the old file, ` +
            `so its WAL cannot be emptied before the new file is opened. Close that connection; the next call tries again.`,
          file,
        )
      }
      dbs.delete(path)
      known.db.close()
    }
    if (journal !== null && !memory) {
      for (const suffix of JOURNAL_SUFFIXES) {
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
      // Every integer read as a bigint, so none is rounded (int() makes the safe ones numbers).
      db.defaultSafeIntegers(true)
      if (!memory && Number(db.pragma('application_id', { simple: true })) === JOURNAL_APPLICATION_ID) {
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
    const d = new Db(db, file, memory ? null : path)
    dbs.set(path, d)
    return d
  }

  /** Makes what is attached to `d` exactly what `attach` names (detaching the rest); a Raiment journal is refused. */
  function attachOnly(method: string, d: Db, attach: Attach | null): void {
    if (attach === null && d.attached.size === 0) return
    for (const [key, a] of d.attached) {
      if (attach?.get(key)?.path === a.path) continue
      d.db.exec(`DETACH DATABASE ${ident(a.name)}`)
      d.attached.delete(key)
    }
    for (const [key, { name, path, file }] of attach ?? []) {
      if (d.attached.has(key)) continue
      const refused = (what: string) =>
        new SqliteRefused(
          'RAIMENT_SQLITE_ATTACH_JOURNAL',
          `sqlite.${method}: attach of ${file} refused: it is ${what}; threads must not read or write journals. ` +
            `Keep application data in database files of their own.`,
          d.file,
        )
      // Refused before it is attached: an ATTACH of a journal's -journal file would make that file.
      const suffix = journal === null ? undefined : JOURNAL_SUFFIXES.find((x) => path === journal + x)
      if (suffix !== undefined) throw refused(`this weave's own journal${suffix ? ` (its ${suffix.slice(1)} file)` : ''}`)
      d.db.prepare(`ATTACH DATABASE ? AS ${ident(name)}`).run(path)
      let journalFile: boolean
      try {
        journalFile = path !== ':memory:' && Number(d.db.pragma(`${ident(name)}.application_id`, { simple: true })) === JOURNAL_APPLICATION_ID
      } catch (e) {
        // Not readable as a database (SQLITE_NOTADB…): of no use attached.
        d.db.exec(`DETACH DATABASE ${ident(name)}`)
        throw e
      }
      if (journalFile) {
        d.db.exec(`DETACH DATABASE ${ident(name)}`)
        throw refused('a Raiment journal')
      }
      d.attached.set(key, { name, path })
    }
  }

  function sqlOf(method: string, sql: unknown): string {
    if (typeof sql !== 'string' || sql.trim() === '') {
      throw new InvalidArgument(`sqlite.${method}(file, sql, params?) expects sql as one SQL statement, got ${describe(sql)}`)
    }
    return sql
  }

  function checkOptions(method: string, options: RunOptions | undefined, keys = ['idempotent', 'attach']): RunOptions | undefined {
    if (options !== undefined && (typeof options !== 'object' || options === null || Object.keys(options).some((k) => !keys.includes(k)))) {
      const shape = keys.map((k) => (k === 'idempotent' ? 'idempotent?: boolean' : 'attach?: { schemaName: file }')).join(', ')
      throw new InvalidArgument(`sqlite.${method}(…, options?) expects options as { ${shape} }, got ${describe(options)}`)
    }
    return options
  }

  return {
    /**
     * Runs one statement that changes data (INSERT, UPDATE, DELETE, CREATE…). In flight at a
     * crash, it runs again on resume; with `{ idempotent: true }`, once (see the module comment).
     * @throws SqliteError from SQLite, with its `code` (SQLITE_CONSTRAINT_UNIQUE…)
     * @throws SqliteRefused `RAIMENT_SQLITE_TRANSACTION_ACROSS_CALLS` for BEGIN, COMMIT, SAVEPOINT…
     *   (use `transaction`); `RAIMENT_SQLITE_ATTACH_STATEMENT` for ATTACH or DETACH (use
     *   `options.attach`); `RAIMENT_SQLITE_ATTACH_JOURNAL` for a Raiment journal in `options.attach`
     * @throws InvalidArgument for a bad argument, or the weave's journal as `file`
     * @example const { lastInsertRowid } = await this.sqlite.run(db, 'INSERT INTO orders (sku) VALUES (?)', ['A1'], { idempotent: true })
     */
    async run(file: string, sql: string, params?: SqlParams, options?: RunOptions): Promise<RunResult> {
      const ctx = callContext()
      const o = checkOptions('run', options)
      const once = o?.idempotent === true
      const attach = attachOf('run', o?.attach)
      const d = open('run', file)
      attachOnly('run', d, attach)
      const s = d.stmt('run', sqlOf('run', sql))
      const args = bindParams('run', params)
      return d.guard('run', () => (once ? d.once(ctx.callId, true, () => [d.run(s, args)])[0]! : d.run(s, args)))
    },

    /**
     * Runs `statements` in one transaction, in one call: all of them commit, or (when one throws)
     * none. Each is a SQL string, or `[sql, params]`; the result has each one's
     * `{ changes, lastInsertRowid }`, in order. In flight at a crash, the transaction runs again
     * on resume; with `{ idempotent: true }`, once (see the module comment).
     * @throws SqliteError from SQLite, with its `code`: nothing was written
     * @throws SqliteRefused `RAIMENT_SQLITE_TRANSACTION_ACROSS_CALLS` for BEGIN, COMMIT… among them;
     *   `RAIMENT_SQLITE_ATTACH_STATEMENT` for ATTACH or DETACH (use `options.attach`)
     * @throws InvalidArgument for a bad argument, or the weave's journal as `file`
     * @example
     * await this.sqlite.transaction(db, [
     *   ['UPDATE accounts SET cents = cents - ? WHERE id = ?', [500, from]],
     *   ['UPDATE accounts SET cents = cents + ? WHERE id = ?', [500, to]],
     * ], { idempotent: true })
     */
    async transaction(file: string, statements: readonly SqlStatement[], options?: RunOptions): Promise<RunResult[]> {
      const ctx = callContext()
      const o = checkOptions('transaction', options)
      const once = o?.idempotent === true
      const attach = attachOf('transaction', o?.attach)
      if (!Array.isArray(statements) || statements.length === 0) {
        throw new InvalidArgument(`sqlite.transaction(file, statements, options?) expects statements as a non-empty array of sql or [sql, params], got ${describe(statements)}`)
      }
      const d = open('transaction', file)
      attachOnly('transaction', d, attach)
      const stmts = statements.map((st: unknown, i): Bound => {
        const pair: readonly unknown[] | null = typeof st === 'string' ? [st] : Array.isArray(st) && st.length >= 1 && st.length <= 2 ? st : null
        const sql = pair?.[0]
        const params = pair?.[1]
        if (typeof sql !== 'string' || sql.trim() === '') {
          throw new InvalidArgument(`sqlite.transaction: statements[${i}] must be sql or [sql, params], got ${describe(st)}`)
        }
        return [d.stmt('transaction', sql), bindParams('transaction', params)]
      })
      return d.guard('transaction', () => (once ? d.once(ctx.callId, false, () => d.runAll(stmts)) : d.transaction(stmts)))
    },

    /**
     * Runs one statement that returns rows (SELECT, or … RETURNING) and returns them all, as plain
     * objects keyed by column name; BLOBs come back as Uint8Array, integers as numbers (bigints
     * beyond ±Number.MAX_SAFE_INTEGER).
     * @throws SqliteError from SQLite, with its `code`
     * @throws TypeError for a statement that returns no data (use run())
     * @throws SqliteRefused `RAIMENT_SQLITE_ATTACH_STATEMENT` for ATTACH or DETACH (use `options.attach`);
     *   `RAIMENT_SQLITE_ATTACH_JOURNAL` for a Raiment journal in `options.attach`
     * @throws InvalidArgument for a bad argument, or the weave's journal as `file`
     * @example const rows = await this.sqlite.query(db, 'SELECT * FROM orders UNION ALL SELECT * FROM old.orders', [], { attach: { old: 'archive.db' } })
     */
    async query(file: string, sql: string, params?: SqlParams, options?: AttachOptions): Promise<Record<string, unknown>[]> {
      const attach = attachOf('query', checkOptions('query', options, ['attach'])?.attach)
      const d = open('query', file)
      attachOnly('query', d, attach)
      const s = d.stmt('query', sqlOf('query', sql))
      const args = bindParams('query', params)
      return d.guard('query', () => s.all(...args).map(plainRow))
    },

    /** Closes the connections, when the weave closes (LibraryModule.default): each, even when one fails. */
    [Symbol.dispose](): void {
      const errors: unknown[] = []
      for (const d of dbs.values()) {
        try {
          d.db.close()
        } catch (e) {
          errors.push(e)
        }
      }
      dbs.clear()
      if (errors.length > 0) throw errors[0]
    },
  }
}
export default make

type Base = LibraryApi<ReturnType<typeof make>>
export type SqliteApi = Omit<Base, 'query'> & {
  /** Rows as plain objects; name their type with `query<Order>(…)`. */
  query<T = Record<string, unknown>>(file: string, sql: string, params?: SqlParams, options?: AttachOptions): Promise<T[]>
}

/**
 * The built-in sqlite library, run as real threads in a real weave on a temp-dir journal against
 * real SQLite files; recorded and replayed with the file gone; resumed after a real weave child
 * process is killed at a named crash point. Journals are refused as files (and attached:
 * test/io-sqlite-attach.test.ts).
 */
import { describe, expect, it } from 'vitest'
import Database from 'better-sqlite3'
import { existsSync, mkdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { InvalidArgument, thread, Weave } from 'raiment'
import { record, replay } from 'raiment/testing'
import { tempDir } from './support/tmp.js'
import { crashChild, errorOf, resultOf, resume, run } from './support/io-libs.js'

// ---- sqlite ----------------------------------------------------------------------------------

describe('sqlite', () => {
  const orders = thread({
    uses: ['sqlite'],
    async does(p: { db: string }) {
      await this.sqlite.run(p.db, 'CREATE TABLE orders (id INTEGER PRIMARY KEY, sku TEXT NOT NULL UNIQUE, cents INTEGER, paid INTEGER, blob BLOB)')
      const a = await this.sqlite.run(p.db, 'INSERT INTO orders (sku, cents, paid, blob) VALUES (?, ?, ?, ?)', ['A1', 1200, true, new Uint8Array([1, 2])])
      const b = await this.sqlite.run(p.db, 'INSERT INTO orders (sku, cents, paid) VALUES (@sku, @cents, @paid)', { sku: 'B2', cents: 300, paid: false })
      const rows = await this.sqlite.query<{ id: number; sku: string; cents: number; paid: number; blob: Uint8Array | null }>(p.db, 'SELECT * FROM orders ORDER BY id')
      const upd = await this.sqlite.run(p.db, 'UPDATE orders SET cents = cents + 1')
      const sum = await this.sqlite.query(p.db, 'SELECT sum(cents) AS total FROM orders WHERE sku IN (?, ?)', ['A1', 'B2'])
      return { a, b, rows, upd, sum }
    },
  })

  it('runs statements and queries on an application database; replay needs no database file', async () => {
    const dir = tempDir()
    const db = join(dir, 'app.db')
    const { dump, result } = await record(orders, { db })
    const r = result!
    expect(r.a).toEqual({ changes: 1, lastInsertRowid: 1 })
    expect(r.b).toEqual({ changes: 1, lastInsertRowid: 2 })
    expect(r.rows).toEqual([
      { id: 1, sku: 'A1', cents: 1200, paid: 1, blob: new Uint8Array([1, 2]) },
      { id: 2, sku: 'B2', cents: 300, paid: 0, blob: null },
    ])
    expect(r.rows[0]!.blob).toBeInstanceOf(Uint8Array)
    expect(r.upd.changes).toBe(2)
    expect(r.sum).toEqual([{ total: 1502 }])
    const check = new Database(db, { readonly: true })
    expect(check.pragma('journal_mode', { simple: true })).toBe('wal')
    check.close()

    rmSync(db)
    rmSync(`${db}-wal`, { force: true })
    rmSync(`${db}-shm`, { force: true })
    const again = await replay(orders, dump)
    expect(again.status).toBe('done')
    expect(again.result).toEqual(r)
    expect(existsSync(db)).toBe(false)
  })

  it('an SQLite error keeps its class and code, live and on replay', async () => {
    const dir = tempDir()
    const dup = thread({
      uses: ['sqlite'],
      async does(p: { db: string }) {
        await this.sqlite.run(p.db, 'CREATE TABLE t (k TEXT PRIMARY KEY)')
        await this.sqlite.run(p.db, 'INSERT INTO t VALUES (?)', ['x'])
        await this.sqlite.run(p.db, 'INSERT INTO t VALUES (?)', ['x'])
      },
    })
    const { dump, end } = await record(dup, { db: join(dir, 'app.db') })
    const live = errorOf(end)
    expect(live).toBeInstanceOf(Database.SqliteError)
    expect(live.code).toBe('SQLITE_CONSTRAINT_PRIMARYKEY')
    const again = await replay(dup, dump)
    expect(again.error).toBeInstanceOf(Database.SqliteError)
    expect(again.error).toMatchObject({ name: 'SqliteError', code: 'SQLITE_CONSTRAINT_PRIMARYKEY', message: live.message })

    const bad = thread({
      uses: ['sqlite'],
      async does(p: { db: string }) {
        return await this.sqlite.query(p.db, 'SELECT ?', [{ a: 1 } as unknown as string])
      },
    })
    expect(errorOf(await run(bad, { db: join(dir, 'app.db') })).message).toMatch(/params\[0\] must be a string, number, bigint, boolean, null or Uint8Array, got Object/)
  })

  it("refuses the weave's own journal (by any path to it) and any other Raiment journal", async () => {
    const dir = tempDir()
    const t = thread({
      uses: ['sqlite'],
      async does(p: { file: string }) {
        return await this.sqlite.query(p.file, 'SELECT count(*) AS n FROM threads')
      },
    })
    for (const file of [join(dir, 'w.db'), join(dir, '.', 'sub', '..', 'w.db'), join(dir, 'w.db-wal'), join(dir, 'w.db-lock')]) {
      mkdirSync(join(dir, 'sub'), { recursive: true })
      const err = errorOf(await run(t, { file }, { dir }))
      expect(err).toBeInstanceOf(InvalidArgument)
      expect(err.message).toMatch(/is this weave's own journal.*Keep application data in a database file of its own/)
    }
    // Another weave's journal.
    const other = join(tempDir(), 'other.db')
    const w2 = await Weave.open({ db: other, durability: 'memory', threads: {}, dumps: false })
    await w2.close()
    const err = errorOf(await run(t, { file: other }))
    expect(err.message).toMatch(/is a Raiment journal/)
  })

  const insertSource = `{
    insert: thread({ uses: ['sqlite'], async does(p) {
      return await this.sqlite.run(p.db, 'INSERT INTO t (v) VALUES (?)', ['x'], { idempotent: p.once })
    } }),
  }`
  const insert = thread({
    uses: ['sqlite'],
    async does(p: { db: string; once: boolean }) {
      return await this.sqlite.run(p.db, 'INSERT INTO t (v) VALUES (?)', ['x'], { idempotent: p.once })
    },
  })

  it('an idempotent run drops call ids older than 30 days, two at a time, oldest first', async () => {
    const dir = tempDir()
    const db = join(dir, 'app.db')
    const setup = new Database(db)
    setup.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)')
    setup.exec('CREATE TABLE _raiment_calls (call_id TEXT PRIMARY KEY, changes INTEGER NOT NULL, last_insert_rowid INTEGER NOT NULL, at INTEGER NOT NULL)')
    const day = 24 * 3600 * 1000
    const add = setup.prepare('INSERT INTO _raiment_calls VALUES (?, 1, 1, ?)')
    for (let i = 0; i < 5; i++) add.run(`old-${i}`, Date.now() - 31 * day)
    add.run('young', Date.now() - 29 * day)
    add.run('old-after-young', Date.now() - 40 * day)
    setup.close()
    const ids = (): string[] => {
      const check = new Database(db, { readonly: true })
      try {
        return check.prepare("SELECT call_id FROM _raiment_calls WHERE call_id LIKE 'old-%' OR call_id = 'young' ORDER BY rowid").pluck().all() as string[]
      } finally {
        check.close()
      }
    }
    // Each run drops at most the two oldest rows, and only the expired ones among them.
    for (const left of [['old-2', 'old-3', 'old-4'], ['old-4'], []]) {
      expect(resultOf(await run(insert, { db, once: true }, { dir }))).toMatchObject({ changes: 1 })
      expect(ids().filter((id) => id !== 'young' && id !== 'old-after-young')).toEqual(left)
    }
    // The young row is among the two oldest now: this run dropped none after it.
    expect(ids().slice(0, 2)).toEqual(['young', 'old-after-young'])
  })

  for (const once of [true, false]) {
    it(`a run in flight at a crash runs again on resume: ${once ? 'once with idempotent: true' : 'twice without it'}`, async () => {
      const dir = tempDir()
      const db = join(dir, 'app.db')
      const setup = new Database(db)
      setup.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)')
      setup.close()
      const child = await crashChild(dir, insertSource, 'insert', { db, once }, 'after-call:1')
      expect(child.signal).toBe('SIGKILL')
      const { end } = await resume(dir, { insert })
      const check = new Database(db, { readonly: true })
      const n = (check.prepare('SELECT count(*) AS n FROM t').get() as { n: number }).n
      check.close()
      if (once) {
        expect(n).toBe(1)
        expect(resultOf(end)).toEqual({ changes: 1, lastInsertRowid: 1 })
      } else {
        expect(n).toBe(2)
        expect(resultOf(end)).toEqual({ changes: 1, lastInsertRowid: 2 })
      }
    })
  }
})

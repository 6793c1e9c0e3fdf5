/**
 * sqlite and transactions: no call leaves one open on the connection the weave's threads share
 * (BEGIN and its kin are refused, so one thread's ROLLBACK cannot undo another's recorded write),
 * and `transaction` runs several statements atomically in one call, once per call id when
 * idempotent, across a real weave child process killed at a named crash point.
 */
import { describe, expect, it } from 'vitest'
import Database from 'better-sqlite3'
import { join } from 'node:path'
import { thread, Weave } from 'raiment'
import { record, replay } from 'raiment/testing'
import { SqliteRefused } from '../io-libs/sqlite.js'
import { tempDir } from './support/tmp.js'
import { crashChild, errorOf, resultOf, resume, run } from './support/io-libs.js'

function appDb(dir: string): string {
  const db = join(dir, 'app.db')
  const setup = new Database(db)
  setup.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT UNIQUE)')
  setup.close()
  return db
}

/** The rows of t, read by a connection of its own: only what is committed. */
function committed(db: string): string[] {
  const check = new Database(db, { readonly: true })
  try {
    return check.prepare('SELECT v FROM t ORDER BY id').pluck().all() as string[]
  } finally {
    check.close()
  }
}

describe('sqlite transactions', () => {
  it("a thread's BEGIN is refused, so its ROLLBACK cannot undo another thread's recorded insert", async () => {
    const dir = tempDir()
    const db = appDb(dir)
    // Opens a transaction, waits while the other thread writes, rolls back.
    const opener = thread({
      uses: ['sqlite', 'clock'],
      async does(p: { db: string }) {
        let refused: unknown = null
        try {
          await this.sqlite.run(p.db, 'BEGIN')
        } catch (e) {
          refused = e
        }
        await this.clock.sleep(200)
        try {
          await this.sqlite.run(p.db, 'ROLLBACK')
        } catch {
          // refused as well
        }
        if (refused === null) return null
        const e = refused as SqliteRefused
        return { name: e.name, code: e.code, message: e.message, file: e.file }
      },
    })
    const payer = thread({
      uses: ['sqlite', 'clock'],
      async does(p: { db: string }) {
        await this.clock.sleep(50)
        return await this.sqlite.run(p.db, 'INSERT INTO t (v) VALUES (?)', ['paid'], { idempotent: true })
      },
    })
    const weave = await Weave.open({ db: join(dir, 'w.db'), durability: 'memory', threads: { opener, payer }, dumps: false })
    try {
      const a = weave.spawn('opener', { db })
      const b = weave.spawn('payer', { db })
      const [ea, eb] = await Promise.all([weave.join(a), weave.join(b)])
      expect(resultOf(ea)).toEqual({
        name: 'SqliteRefused',
        code: 'RAIMENT_SQLITE_TRANSACTION_ACROSS_CALLS',
        message: expect.stringMatching(/^sqlite\.run: BEGIN refused on .*app\.db: a transaction must not span calls.*sqlite\.transaction\(file, \[\[sql, params\]/),
        file: db,
      })
      expect(resultOf(eb)).toEqual({ changes: 1, lastInsertRowid: 1 })
      // Committed: another connection sees the recorded insert.
      expect(committed(db)).toEqual(['paid'])
    } finally {
      await weave.close()
    }
  })

  it('refuses every statement that opens, ends or nests a transaction, however it is written', async () => {
    const dir = tempDir()
    const db = appDb(dir)
    const t = thread({
      uses: ['sqlite'],
      async does(p: { db: string; sql: string; how: 'run' | 'query' | 'transaction' }) {
        if (p.how === 'run') return await this.sqlite.run(p.db, p.sql)
        if (p.how === 'query') return await this.sqlite.query(p.db, p.sql)
        return await this.sqlite.transaction(p.db, [['INSERT INTO t (v) VALUES (?)', ['a']], p.sql])
      },
    })
    const cases: Array<[string, 'run' | 'query' | 'transaction']> = [
      ['BEGIN', 'run'],
      ['  begin immediate transaction', 'run'],
      ['/* a */ -- b\n BEGIN', 'run'],
      ['SAVEPOINT s', 'run'],
      ['COMMIT', 'run'],
      ['END', 'run'],
      ['ROLLBACK', 'query'],
      ['COMMIT', 'transaction'],
      ['RELEASE s', 'transaction'],
    ]
    for (const [sql, how] of cases) {
      const err = errorOf(await run(t, { db, sql, how }, { dir }))
      expect(err, `${how} ${JSON.stringify(sql)}`).toBeInstanceOf(SqliteRefused)
      expect(err.code).toBe('RAIMENT_SQLITE_TRANSACTION_ACROSS_CALLS')
    }
    // Nothing of the refused transactions was written.
    expect(committed(db)).toEqual([])
  })

  const transfer = thread({
    uses: ['sqlite'],
    async does(p: { db: string; second: string }) {
      return await this.sqlite.transaction(p.db, ['INSERT INTO t (v) VALUES (\'first\')', ['INSERT INTO t (v) VALUES (@v)', { v: p.second }]])
    },
  })

  it('runs its statements in one call: all commit, or none; recorded and replayed like any call', async () => {
    const dir = tempDir()
    const db = appDb(dir)
    const { dump, result } = await record(transfer, { db, second: 'second' })
    expect(result).toEqual([
      { changes: 1, lastInsertRowid: 1 },
      { changes: 1, lastInsertRowid: 2 },
    ])
    expect(committed(db)).toEqual(['first', 'second'])
    expect((await replay(transfer, dump)).result).toEqual(result)

    // The second statement fails (UNIQUE): the first is undone with it.
    const clean = appDb(tempDir())
    const setup = new Database(clean)
    setup.exec("INSERT INTO t (v) VALUES ('taken')")
    setup.close()
    const err = errorOf(await run(transfer, { db: clean, second: 'taken' }))
    expect(err).toBeInstanceOf(Database.SqliteError)
    expect(err.code).toBe('SQLITE_CONSTRAINT_UNIQUE')
    expect(committed(clean)).toEqual(['taken'])

    const bad = thread({
      uses: ['sqlite'],
      async does(p: { db: string; statements: unknown }) {
        return await this.sqlite.transaction(p.db, p.statements as string[])
      },
    })
    expect(errorOf(await run(bad, { db, statements: [] })).message).toMatch(/expects statements as a non-empty array of sql or \[sql, params\], got Array/)
    expect(errorOf(await run(bad, { db, statements: ['SELECT 1', [1]] })).message).toMatch(/statements\[1\] must be sql or \[sql, params\], got Array/)
  })

  const transferSource = `{
    transfer: thread({ uses: ['sqlite'], async does(p) {
      return await this.sqlite.transaction(p.db, ["INSERT INTO t (v) VALUES ('a' || random())", "INSERT INTO t (v) VALUES ('b' || random())"], { idempotent: p.once })
    } }),
  }`
  const transferAgain = thread({
    uses: ['sqlite'],
    async does(p: { db: string; once: boolean }) {
      return await this.sqlite.transaction(p.db, ["INSERT INTO t (v) VALUES ('a' || random())", "INSERT INTO t (v) VALUES ('b' || random())"], { idempotent: p.once })
    },
  })

  for (const once of [true, false]) {
    it(`a transaction in flight at a crash runs again on resume: ${once ? 'once with idempotent: true' : 'twice without it'}`, async () => {
      const dir = tempDir()
      const db = appDb(dir)
      const child = await crashChild(dir, transferSource, 'transfer', { db, once }, 'after-call:1')
      expect(child.signal).toBe('SIGKILL')
      expect(committed(db)).toHaveLength(2)
      const { end } = await resume(dir, { transfer: transferAgain })
      if (once) {
        expect(committed(db)).toHaveLength(2)
        expect(resultOf(end)).toEqual([
          { changes: 1, lastInsertRowid: 1 },
          { changes: 1, lastInsertRowid: 2 },
        ])
      } else {
        expect(committed(db)).toHaveLength(4)
        expect(resultOf(end)).toEqual([
          { changes: 1, lastInsertRowid: 3 },
          { changes: 1, lastInsertRowid: 4 },
        ])
      }
    })
  }
})

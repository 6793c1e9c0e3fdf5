/**
 * sqlite and 64-bit integers: a column value, a rowid or a count beyond Number.MAX_SAFE_INTEGER
 * comes back exact, as a bigint (one within it as a number), live, on replay, and from
 * `_raiment_calls` when an idempotent call runs again after a real weave child process is killed.
 */
import { describe, expect, it } from 'vitest'
import Database from 'better-sqlite3'
import { join } from 'node:path'
import { thread } from 'raiment'
import { record, replay } from 'raiment/testing'
import { tempDir } from './support/tmp.js'
import { crashChild, resultOf, resume } from './support/io-libs.js'

describe('sqlite integers', () => {
  const accounts = thread({
    uses: ['sqlite'],
    async does(p: { db: string }) {
      await this.sqlite.run(p.db, 'CREATE TABLE accounts (id INTEGER PRIMARY KEY, ext_id INTEGER, n INTEGER, r REAL)')
      const ins = await this.sqlite.run(p.db, 'INSERT INTO accounts (id, ext_id, n, r) VALUES (?, ?, ?, ?)', [9007199254740993n, 1234567890123456789n, 7, 1.5])
      const small = await this.sqlite.run(p.db, 'INSERT INTO accounts (id, ext_id, n) VALUES (?, ?, ?)', [-9007199254740991, -9223372036854775808n, 2 ** 53 - 1])
      const rows = await this.sqlite.query(p.db, 'SELECT id, ext_id, n, r, CAST(ext_id AS TEXT) AS exact FROM accounts ORDER BY n')
      const tx = await this.sqlite.transaction(p.db, [['UPDATE accounts SET n = n + 1 WHERE id = ?', [9007199254740993n]]])
      return { ins, small, rows, tx }
    },
  })

  it('beyond 2^53 as bigints, within it as numbers; replayed the same', async () => {
    const db = join(tempDir(), 'app.db')
    const { dump, result } = await record(accounts, { db })
    expect(result).toEqual({
      ins: { changes: 1, lastInsertRowid: 9007199254740993n },
      small: { changes: 1, lastInsertRowid: -9007199254740991 },
      rows: [
        { id: 9007199254740993n, ext_id: 1234567890123456789n, n: 7, r: 1.5, exact: '1234567890123456789' },
        { id: -9007199254740991, ext_id: -9223372036854775808n, n: 9007199254740991, r: null, exact: '-9223372036854775808' },
      ],
      tx: [{ changes: 1, lastInsertRowid: -9007199254740991 }],
    })
    expect(typeof result!.small.lastInsertRowid).toBe('number')
    expect(typeof result!.rows[0]!['n']).toBe('number')
    expect((await replay(accounts, dump)).result).toEqual(result)
  })

  const bigSource = `{
    big: thread({ uses: ['sqlite'], async does(p) {
      const run = await this.sqlite.run(p.db, 'INSERT INTO t (id) VALUES (?)', [BigInt(p.id)], { idempotent: true })
      const tx = await this.sqlite.transaction(p.db, [['INSERT INTO t (id) VALUES (?)', [BigInt(p.id) + 1n]]], { idempotent: true })
      return { run, tx }
    } }),
  }`
  const big = thread({
    uses: ['sqlite'],
    async does(p: { db: string; id: string }) {
      const run = await this.sqlite.run(p.db, 'INSERT INTO t (id) VALUES (?)', [BigInt(p.id)], { idempotent: true })
      const tx = await this.sqlite.transaction(p.db, [['INSERT INTO t (id) VALUES (?)', [BigInt(p.id) + 1n]]], { idempotent: true })
      return { run, tx }
    },
  })

  for (const crashAt of ['after-call:1', 'after-call:2']) {
    it(`an idempotent call run again after a crash (${crashAt}) returns its first bigint exactly`, async () => {
      const dir = tempDir()
      const db = join(dir, 'app.db')
      const setup = new Database(db)
      setup.exec('CREATE TABLE t (id INTEGER PRIMARY KEY)')
      setup.close()
      const id = '9007199254740995'
      const child = await crashChild(dir, bigSource, 'big', { db, id }, crashAt)
      expect(child.signal).toBe('SIGKILL')
      const { end } = await resume(dir, { big })
      expect(resultOf(end)).toEqual({
        run: { changes: 1, lastInsertRowid: 9007199254740995n },
        tx: [{ changes: 1, lastInsertRowid: 9007199254740996n }],
      })
    })
  }
})

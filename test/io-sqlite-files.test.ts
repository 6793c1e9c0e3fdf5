/**
 * sqlite and the files under its connections: a database file removed, or replaced by another (a
 * restore by `mv`), while the weave holds it open is opened again at the next call, so writes
 * reach the file at the path, not the removed one.
 */
import { describe, expect, it } from 'vitest'
import Database from 'better-sqlite3'
import { renameSync } from 'node:fs'
import { join } from 'node:path'
import { thread, Weave } from 'raiment'
import { tempDir } from './support/tmp.js'
import { resultOf } from './support/io-libs.js'

/** The rows of t in the file at `db`, read by a connection of its own. */
function rows(db: string): string[] {
  const check = new Database(db, { readonly: true, fileMustExist: true })
  try {
    return check.prepare('SELECT v FROM t ORDER BY id').pluck().all() as string[]
  } finally {
    check.close()
  }
}

describe('sqlite files', () => {
  it('a file removed under its connection is made again at the path, and written there', async () => {
    const dir = tempDir()
    const app = join(dir, 'app.db')
    const reset = thread({
      uses: ['sqlite', 'fs'],
      async does(p: { app: string }) {
        await this.sqlite.run(p.app, 'CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v TEXT)')
        await this.sqlite.run(p.app, "INSERT INTO t (v) VALUES ('old')")
        for (const suffix of ['', '-wal', '-shm']) await this.fs.rm(p.app + suffix, { force: true })
        await this.sqlite.run(p.app, 'CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v TEXT)')
        const ins = await this.sqlite.run(p.app, "INSERT INTO t (v) VALUES ('new')", [], { idempotent: true })
        return { ins, rows: await this.sqlite.query(p.app, 'SELECT v FROM t') }
      },
    })
    const weave = await Weave.open({ db: join(dir, 'w.db'), durability: 'sync', threads: { reset }, dumps: false })
    try {
      expect(resultOf(await weave.join(weave.spawn('reset', { app })))).toEqual({ ins: { changes: 1, lastInsertRowid: 1 }, rows: [{ v: 'new' }] })
      // While the weave still holds its connection, another reader of the path sees the write.
      expect(rows(app)).toEqual(['new'])
    } finally {
      await weave.close()
    }
  })

  it('a file replaced by another (restored by mv) is opened again: the next calls read and write the new one', async () => {
    const dir = tempDir()
    const app = join(dir, 'app.db')
    const writer = thread({
      uses: ['sqlite'],
      async does(p: { app: string; v: string }) {
        await this.sqlite.run(p.app, 'CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v TEXT)')
        await this.sqlite.run(p.app, 'INSERT INTO t (v) VALUES (?)', [p.v])
        return await this.sqlite.query(p.app, 'SELECT v FROM t ORDER BY id')
      },
    })
    const weave = await Weave.open({ db: join(dir, 'w.db'), durability: 'sync', threads: { writer }, dumps: false })
    try {
      expect(resultOf(await weave.join(weave.spawn('writer', { app, v: 'before' })))).toEqual([{ v: 'before' }])
      // A backup made elsewhere, moved over the file the weave holds open (its -wal and -shm stay).
      const backup = join(dir, 'backup.db')
      const b = new Database(backup)
      b.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t (v) VALUES ('restored')")
      b.close()
      renameSync(backup, app)
      expect(resultOf(await weave.join(weave.spawn('writer', { app, v: 'after' })))).toEqual([{ v: 'restored' }, { v: 'after' }])
      expect(rows(app)).toEqual(['restored', 'after'])
    } finally {
      await weave.close()
    }
    expect(rows(app)).toEqual(['restored', 'after'])
  })
})

/**
 * sqlite and the files under its connections: a database file removed, or replaced by another (a
 * restore by `mv`), while the weave holds it open is opened again at the next call, so writes
 * reach the file at the path, not the removed one; unless another connection still reads the old
 * file (refused, until it is done). The connections are closed when the weave closes.
 */
import { describe, expect, it } from 'vitest'
import Database from 'better-sqlite3'
import { existsSync, readdirSync, readlinkSync, renameSync } from 'node:fs'
import { join } from 'node:path'
import { thread, Weave } from 'raiment'
import { tempDir } from './support/tmp.js'
import { errorOf, resultOf } from './support/io-libs.js'

/** How many of this process's file descriptors are open on `file` or its -wal, -shm. */
function fdsOn(file: string): number {
  return readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`).startsWith(file)
    } catch {
      return false // the fd readdir itself used, closed since
    }
  }).length
}

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

  it('a file replaced while another connection reads the old one is refused (RAIMENT_SQLITE_FILE_REPLACED) until that reader is done', async () => {
    const dir = tempDir()
    const app = join(dir, 'app.db')
    const writer = thread({
      uses: ['sqlite'],
      async does(p: { app: string; v: string }) {
        await this.sqlite.run(p.app, 'CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v TEXT)')
        return await this.sqlite.run(p.app, 'INSERT INTO t (v) VALUES (?)', [p.v])
      },
    })
    const weave = await Weave.open({ db: join(dir, 'w.db'), durability: 'sync', threads: { writer }, dumps: false })
    try {
      resultOf(await weave.join(weave.spawn('writer', { app, v: 'before' })))
      // A reader of the old file, in a read transaction over its WAL (the weave's write is there).
      const reader = new Database(app, { readonly: true })
      reader.exec('BEGIN')
      expect(reader.prepare('SELECT v FROM t').pluck().all()).toEqual(['before'])
      const backup = join(dir, 'backup.db')
      const b = new Database(backup)
      b.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t (v) VALUES ('restored')")
      b.close()
      renameSync(backup, app)
      // The stale connection's WAL cannot be emptied (after its busy timeout, 5 s): nothing is run.
      const err = errorOf(await weave.join(weave.spawn('writer', { app, v: 'refused' })))
      expect(err.name).toBe('SqliteRefused')
      expect(err).toMatchObject({ code: 'RAIMENT_SQLITE_FILE_REPLACED', file: app })
      expect(err.message).toMatch(/was removed or replaced while the weave held it open, and another connection still reads the old file/)
      expect(reader.prepare('SELECT v FROM t').pluck().all()).toEqual(['before'])
      reader.exec('COMMIT')
      reader.close()
      // The reader done, the next call opens the new file.
      expect(resultOf(await weave.join(weave.spawn('writer', { app, v: 'after' })))).toEqual({ changes: 1, lastInsertRowid: 2 })
      expect(rows(app)).toEqual(['restored', 'after'])
    } finally {
      await weave.close()
    }
  })

  it('the connections close when the weave closes: no descriptor left on the file, its -wal checkpointed and removed', async () => {
    const dir = tempDir()
    const app = join(dir, 'app.db')
    const writer = thread({
      uses: ['sqlite'],
      async does(p: { app: string; v: string }) {
        await this.sqlite.run(p.app, 'CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v TEXT)')
        await this.sqlite.run(p.app, 'INSERT INTO t (v) VALUES (?)', [p.v])
      },
    })
    // One weave after another in this process, as a program (or a test file) does.
    for (const v of ['one', 'two', 'three']) {
      const weave = await Weave.open({ db: join(dir, `w-${v}.db`), durability: 'sync', threads: { writer }, dumps: false })
      try {
        expect((await weave.join(weave.spawn('writer', { app, v }))).status).toBe('done')
        expect(fdsOn(app)).toBeGreaterThan(0)
      } finally {
        await weave.close()
      }
      expect(fdsOn(app)).toBe(0)
      expect(existsSync(`${app}-wal`)).toBe(false)
    }
    expect(rows(app)).toEqual(['one', 'two', 'three'])
  })
})

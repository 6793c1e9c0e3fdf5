/**
 * sqlite and other databases: what is attached is a state of the connection (shared by the weave's
 * threads, new after a crash), so ATTACH and DETACH statements are refused and a call names the
 * databases it uses in its `attach` option: its statements see those, and only those, on whatever
 * connection runs it: after a real weave child process is SIGKILLed, the resumed thread's next
 * call finds its database attached. Raiment journals are refused there as everywhere.
 */
import { describe, expect, it } from 'vitest'
import Database from 'better-sqlite3'
import { existsSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { thread, Weave } from 'raiment'
import type { SqliteRefused } from '../io-libs/sqlite.js'
import { tempDir } from './support/tmp.js'
import { crashChild, resultOf, resume, run } from './support/io-libs.js'

/** A database file at `file` with a table t holding `v`. */
function dbWith(file: string, v: string): string {
  const db = new Database(file)
  db.exec('CREATE TABLE t (v TEXT)')
  db.prepare('INSERT INTO t VALUES (?)').run(v)
  db.close()
  return file
}

const refusal = (e: unknown) => ({ name: (e as Error).name, code: (e as SqliteRefused).code, message: (e as Error).message })

describe('sqlite attach', () => {
  it('refuses ATTACH and DETACH statements, however written, in run, query and transaction: nothing is attached', async () => {
    const dir = tempDir()
    const app = join(dir, 'app.db')
    const other = dbWith(join(dir, 'other.db'), 'other')
    const t = thread({
      uses: ['sqlite'],
      async does(p: { app: string; other: string }) {
        const out: unknown[] = []
        for (const f of [
          () => this.sqlite.run(p.app, 'ATTACH DATABASE ? AS o', [p.other]),
          () => this.sqlite.run(p.app, '/* x */ attach ? as o', [p.other]),
          () => this.sqlite.query(p.app, ' -- c\n  Attach ? AS o', [p.other]),
          () => this.sqlite.transaction(p.app, ['CREATE TABLE IF NOT EXISTS x (v)', ['ATTACH ? AS o', [p.other]]]),
          () => this.sqlite.run(p.app, 'DETACH DATABASE o'),
        ]) {
          out.push(await f().then(() => 'ran', refusal))
        }
        out.push((await this.sqlite.query<{ name: string }>(p.app, 'PRAGMA database_list')).map((d) => d.name))
        return out
      },
    })
    const r = resultOf(await run(t, { app, other }, { dir })) as unknown[]
    for (const e of r.slice(0, 5)) {
      expect(e).toMatchObject({ name: 'SqliteRefused', code: 'RAIMENT_SQLITE_ATTACH_STATEMENT' })
      expect((e as { message: string }).message).toMatch(/^sqlite\.(run|query|transaction): (ATTACH|DETACH) refused on .*app\.db: .*a crash loses.*\{ attach: \{ archive: 'archive\.db' \} \}/)
    }
    // Refused before anything ran: not even the transaction's first statement.
    expect(r[5]).toEqual(['main'])
    const check = new Database(app, { readonly: true })
    expect(check.prepare("SELECT count(*) FROM sqlite_master WHERE name = 'x'").pluck().get()).toBe(0)
    check.close()
  })

  it('a call sees exactly the databases its attach names: attached before it runs, others detached', async () => {
    const dir = tempDir()
    const app = join(dir, 'app.db')
    const a = dbWith(join(dir, 'a.db'), 'from a')
    const b = dbWith(join(dir, 'b.db'), 'from b')
    const t = thread({
      uses: ['sqlite'],
      async does(p: { app: string; a: string; b: string }) {
        const names = async (attach?: Record<string, string>) => (await this.sqlite.query<{ name: string }>(p.app, 'PRAGMA database_list', [], attach && { attach })).map((d) => d.name)
        return {
          a: await this.sqlite.query(p.app, 'SELECT v FROM o.t', [], { attach: { o: p.a } }),
          // Another file under the same name: the other is detached first.
          b: await this.sqlite.query(p.app, 'SELECT v FROM o.t', [], { attach: { o: p.b } }),
          both: await names({ x: p.a, Y: p.b }),
          none: await names(),
          made: await this.sqlite.run(p.app, 'CREATE TABLE c (v)'),
          written: await this.sqlite.transaction(p.app, ['DELETE FROM c', 'INSERT INTO c SELECT v FROM arch.t'], { attach: { arch: p.a }, idempotent: true }),
          read: await this.sqlite.query(p.app, 'SELECT v FROM c'),
          refused: await this.sqlite.query(p.app, 'SELECT 1', [], { attach: { main: p.a } }).then(() => 'ran', (e: Error) => e.message),
          stale: await this.sqlite.query(p.app, 'SELECT v FROM o.t').then(() => 'ran', (e: Error) => e.message),
        }
      },
    })
    expect(resultOf(await run(t, { app, a, b }, { dir }))).toEqual({
      a: [{ v: 'from a' }],
      b: [{ v: 'from b' }],
      both: ['main', 'x', 'Y'],
      none: ['main'],
      made: { changes: 0, lastInsertRowid: 0 },
      written: [
        { changes: 0, lastInsertRowid: 0 },
        { changes: 1, lastInsertRowid: 1 },
      ],
      read: [{ v: 'from a' }],
      refused: expect.stringMatching(/attach: "main" cannot name an attached database/),
      stale: 'no such table: o.t',
    })
  })

  it("refuses the weave's own journal, its files and any other Raiment journal in attach; the call runs nothing", async () => {
    const dir = tempDir()
    const app = join(dir, 'app.db')
    const other = join(tempDir(), 'other.db')
    const w2 = await Weave.open({ db: other, durability: 'memory', threads: {}, dumps: false })
    await w2.close()
    const plain = dbWith(join(dir, 'plain.db'), 'attached')
    const t = thread({
      uses: ['sqlite'],
      async does(p: { app: string; file: string }) {
        const out: Record<string, unknown> = {}
        try {
          out['rows'] = await this.sqlite.query(p.app, 'SELECT v FROM j.t', [], { attach: { j: p.file } })
        } catch (e) {
          out['error'] = refusal(e)
        }
        out['attached'] = (await this.sqlite.query<{ name: string }>(p.app, 'PRAGMA database_list')).map((d) => d.name)
        return out
      },
    })
    for (const [file, what] of [
      [join(dir, 'w.db'), "this weave's own journal"],
      [join(dir, 'sub', '..', 'w.db'), "this weave's own journal"],
      // Not there in WAL mode: an ATTACH would make it a database.
      [join(dir, 'w.db-journal'), "this weave's own journal \\(its journal file\\)"],
      [other, 'a Raiment journal'],
    ] as const) {
      mkdirSync(join(dir, 'sub'), { recursive: true })
      const r = resultOf(await run(t, { app, file }, { dir })) as { error: { name: string; code: string; message: string }; attached: string[] }
      expect(r.error, file).toMatchObject({ name: 'SqliteRefused', code: 'RAIMENT_SQLITE_ATTACH_JOURNAL' })
      expect(r.error.message).toMatch(new RegExp(`^sqlite\\.query: attach of .* refused: it is ${what}; threads must not read or write journals`))
      expect(r.attached).toEqual(['main'])
    }
    expect(existsSync(join(dir, 'w.db-journal'))).toBe(false)
    expect(resultOf(await run(t, { app, file: plain }, { dir }))).toEqual({ rows: [{ v: 'attached' }], attached: ['main'] })
    expect(resultOf(await run(t, { app, file: 42 as unknown as string }, { dir }))).toMatchObject({ error: { message: expect.stringMatching(/attach\.j must be a path to a database file, got number 42/) } })
  })

  it('after a SIGKILL, the resumed thread finds its attached database on the new connection', async () => {
    const dir = tempDir()
    const app = join(dir, 'app.db')
    const archive = dbWith(join(dir, 'archive.db'), 'archived')
    const source = `{
      mover: thread({ uses: ['sqlite'], async does(p) {
        const attach = { attach: { arch: p.archive } }
        await this.sqlite.run(p.app, 'CREATE TABLE IF NOT EXISTS t (v TEXT)')
        await this.sqlite.run(p.app, 'INSERT INTO t SELECT v FROM arch.t', [], { ...attach, idempotent: true })
        return await this.sqlite.query(p.app, 'SELECT v FROM arch.t UNION ALL SELECT v FROM main.t', [], attach)
      } }),
    }`
    const mover = thread({
      uses: ['sqlite'],
      async does(p: { app: string; archive: string }) {
        const attach = { attach: { arch: p.archive } }
        await this.sqlite.run(p.app, 'CREATE TABLE IF NOT EXISTS t (v TEXT)')
        await this.sqlite.run(p.app, 'INSERT INTO t SELECT v FROM arch.t', [], { ...attach, idempotent: true })
        return await this.sqlite.query(p.app, 'SELECT v FROM arch.t UNION ALL SELECT v FROM main.t', [], attach)
      },
    })
    // Killed once the insert's outcome is durable: resumed, it is replayed, and only the query runs live.
    const child = await crashChild(dir, source, 'mover', { app, archive }, 'after-commit:2')
    expect(child.signal, child.stderr).toBe('SIGKILL')
    const { end } = await resume(dir, { mover })
    expect(resultOf(end)).toEqual([{ v: 'archived' }, { v: 'archived' }])
  })
})

import { describe, expect, it } from 'vitest'
import Database from 'better-sqlite3'
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { Weave, thread, DbTooNew, NotARaimentDb, NotInUses, UnknownLibrary, UnknownThreadType, InvalidDump, UnrecordableValue, InvalidArgument } from 'raiment'
import { record, replay } from 'raiment/testing'
import { tempDir } from './support/tmp.js'

declare module 'raiment' {
  interface Libraries {
    kv: { get(k: string): Promise<string> }
  }
}
const kv = { async get(k: string) { return `v-${k}` } }

const reader = thread({ uses: ['kv'], async does(p: { k: string }) { return await this.kv.get(p.k) } })

async function weaveWithOneDoneThread(db: string) {
  const weave = await Weave.open({ db, durability: 'memory', threads: { reader }, libraries: { kv }, ioLibs: false, dumps: false })
  const id = weave.spawn('reader', { k: 'a' })
  await weave.join(id)
  return { weave, id }
}

describe('bad input is a clear error, and nothing recorded is lost', () => {
  it("a weaveId other than the journal's is refused before anything is written (it was taken silently)", async () => {
    const db = join(tempDir(), 'w.db')
    const first = await Weave.open({ db, weaveId: 'shop', threads: {}, ioLibs: false, dumps: false })
    await first.close()
    const owner = (): unknown => {
      const d = new Database(db, { readonly: true })
      try {
        return d.prepare("SELECT v FROM meta WHERE k = 'owner'").pluck().get()
      } finally {
        d.close()
      }
    }
    const before = owner()
    const err = await Weave.open({ db, weaveId: 'billing', threads: {}, ioLibs: false, dumps: false }).then(
      () => null,
      (e: unknown) => e,
    )
    expect(err).toBeInstanceOf(InvalidArgument)
    expect((err as Error).message).toBe(`${db} belongs to weave 'shop' (its thread ids name it): pass weaveId 'shop', or another db for weave 'billing'`)
    expect(owner()).toEqual(before)
    const again = await Weave.open({ db, weaveId: 'shop', threads: {}, ioLibs: false, dumps: false })
    expect(again.journal.weaveId).toBe('shop')
    await again.close()
  })

  it('an unknown thread type names the known ones', async () => {
    const { weave, id } = await weaveWithOneDoneThread(join(tempDir(), 'w.db'))
    expect(() => weave.spawn('raeder', { k: 'a' })).toThrow(UnknownThreadType)
    expect(() => weave.spawn('raeder', { k: 'a' })).toThrow(/known types: reader/)
    expect(weave.journal.thread(id)?.status).toBe('done')
    await weave.close()
  })

  it('a library left out of uses is a coded error saying to add it, live and in replay alike', async () => {
    type Log = { log: { info(text: string): Promise<void> } }
    const forgetful = thread({
      uses: ['clock'],
      async does() {
        await this.clock.now()
        await (this as unknown as Log).log.info('hello')
      },
    })
    const { dump, end } = await record(forgetful, undefined, { name: 'forgetful', ioLibs: false })
    expect(end.status).toBe('failed')
    const live = (end as { error: Error & { code?: string } }).error
    expect(live).toBeInstanceOf(NotInUses)
    expect(live.code).toBe('RAIMENT_NOT_IN_USES')
    expect(live.message).toMatch(/^'log' is not in the uses of thread type 'forgetful': add it to uses \(thread\(\{ uses: \['clock', 'log'\]/)
    const run = await replay(forgetful, dump, { ioLibs: false })
    expect(run.status).toBe('failed')
    expect(run.error).toBeInstanceOf(NotInUses)
    expect(run.error!.message).toBe(live.message)
    expect(run.calls.map((c) => c.call)).toEqual(['clock.now'])
  })

  it('a library in uses that does not exist fails at load, naming those that exist', async () => {
    const bad = thread({ uses: ['kvv' as 'kv'], async does() {} })
    const err = await Weave.open({ db: join(tempDir(), 'w.db'), threads: { bad }, libraries: { kv }, ioLibs: false }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(UnknownLibrary)
    expect((err as Error).message).toMatch(/unknown I\/O library 'kvv'.*kv/)
  })

  it('an unknown method is a clear error at the call', async () => {
    const t = thread({ uses: ['kv'], async does() { return await (this.kv as unknown as { put(): Promise<void> }).put() } })
    const weave = await Weave.open({ db: join(tempDir(), 'w.db'), durability: 'memory', threads: { t }, libraries: { kv }, ioLibs: false, dumps: false })
    const end = await weave.join(weave.spawn('t'))
    expect(end.status).toBe('failed')
    expect((end as { error: Error }).error.message).toBe("I/O library 'kv' has no method 'put'; it has: get")
    await weave.close()
  })

  it('unrecordable params are refused at spawn, naming the path', async () => {
    const { weave } = await weaveWithOneDoneThread(join(tempDir(), 'w.db'))
    expect(() => weave.spawn('reader', { k: 'a', cb: () => 1 })).toThrow(UnrecordableValue)
    expect(() => weave.spawn('reader', { k: 'a', cb: () => 1 })).toThrow(/params\.cb is a function/)
    expect(() => weave.spawn('reader', { k: Symbol('s') })).toThrow(/params\.k is a symbol/)
    class Point { constructor(readonly x: number) {} }
    expect(() => weave.spawn('reader', { k: new Point(1) })).toThrow(/unregistered class \(Point\)/)
    await weave.close()
  })

  it('a dump of another thread type is refused', async () => {
    const { dump } = await record(reader, { k: 'z' }, { libraries: { kv }, ioLibs: false })
    const other = thread({ uses: ['clock'], async does() { return await this.clock.now() } })
    await expect(replay(other, dump)).rejects.toThrow(InvalidDump)
    await expect(replay(other, dump)).rejects.toThrow(/recorded from thread type 'bad-input.test', which called kv.get/)
  })

  it('a file that is not a Raiment db is refused and left byte for byte as it was', async () => {
    const dir = tempDir()
    const text = join(dir, 'notes.db')
    writeFileSync(text, 'these are my notes, not a database\n'.repeat(200))
    const before = readFileSync(text)
    await expect(Weave.open({ db: text, threads: { reader }, libraries: { kv }, ioLibs: false })).rejects.toThrow(NotARaimentDb)
    expect(readFileSync(text).equals(before)).toBe(true)

    const foreign = join(dir, 'app.db')
    const db = new Database(foreign)
    db.exec('CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO users (name) VALUES (\'ada\')')
    db.close()
    const foreignBefore = readFileSync(foreign)
    await expect(Weave.open({ db: foreign, threads: { reader }, libraries: { kv }, ioLibs: false })).rejects.toThrow(/SQLite database of another application/)
    expect(readFileSync(foreign).equals(foreignBefore)).toBe(true)
  })

  it('a corrupt Raiment db is refused, not overwritten', async () => {
    const dir = tempDir()
    const db = join(dir, 'w.db')
    const { weave } = await weaveWithOneDoneThread(db)
    await weave.close()
    const bytes = readFileSync(db)
    bytes.fill(0x5a, 0, 100) // smash the header
    writeFileSync(db, bytes)
    await expect(Weave.open({ db, threads: { reader }, libraries: { kv }, ioLibs: false })).rejects.toThrow(NotARaimentDb)
    expect(readFileSync(db).equals(bytes)).toBe(true)
  })

  it('a db from a newer schema is refused and left untouched', async () => {
    const dir = tempDir()
    const db = join(dir, 'w.db')
    const { weave, id } = await weaveWithOneDoneThread(db)
    await weave.close()
    const raw = new Database(db)
    raw.pragma('user_version = 99')
    raw.close()
    const before = readFileSync(db)
    const err = await Weave.open({ db, threads: { reader }, libraries: { kv }, ioLibs: false }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(DbTooNew)
    expect((err as Error).message).toMatch(/schema version 99.*Upgrade raiment/)
    expect(readFileSync(db).equals(before)).toBe(true)
    const check = new Database(db, { readonly: true })
    expect(check.prepare('SELECT status FROM threads WHERE id = ?').get(id)).toEqual({ status: 'done' })
    check.close()
  })

  it('a directory given as db is refused', async () => {
    const dir = tempDir()
    mkdirSync(join(dir, 'd.db'))
    await expect(Weave.open({ db: join(dir, 'd.db'), threads: { reader }, libraries: { kv }, ioLibs: false })).rejects.toThrow(/is a directory/)
  })

  it('a misspelt weave option is refused', async () => {
    await expect(Weave.open({ db: ':memory:', durabilty: 'sync' } as never)).rejects.toThrow(InvalidArgument)
    await expect(Weave.open({ db: ':memory:', durability: 'fast' as never, threads: {}, ioLibs: false })).rejects.toThrow(/durability must be one of sync, batched, memory, replicated, got "fast"/)
  })
})

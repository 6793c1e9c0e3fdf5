/**
 * Thread types a weave cannot run: a spawn of one is refused before anything is recorded; a
 * recorded thread of one waits for a weave that runs it (it used to end failed), and never keeps
 * a weave from opening; a module of the threads directory that fails to load makes only its own type
 * unavailable. Real journals and real module files in temp dirs.
 */
import { describe, expect, it } from 'vitest'
import { join } from 'node:path'
import { InvalidThreadModule, ThreadsWaitForType, ThreadTypeUnavailable, UnknownLibrary, UnknownThreadType, Weave, thread, type AnyThreadType } from 'raiment'
import { encodeValue } from '../src/encoding.js'
import { Journal } from '../src/journal.js'
import { MOVE_FORMAT, type MoveRecord } from '../src/migration.js'
import { tempDir } from './support/tmp.js'
import { BROKEN, GOOD_AND_BROKEN, projectWith, writeThread } from './support/threads-dir.js'
import { testClock } from 'raiment/testing'

const RAIMENT = new URL('../src/index.ts', import.meta.url).href

const greet = thread({ uses: ['clock'], async does(p: { name: string }) { await this.clock.now(); return `hi ${p.name}` } })

/** Records thread `type` as pending in journal `db`, as a `raiment spawn` with no weave running does. */
function recordPending(db: string, type: string, params = 'U'): string {
  const j = new Journal(db)
  try {
    const id = j.nextThreadId(1)
    j.insertThread(id, type, params, null, 'pending')
    j.flushNow()
    return id
  } finally {
    j.close()
  }
}

function open(db: string, threads: Record<string, AnyThreadType> | string, more: Parameters<typeof Weave.open>[0] = {}): Promise<Weave> {
  return Weave.open({ db, durability: 'memory', threads, ioLibs: false, dumps: false, ...more })
}

describe('a thread type the weave does not know', () => {
  it('weave.spawn of a misspelt type is refused with the known types and the nearest one, and nothing is recorded', async () => {
    const weave = await open(join(tempDir(), 'w.db'), { greet })
    const err = (() => {
      try {
        weave.spawn('gret', { name: 'ada' })
      } catch (e) {
        return e
      }
    })()
    expect(err).toBeInstanceOf(UnknownThreadType)
    expect((err as UnknownThreadType).code).toBe('RAIMENT_UNKNOWN_THREAD_TYPE')
    expect((err as UnknownThreadType).known).toEqual(['greet', 'raiment/supervisor'])
    expect((err as Error).message).toMatch(/unknown thread type 'gret' \(did you mean 'greet'\?\); known types: greet, raiment\/supervisor/)
    // Far from every known name: no guess.
    expect(() => weave.spawn('inventory')).toThrow(/unknown thread type 'inventory'; known/)
    await weave.committed()
    expect(weave.journal.threads({})).toEqual([])
    await weave.close()
  })

  it('a thread spawning a child of a misspelt type gets the refusal at its call, and no child is recorded', async () => {
    const parent = thread({
      uses: ['threads'],
      async does() {
        try {
          return await this.threads.spawn('greeet', { name: 'ada' })
        } catch (e) {
          return { name: (e as Error).name, code: (e as { code?: string }).code, message: (e as Error).message }
        }
      },
    })
    const weave = await open(join(tempDir(), 'w.db'), { greet, parent })
    const id = weave.spawn('parent')
    const end = await weave.join(id)
    expect(end).toMatchObject({ status: 'done', result: { name: 'UnknownThreadType', code: 'RAIMENT_UNKNOWN_THREAD_TYPE' } })
    expect((end as { result: { message: string } }).result.message).toMatch(/did you mean 'greet'/)
    expect(weave.journal.threads({}).map((t) => t.id)).toEqual([id])
    await weave.close()
  })

  it('a pending thread of an unknown type waits when a weave opens, with one warning, and the weave runs the rest; it can be killed; a weave with the type runs it', async () => {
    const db = join(tempDir(), 'w.db')
    const gone = recordPending(db, 'gret', encodeValue({ name: 'bo' }, 'params'))
    const warnings: Error[] = []
    const first = await open(db, { greet }, { onWarning: (w) => warnings.push(w) })
    expect(warnings).toHaveLength(1)
    expect(warnings[0]).toBeInstanceOf(ThreadsWaitForType)
    expect(warnings[0]).toMatchObject({ code: 'RAIMENT_THREADS_WAIT_FOR_TYPE', type: 'gret', threads: [gone] })
    expect(warnings[0]!.message).toMatch(/^thread \S+ of type 'gret' waits, not run: this weave has no such type \(its types: greet, raiment\/supervisor\)\. It resumes where it stopped once the weave loads the type/)
    expect(await first.join(first.spawn('greet', { name: 'ada' }))).toMatchObject({ status: 'done', result: 'hi ada' })
    await first.committed()
    expect(first.journal.thread(gone)?.status).toBe('pending')
    await first.close()
    // Killed while it waits: its joiner is told.
    const other = recordPending(db, 'gret')
    const killing = await open(db, { greet }, { onWarning: () => {} })
    const joined = killing.join(other)
    expect(killing.kill(other)).toBe(true)
    expect(await joined).toMatchObject({ status: 'killed' })
    await killing.close()
    const second = await open(db, { greet, gret: greet })
    expect(await second.join(gone)).toMatchObject({ status: 'done', result: 'hi bo' })
    await second.close()
  })

  it('a running thread whose type is gone waits at resume, its parent joining it, and takes what is sent to it meanwhile once a weave with the type resumes it', async () => {
    const db = join(tempDir(), 'w.db')
    const child = thread({ uses: ['mailbox'], async does() { return [await this.mailbox.receive(), await this.mailbox.receive()] } })
    const parent = thread({
      uses: ['threads', 'mailbox'],
      async does() {
        const id = await this.threads.spawn('child')
        await this.mailbox.send(id, 'one')
        return { id, joined: await this.threads.join(id) }
      },
    })
    const first = await open(db, { parent, child })
    const taken = new Promise<void>((resolve) => first.on('thread-start', (s) => s.type === 'child' && resolve()))
    const pid = first.spawn('parent')
    await taken
    await first.committed()
    await first.close()

    // Without the child's type: the child waits, its parent joining it, and what is sent to it stays in its inbox.
    const warnings: Error[] = []
    const second = await open(db, { parent }, { onWarning: (w) => warnings.push(w) })
    const cid = second.journal.threads({}).find((t) => t.type === 'child')!.id
    expect(warnings.map((w) => (w as ThreadsWaitForType).threads)).toEqual([[cid]])
    second.send(cid, 'two')
    await second.committed()
    expect(second.journal.thread(cid)?.status).toBe('running')
    await second.close()

    const third = await open(db, { parent, child })
    expect(await third.join(pid)).toMatchObject({ status: 'done', result: { id: cid, joined: ['one', 'two'] } })
    await third.close()

  })
})

describe('a module of the threads directory that fails to load', () => {
  it('makes only its own type unavailable, reported once with its file and cause', async () => {
    const dir = projectWith(GOOD_AND_BROKEN)
    const warnings: Error[] = []
    const weave = await open(join(dir, 'w.db'), join(dir, 'threads'), { onWarning: (w) => warnings.push(w) })
    expect(weave.types.sort()).toEqual(['good', 'raiment/supervisor'])
    expect([...weave.unavailable.keys()].sort()).toEqual(Object.keys(BROKEN).sort())
    expect(warnings).toHaveLength(Object.keys(BROKEN).length)
    for (const [type, re] of Object.entries(BROKEN)) {
      const w = warnings.find((x) => x === weave.unavailable.get(type))!
      expect(w, type).toBeDefined()
      expect(w.message).toMatch(re)
      expect(w.message).not.toMatch(/\n/)
      expect(w).toBeInstanceOf(type === 'nested/missing-lib' ? UnknownLibrary : InvalidThreadModule)
    }
    // The good type runs.
    expect(await weave.join(weave.spawn('good', { n: 21 }))).toMatchObject({ status: 'done', result: 42 })
    // A broken one is refused, with its load error as the cause, and nothing is recorded.
    let refused: unknown
    try {
      weave.spawn('throws')
    } catch (e) {
      refused = e
    }
    expect(refused).toBeInstanceOf(ThreadTypeUnavailable)
    expect((refused as Error).message).toMatch(/thread type 'throws' is unavailable: .*threads\/throws\.ts: could not be loaded: Error: boom at import/)
    expect((refused as Error).cause).toBe(weave.unavailable.get('throws'))
    expect(((refused as Error).cause as Error).cause).toMatchObject({ message: 'boom at import' })
    await weave.committed()
    expect(weave.journal.threads({}).map((t) => t.type)).toEqual(['good'])
    await weave.close()
  })

  it('a recorded thread of that type waits, with the load error as why; the others run', async () => {
    const dir = projectWith(GOOD_AND_BROKEN)
    const db = join(dir, 'w.db')
    const bad = recordPending(db, 'syntax')
    const ok = recordPending(db, 'good', encodeValue({ n: 2 }, 'params'))
    const warnings: Error[] = []
    const weave = await open(db, join(dir, 'threads'), { onWarning: (w) => warnings.push(w) })
    const waits = warnings.find((w) => w instanceof ThreadsWaitForType)!
    expect(waits).toMatchObject({ type: 'syntax', threads: [bad] })
    expect(waits.message).toMatch(/waits, not run: its module cannot be used \(/)
    expect(waits.cause).toBe(weave.unavailable.get('syntax'))
    expect(await weave.join(ok)).toMatchObject({ status: 'done', result: 4 })
    await weave.committed()
    expect(weave.journal.thread(bad)?.status).toBe('pending')
    await weave.close()
  })

  it('by default is reported as a process warning, once per file', async () => {
    const dir = projectWith({ 'good.ts': GOOD_AND_BROKEN['good.ts']!, 'throws.ts': GOOD_AND_BROKEN['throws.ts']! })
    const warnings: Error[] = []
    const listen = (w: Error): void => void warnings.push(w)
    process.on('warning', listen)
    try {
      const weave = await open(join(dir, 'w.db'), join(dir, 'threads'))
      await new Promise((r) => setImmediate(r)) // warnings are emitted on the next tick
      await weave.close()
    } finally {
      process.off('warning', listen)
    }
    expect(warnings.map((w) => w.message)).toEqual([expect.stringMatching(BROKEN['throws']!)])
    expect(warnings[0]).toMatchObject({ code: 'RAIMENT_INVALID_THREAD_MODULE' })
  })
})

describe('threads waiting for their type', () => {
  it('are quiet for a test clock: advance runs the others on', async () => {
    const db = join(tempDir(), 'w.db')
    recordPending(db, 'gone')
    const napper = thread({ uses: ['clock'], async does() { await this.clock.sleep(10_000); return 'slept' } })
    const clock = testClock(Date.UTC(2026, 0, 1))
    const weave = await open(db, { napper }, { clock, onWarning: () => {} })
    try {
      const id = weave.spawn(napper)
      await weave.committed()
      await clock.advance(20_000)
      expect(await weave.join(id)).toMatchObject({ status: 'done', result: 'slept' })
    } finally {
      await weave.close()
    }
  })

  it('the warning is told again for a thread parked after the last one of its type ended', async () => {
    const db = join(tempDir(), 'w.db')
    const first = recordPending(db, 'gone')
    const warnings: Error[] = []
    const weave = await open(db, { greet }, { onWarning: (w) => warnings.push(w) })
    try {
      expect(warnings.map((w) => (w as ThreadsWaitForType).threads)).toEqual([[first]])
      const ended = weave.join(first)
      expect(weave.kill(first)).toBe(true)
      expect(await ended).toMatchObject({ status: 'killed' })
      await weave.committed()
      expect(weave.journal.meta(`parked:${first}`)).toBeUndefined()
      // A thread of the same type moves here: parked, and told again.
      const second = 'elsewhere/7'
      const record: MoveRecord = { format: MOVE_FORMAT, from: 'elsewhere', thread: { id: second, type: 'gone', params: 'U', parent: null, created: Date.now() }, entries: [], inbox: [], names: [], traps: false }
      weave.arrive('move-1', record, () => {})
      expect(warnings.map((w) => (w as ThreadsWaitForType).threads)).toEqual([[first], [second]])
    } finally {
      await weave.close()
    }
  })

  it('can be cancelled: a weave with its type resumes it, and its first call fails with the cancel', async () => {
    const db = join(tempDir(), 'w.db')
    const careful = thread({
      uses: ['clock'],
      async does() {
        try {
          await this.clock.now()
          return 'not cancelled'
        } catch (e) {
          return (e as Error).name
        }
      },
    })
    const id = recordPending(db, 'careful')
    const without = await open(db, { greet }, { onWarning: () => {} })
    expect(without.cancel(id, 'changed my mind')).toBe(true)
    await without.close()
    const withIt = await open(db, { greet, careful })
    try {
      expect(await withIt.join(id)).toMatchObject({ status: 'done', result: 'ThreadCancelled' })
    } finally {
      await withIt.close()
    }
  })

  it("a pending one started by the reload that loads its type runs under that type's options (its retry policy)", async () => {
    const dir = projectWith({ 'good.ts': GOOD_AND_BROKEN['good.ts']! })
    const db = join(dir, 'w.db')
    const id = recordPending(db, 'payer')
    let asked = 0
    const flaky = {
      async charge(): Promise<string> {
        if (++asked < 3) throw new Error(`flaky failure ${asked}`)
        return 'charged'
      },
    }
    const weave = await open(db, join(dir, 'threads'), { libraries: { flaky }, onWarning: () => {} })
    try {
      writeThread(dir, 'payer.ts', `import { thread } from '${RAIMENT}'\nexport default thread({ uses: ['flaky'], retry: { flaky: { attempts: 3, initialInterval: 10, jitter: 0 } }, async does() { return await this.flaky.charge() } })\n`)
      // The journal says it waits for its type (ps, show and the UI read it) until it resumes.
      await weave.committed()
      expect(weave.journal.meta(`parked:${id}`)).toMatch(/^\d+$/)
      const report = await weave.reload()
      expect(report.types.find((t) => t.type === 'payer')).toMatchObject({ resumed: [id] })
      await weave.committed()
      expect(weave.journal.meta(`parked:${id}`)).toBeUndefined()
      expect(await weave.join(id)).toMatchObject({ status: 'done', result: 'charged' })
      expect(asked).toBe(3)
    } finally {
      await weave.close()
    }
  })
})

/**
 * Schedules through the API: bad definitions are refused with a code and write nothing; pause,
 * resume and remove; the missed-times policies on one worked example; schedules exported by
 * thread modules; and one run on the real clock.
 */
import Database from 'better-sqlite3'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { thread, Weave, type MissedPolicy, type WeaveOptions } from 'raiment'
import { raiment } from './support/raiment-process.js'
import { TestClock } from './support/schedule-clock.js'
import { tempDir } from './support/tmp.js'

const tick = thread({ uses: [], async does(p: { scheduledAt: string; n?: number }) { return p } })
const T0 = Date.parse('2026-03-01T10:00:30Z')

function setup(o: Partial<WeaveOptions> = {}): { db: string; clock: TestClock; open: () => Promise<Weave> } {
  const db = join(tempDir('raiment-sched-'), 'w.db')
  const clock = new TestClock(T0)
  return { db, clock, open: () => Weave.open({ db, durability: 'memory', threads: { tick }, ioLibs: false, dumps: false, scheduleClock: clock, ...o }) }
}

/** The scheduledAt of every thread of the journal, in order. */
function fired(weave: Weave): string[] {
  return weave.journal
    .threads()
    .map((t) => (JSON.parse(t.params.slice(1)) as { scheduledAt: string }).scheduledAt)
    .sort()
}

const iso = (s: string): string => new Date(Date.parse(s)).toISOString()

describe('weave.schedules', () => {
  it('refuses a bad definition with a code, and writes nothing', async () => {
    const { open } = setup()
    const weave = await open()
    const bad: Array<[string, unknown, string]> = [
      ['a', { cron: 'every minute', type: 'tick' }, 'RAIMENT_BAD_CRON'],
      ['a', { cron: '61 * * * *', type: 'tick' }, 'RAIMENT_BAD_CRON'],
      ['a', { cron: '0 0 0 1 1 * 2020', type: 'tick' }, 'RAIMENT_BAD_CRON'],
      ['a', { cron: '* * * * *', type: 'tick', tz: 'Mars/Olympus' }, 'RAIMENT_BAD_TIME_ZONE'],
      ['a', { cron: '* * * * *', type: 'nosuch' }, 'RAIMENT_UNKNOWN_THREAD_TYPE'],
      ['a', { cron: '* * * * *', type: 'tick', missed: 'sometimes' }, 'RAIMENT_BAD_SCHEDULE'],
      ['a', { cron: '* * * * *', type: 'tick', params: [1] }, 'RAIMENT_BAD_SCHEDULE'],
      ['a', { cron: '* * * * *', type: 'tick', params: null }, 'RAIMENT_BAD_SCHEDULE'],
      ['a', { cron: '* * * * *', type: 'tick', every: 5 }, 'RAIMENT_BAD_SCHEDULE'],
      ['a/b', { cron: '* * * * *', type: 'tick' }, 'RAIMENT_BAD_SCHEDULE'],
      ['a', { cron: '* * * * *', type: 'tick', params: { f: () => 1 } }, 'RAIMENT_UNRECORDABLE'],
    ]
    for (const [name, o, code] of bad) {
      await expect(weave.schedules.add(name, o as never), JSON.stringify(o)).rejects.toMatchObject({ code })
    }
    await weave.schedules.add('a', { cron: '* * * * *', type: 'tick' })
    await expect(weave.schedules.add('a', { cron: '*/2 * * * *', type: 'tick' })).rejects.toMatchObject({ code: 'RAIMENT_SCHEDULE_EXISTS' })
    // A time zone in the wrong case is taken, and kept as IANA spells it.
    expect(await weave.schedules.add('z', { cron: '0 9 * * *', type: 'tick', tz: 'europe/paris' })).toMatchObject({ tz: 'Europe/Paris' })
    await weave.schedules.remove('z')
    await expect(weave.schedules.pause('b')).rejects.toMatchObject({ code: 'RAIMENT_UNKNOWN_SCHEDULE' })
    await weave.committed()
    const rows = weave.journal.db.prepare('SELECT name, cron FROM schedules').all()
    expect(rows).toEqual([{ name: 'a', cron: '* * * * *' }])
    await weave.close()
  })

  it('fires each time with scheduledAt in the params; pause skips the times until resume; remove stops it', async () => {
    const { clock, open } = setup()
    const weave = await open()
    const info = await weave.schedules.add('five', { cron: '*/5 * * * *', type: 'tick', params: { n: 7 } })
    expect(info).toMatchObject({ name: 'five', missed: 'skip', tz: 'UTC', paused: false, source: 'api', lastFired: null, next: Date.parse('2026-03-01T10:05:00Z') })
    await clock.advance(Date.parse('2026-03-01T10:11:00Z'), weave)
    expect(fired(weave)).toEqual([iso('2026-03-01T10:05:00Z'), iso('2026-03-01T10:10:00Z')])
    const id = `${weave.journal.weaveId}/five@20260301T101000Z`
    expect(await weave.join(id)).toMatchObject({ status: 'done', result: { n: 7, scheduledAt: iso('2026-03-01T10:10:00Z') } })
    expect(weave.schedules.get('five')).toMatchObject({ lastFired: Date.parse('2026-03-01T10:10:00Z'), lastThread: id })
    await weave.schedules.pause('five')
    expect(weave.schedules.get('five')).toMatchObject({ paused: true, next: null })
    await clock.advance(Date.parse('2026-03-01T10:26:00Z'), weave)
    await weave.schedules.resume('five')
    await clock.advance(Date.parse('2026-03-01T10:31:00Z'), weave)
    expect(fired(weave).slice(2)).toEqual([iso('2026-03-01T10:30:00Z')])
    await weave.schedules.remove('five')
    await clock.advance(Date.parse('2026-03-01T11:00:00Z'), weave)
    expect(fired(weave)).toHaveLength(3)
    expect(weave.schedules.list()).toEqual([])
    expect(clock.armed).toBe(0)
    await weave.close()
  })

  it.each<[MissedPolicy, string[]]>([
    ['skip', ['10:05', '10:40']],
    ['once', ['10:05', '10:35', '10:40']],
    ['all', ['10:05', '10:10', '10:15', '10:20', '10:25', '10:30', '10:35', '10:40']],
  ])('times missed while no weave ran: %s', async (missed, times) => {
    const { clock, open } = setup()
    let weave = await open()
    await weave.schedules.add('five', { cron: '*/5 * * * *', type: 'tick', missed })
    await clock.advance(Date.parse('2026-03-01T10:07:00Z'), weave)
    await weave.close()
    // No weave from 10:07 to 10:37.
    clock.t = Date.parse('2026-03-01T10:37:00Z')
    weave = await open()
    await clock.advance(Date.parse('2026-03-01T10:42:00Z'), weave)
    expect(fired(weave)).toEqual(times.map((t) => iso(`2026-03-01T${t}:00Z`)))
    await weave.close()
  })

  it('a weave that cannot run its type keeps its times: the next that can fires them by its policy', async () => {
    const { db, clock, open } = setup()
    let weave = await open()
    await weave.schedules.add('five', { cron: '*/5 * * * *', type: 'tick', missed: 'all' })
    await clock.advance(Date.parse('2026-03-01T10:07:00Z'), weave)
    await weave.close()
    // A weave without the type (a host whose threads directory lacks it, a module that fails to
    // load) runs from 10:07 to 10:22: it fires nothing, says why once, and moves no time.
    const warnings: Error[] = []
    weave = await Weave.open({ db, durability: 'memory', threads: {}, ioLibs: false, dumps: false, scheduleClock: clock, onWarning: (w) => warnings.push(w) })
    await clock.advance(Date.parse('2026-03-01T10:22:00Z'), weave)
    expect(warnings.map((w) => (w as { code?: string }).code)).toContain('RAIMENT_SCHEDULE_BLOCKED')
    expect(weave.schedules.get('five')).toMatchObject({ lastFired: Date.parse('2026-03-01T10:05:00Z') })
    await weave.close()
    weave = await open()
    await clock.advance(Date.parse('2026-03-01T10:26:00Z'), weave)
    expect(fired(weave)).toEqual(['10:05', '10:10', '10:15', '10:20', '10:25'].map((t) => iso(`2026-03-01T${t}:00Z`)))
    await weave.close()
  })

  it('a schedule blocked by a module that does not load fires its kept times once a reload loads it', async () => {
    const { db, clock, open } = setup()
    let weave = await open()
    await weave.schedules.add('five', { cron: '*/5 * * * *', type: 'tick', missed: 'all' })
    await clock.advance(Date.parse('2026-03-01T10:06:00Z'), weave)
    await weave.close()
    const dir = join(tempDir('raiment-sched-files-'), 'threads')
    mkdirSync(dir)
    writeFileSync(join(dir, '..', 'package.json'), '{ "type": "module" }\n')
    writeFileSync(join(dir, 'tick.ts'), "throw new Error('broken module')\n")
    const warnings: Error[] = []
    weave = await Weave.open({ db, durability: 'memory', threads: dir, ioLibs: false, dumps: false, scheduleClock: clock, onWarning: (w) => warnings.push(w) })
    try {
      await clock.advance(Date.parse('2026-03-01T10:11:00Z'), weave)
      expect(warnings.map((w) => (w as { code?: string }).code)).toContain('RAIMENT_SCHEDULE_BLOCKED')
      // Said as blocked, by the API and by `raiment schedule ls` beside the running weave.
      expect(weave.schedules.get('five')).toMatchObject({ next: null, blocked: expect.stringMatching(/broken module/) as unknown })
      const ls = await raiment(dir, 'schedule', 'ls', '--db', db)
      expect(ls.stdout.split('\n')[1]).toMatch(/^five .* blocked /)
      expect(ls.stderr).toMatch(/schedule 'five' fires nothing in the running weave: .*broken module/)
      writeFileSync(join(dir, 'tick.ts'), `import { thread } from '${new URL('../src/index.ts', import.meta.url).href}'\nexport default thread({ uses: [], async does(p) { return p } })\n`)
      expect((await weave.reload()).types).toMatchObject([{ type: 'tick' }])
      expect(weave.schedules.get('five')?.blocked).toBeUndefined()
      expect((await raiment(dir, 'schedule', 'ls', '--db', db)).stdout.split('\n')[1]).toMatch(/^five .* active /)
      await clock.advance(Date.parse('2026-03-01T10:16:00Z'), weave)
      expect(fired(weave)).toEqual(['10:05', '10:10', '10:15'].map((t) => iso(`2026-03-01T${t}:00Z`)))
    } finally {
      await weave.close()
    }
  })

  it('reads the expression in its time zone', async () => {
    const { clock, open } = setup()
    const weave = await open()
    await weave.schedules.add('nine', { cron: '0 9 * * *', type: 'tick', tz: 'Europe/Paris' })
    await clock.advance(Date.parse('2026-03-03T00:00:00Z'), weave)
    expect(fired(weave)).toEqual([iso('2026-03-02T08:00:00Z')])
    await weave.close()
  })

  it('takes the schedules thread modules export, keeps them in step with the modules, and refuses to remove one', async () => {
    const dir = tempDir('raiment-sched-mod-')
    const raiment = new URL('../src/index.ts', import.meta.url).href
    /** A threads directory `name` whose `reports/daily` exports `schedule` (none when null), and a module with a bad one. */
    const threads = (name: string, cron: string | null): string => {
      mkdirSync(join(dir, name, 'reports'), { recursive: true })
      const decl = cron === null ? '' : `export const schedule = { cron: '${cron}', params: { to: 'ops' }, missed: 'all' }\n`
      writeFileSync(join(dir, name, 'reports', 'daily.ts'), `import { thread } from '${raiment}'\n${decl}export default thread({ uses: [], async does(p: unknown) { return p } })\n`)
      writeFileSync(join(dir, name, 'broken.ts'), `import { thread } from '${raiment}'\nexport const schedule = [{ cron: 'nope' }]\nexport default thread({ uses: [], async does() { return 1 } })\n`)
      return join(dir, name)
    }
    const clock = new TestClock(T0)
    const warnings: Error[] = []
    const o = (dirOfThreads: string): WeaveOptions => ({ db: join(dir, 'w.db'), threads: dirOfThreads, ioLibs: false, dumps: false, durability: 'memory', scheduleClock: clock, onWarning: (w) => warnings.push(w) })
    let weave = await Weave.open(o(threads('v1', '0 6 * * *')))
    expect(warnings.map((w) => (w as { code?: string }).code)).toEqual(['RAIMENT_BAD_CRON'])
    expect(warnings[0]!.message).toMatch(/thread type 'broken'/)
    expect(weave.schedules.list()).toMatchObject([{ name: 'reports.daily', cron: '0 6 * * *', type: 'reports/daily', source: 'module', params: { to: 'ops' } }])
    await expect(weave.schedules.remove('reports.daily')).rejects.toMatchObject({ code: 'RAIMENT_DECLARED_SCHEDULE' })
    await clock.advance(Date.parse('2026-03-02T06:30:00Z'), weave)
    expect(fired(weave)).toEqual([iso('2026-03-02T06:00:00Z')])
    await weave.close()
    // The module now says 07:00: the schedule follows, from where it was (07:00 of the 2nd is missed: `all` runs it).
    weave = await Weave.open(o(threads('v2', '0 7 * * *')))
    expect(weave.schedules.get('reports.daily')).toMatchObject({ cron: '0 7 * * *', lastFired: Date.parse('2026-03-02T06:00:00Z') })
    clock.t = Date.parse('2026-03-02T08:00:00Z')
    await weave.close()
    weave = await Weave.open(o(threads('v2b', '0 7 * * *')))
    await clock.advance(clock.t, weave)
    expect(fired(weave)).toEqual([iso('2026-03-02T06:00:00Z'), iso('2026-03-02T07:00:00Z')])
    await weave.close()
    // A weave of other code, without the module at all (a takeover's): the schedule is kept.
    mkdirSync(join(dir, 'other'))
    writeFileSync(join(dir, 'other', 'misc.ts'), `import { thread } from '${raiment}'\nexport default thread({ uses: [], async does() { return 1 } })\n`)
    weave = await Weave.open(o(join(dir, 'other')))
    expect(weave.schedules.list()).toMatchObject([{ name: 'reports.daily', blocked: expect.stringContaining('reports/daily') as unknown }])
    // Its module gone for good: there, and only there, it can be removed.
    await weave.schedules.remove('reports.daily')
    expect(weave.schedules.list()).toEqual([])
    await weave.close()
    // The export is gone: so is the schedule.
    weave = await Weave.open(o(threads('v3', null)))
    expect(weave.schedules.list()).toEqual([])
    await weave.close()
  })

  it("a module's changed expression counts from the start that brings it in: no time before it fires, of the old one or the new", async () => {
    const dir = tempDir('raiment-sched-retime-')
    const raiment = new URL('../src/index.ts', import.meta.url).href
    const threads = (name: string, cron: string): string => {
      mkdirSync(join(dir, name))
      writeFileSync(join(dir, name, 'report.ts'), `import { thread } from '${raiment}'\nexport const schedule = { cron: '${cron}', missed: 'all' }\nexport default thread({ uses: [], async does(p: unknown) { return p } })\n`)
      return join(dir, name)
    }
    const clock = new TestClock(Date.parse('2026-03-01T08:59:00Z'))
    const o = (dirOfThreads: string): WeaveOptions => ({ db: join(dir, 'w.db'), threads: dirOfThreads, ioLibs: false, dumps: false, durability: 'memory', scheduleClock: clock })
    let weave = await Weave.open(o(threads('daily', '0 9 * * *')))
    await clock.advance(Date.parse('2026-03-01T09:30:00Z'), weave)
    expect(fired(weave)).toEqual([iso('2026-03-01T09:00:00Z')])
    await weave.close()
    // Six hours down, then every hour: 10:00 to 15:00 were never times of the daily schedule.
    clock.t = Date.parse('2026-03-01T15:30:00Z')
    weave = await Weave.open(o(threads('hourly', '0 * * * *')))
    await clock.advance(Date.parse('2026-03-01T16:30:00Z'), weave)
    expect(fired(weave)).toEqual([iso('2026-03-01T09:00:00Z'), iso('2026-03-01T16:00:00Z')])
    await weave.close()
  })

  it("times a start passed over ('skip') stay passed over when a later start finds the module's policy changed to 'all'", async () => {
    const dir = tempDir('raiment-sched-policy-')
    const raiment = new URL('../src/index.ts', import.meta.url).href
    mkdirSync(join(dir, 'threads'))
    const declare = (missed: MissedPolicy): void =>
      writeFileSync(join(dir, 'threads', 'report.ts'), `import { thread } from '${raiment}'\nexport const schedule = { cron: '0 * * * *', missed: '${missed}' }\nexport default thread({ uses: [], async does(p: unknown) { return p } })\n`)
    const clock = new TestClock(Date.parse('2026-03-01T08:59:00Z'))
    const open = (): Promise<Weave> => Weave.open({ db: join(dir, 'w.db'), threads: join(dir, 'threads'), ioLibs: false, dumps: false, durability: 'memory', scheduleClock: clock })
    declare('skip')
    let weave = await open()
    await clock.advance(Date.parse('2026-03-01T09:30:00Z'), weave)
    await weave.close()
    // Down from 9:30 to 14:10: skipped. Stopped again before 15:00, then started under 'all'.
    clock.t = Date.parse('2026-03-01T14:10:00Z')
    weave = await open()
    await clock.advance(Date.parse('2026-03-01T14:20:00Z'), weave)
    await weave.close()
    declare('all')
    clock.t = Date.parse('2026-03-01T14:30:00Z')
    weave = await open()
    await clock.advance(Date.parse('2026-03-01T15:30:00Z'), weave)
    expect(fired(weave)).toEqual([iso('2026-03-01T09:00:00Z'), iso('2026-03-01T15:00:00Z')])
    await weave.close()
  })

  it('weaves loading the same thread modules: the schedules the modules declare fire on the one weave named, once a time', async () => {
    const dir = tempDir('raiment-sched-many-')
    const raiment = new URL('../src/index.ts', import.meta.url).href
    mkdirSync(join(dir, 'threads'))
    writeFileSync(join(dir, 'threads', 'sweep.ts'), `import { thread } from '${raiment}'\nexport const schedule = { cron: '*/5 * * * *' }\nexport default thread({ uses: [], async does(p: unknown) { return p } })\n`)
    const clock = new TestClock(T0)
    const o = (id: string, on?: string): WeaveOptions => ({ db: join(dir, `${id}.db`), weaveId: id, threads: join(dir, 'threads'), ioLibs: false, dumps: false, durability: 'memory', scheduleClock: clock, ...(on !== undefined ? { moduleSchedulesOn: on } : {}) })
    // Before the option: b's journal took the declaration in as well.
    const old = await Weave.open(o('b'))
    expect(old.schedules.list().map((s) => s.name)).toEqual(['sweep'])
    await old.close()
    const a = await Weave.open(o('a', 'a'))
    const b = await Weave.open(o('b', 'a'))
    try {
      expect(a.schedules.list().map((s) => s.name)).toEqual(['sweep'])
      expect(b.schedules.list()).toEqual([])
      await clock.advance(Date.parse('2026-03-01T10:16:00Z'), a)
      await clock.advance(clock.t, b)
      expect(fired(a)).toEqual(['10:05', '10:10', '10:15'].map((t) => iso(`2026-03-01T${t}:00Z`)))
      expect(fired(b)).toEqual([])
    } finally {
      await a.close()
      await b.close()
    }
  })

  it('fires on the real clock: an every-second schedule for about 3 s', async () => {
    const db = join(tempDir('raiment-sched-rt-'), 'w.db')
    const weave = await Weave.open({ db, durability: 'memory', threads: { tick }, ioLibs: false, dumps: false })
    const ends: Array<{ id: string; at: number }> = []
    const three = new Promise<void>((resolve) =>
      weave.on('thread-end', (e) => {
        if (e.status === 'done') ends.push({ id: e.id, at: Date.parse((e.result as { scheduledAt: string }).scheduledAt) })
        if (ends.length === 3) resolve()
      }),
    )
    const added = Date.now()
    await weave.schedules.add('second', { cron: '* * * * * *', type: 'tick' })
    await three
    await weave.close()
    const ats = ends.map((e) => e.at).sort((a, b) => a - b)
    // Consecutive whole seconds after the schedule was added, each its own thread.
    expect(ats[0]! % 1000).toBe(0)
    expect(ats[0]!).toBeGreaterThan(added)
    expect(ats).toEqual([ats[0]!, ats[0]! + 1000, ats[0]! + 2000])
    expect(new Set(ends.map((e) => e.id)).size).toBe(3)
    const raw = new Database(db, { readonly: true })
    expect((raw.prepare('SELECT count(*) AS n FROM threads').get() as { n: number }).n).toBeGreaterThanOrEqual(3)
    raw.close()
  })
})

describe('a declared schedule whose zone a journal stored in another case', () => {
  it('is the same zone: the times missed while no weave ran still fire (it is not taken for a changed schedule)', async () => {
    const dir = tempDir('raiment-tz-')
    mkdirSync(join(dir, 'threads'))
    const src = new URL('../src/index.ts', import.meta.url).href
    writeFileSync(join(dir, 'threads', 'daily.ts'), `import { thread } from '${src}'\nexport const schedule = { cron: '0 9 * * *', tz: 'europe/paris', missed: 'all' }\nexport default thread({ uses: [], async does(p: unknown) { return p } })\n`)
    const clock = new TestClock(Date.parse('2026-03-01T10:00:00Z'))
    const o: WeaveOptions = { db: join(dir, 'w.db'), threads: join(dir, 'threads'), ioLibs: false, dumps: false, durability: 'memory', scheduleClock: clock }
    await (await Weave.open(o)).close()
    // As Raiment kept it before it spelt zones as IANA does.
    const raw = new Database(o.db)
    raw.prepare("UPDATE schedules SET tz = 'europe/paris'").run()
    raw.close()
    clock.t = Date.parse('2026-03-04T10:00:00Z')
    const weave = await Weave.open(o)
    try {
      await clock.advance(clock.t, weave)
      await weave.committed()
      expect(weave.journal.threads()).toHaveLength(3)
      expect(weave.journal.db.prepare('SELECT tz FROM schedules').pluck().get()).toBe('Europe/Paris')
    } finally {
      await weave.close()
    }
  })
})

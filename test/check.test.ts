/**
 * `raiment check`: the records of a real journal replayed under changed thread types on disk
 * (compatible, diverges at entry k with the call made, its place in the code and the difference
 * of its arguments, does not load), patch.patched markers, and the command itself: read-only
 * beside a running weave, exit status, --json, and one-line errors for input it refuses.
 */
import Database from 'better-sqlite3'
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { makeDump, thread, Weave, type AnyThreadType } from 'raiment'
import { replay } from 'raiment/testing'
import { checkJournal, type Verdict } from '../src/check/check.js'
import { raiment } from './support/raiment-process.js'
import { tempDir } from './support/tmp.js'

const RAIMENT = new URL('../src/index.ts', import.meta.url).href

const STEPS_LIB = `export default {
  async step(name: string, n: number) { return name + ':' + n },
  wait() { (globalThis as { checkWaits?: () => void }).checkWaits?.(); return new Promise(() => {}) },
}
`

/** The first version of 'order': reserve, charge, then wait (so it stays running). */
const V1 = `import { thread } from '${RAIMENT}'
export default thread({
  uses: ['steps'],
  async does(p: { n: number }) {
    await this.steps.step('reserve', p.n)
    await this.steps.step('charge', { amount: p.n, currency: 'EUR' })
    await this.steps.wait()
  },
})
`

/** 'order' with the charge's amount changed (line 6 makes the call). */
const CHANGED = `import { thread } from '${RAIMENT}'
export default thread({
  uses: ['steps'],
  async does(p: { n: number }) {
    await this.steps.step('reserve', p.n)
    await this.steps.step('charge', { amount: p.n * 100, currency: 'EUR' })
    await this.steps.wait()
  },
})
`

/** 'order' whose charge is made in two steps, behind a patch. */
const PATCHED = `import { thread } from '${RAIMENT}'
export default thread({
  uses: ['steps', 'patch'],
  async does(p: { n: number }) {
    await this.steps.step('reserve', p.n)
    if (await this.patch.patched('charge-in-two-steps')) {
      await this.steps.step('authorize', { amount: p.n, currency: 'EUR' })
      await this.steps.step('capture', { amount: p.n, currency: 'EUR' })
    } else {
      await this.steps.step('charge', { amount: p.n, currency: 'EUR' })
    }
    await this.steps.wait()
  },
})
`

/** 'order' that steps three times in a loop, then waits. */
const LOOP = `import { thread } from '${RAIMENT}'
export default thread({
  uses: ['steps'],
  async does(p: { n: number }) {
    for (let i = 0; i < 3; i++) await this.steps.step('tick', i)
    await this.steps.wait()
  },
})
`

/** LOOP with its step behind a patch met at each turn of the loop. */
const LOOP_PATCHED = `import { thread } from '${RAIMENT}'
export default thread({
  uses: ['steps', 'patch'],
  async does(p: { n: number }) {
    for (let i = 0; i < 3; i++) {
      if (await this.patch.patched('tick-v2')) await this.steps.step('tick2', i)
      else await this.steps.step('tick', i)
    }
    await this.steps.wait()
  },
})
`

const QUICK = `import { thread } from '${RAIMENT}'
export default thread({ uses: ['steps'], async does() { return this.steps.step('quick', 1) } })
`

/** A project: io-libs/steps.ts, and one threads directory per version of the code. */
function project(versions: Record<string, Record<string, string>>): string {
  const dir = tempDir('raiment-check-')
  writeFileSync(join(dir, 'package.json'), '{ "type": "module" }\n')
  mkdirSync(join(dir, 'io-libs'))
  writeFileSync(join(dir, 'io-libs', 'steps.ts'), STEPS_LIB)
  for (const [v, files] of Object.entries(versions)) {
    mkdirSync(join(dir, v))
    for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, v, name), text)
  }
  return dir
}

/** Opens a weave on `threads` and spawns `n` orders; resolves once all of them wait. */
async function runOrders(dir: string, threads: string, n: number, db = join(dir, 'app.db')): Promise<{ weave: Weave; ids: string[] }> {
  let waiting = 0
  let wake: () => void = () => {}
  const all = new Promise<void>((res) => (wake = res))
  ;(globalThis as { checkWaits?: () => void }).checkWaits = () => {
    if (++waiting === n) wake()
  }
  const weave = await Weave.open({ db, threads: join(dir, threads), ioLibs: join(dir, 'io-libs'), durability: 'memory', dumps: false })
  const ids = Array.from({ length: n }, (_, i) => weave.spawn('order', { n: i + 1 }))
  await all
  return { weave, ids }
}

const check = (dir: string, threads: string, ended?: number) =>
  checkJournal({ db: join(dir, 'app.db'), threads: join(dir, threads), ioLibs: join(dir, 'io-libs'), ...(ended !== undefined ? { ended } : {}) })

function diverged(v: Verdict | undefined): Extract<Verdict, { verdict: 'diverges' }> {
  expect(v?.verdict).toBe('diverges')
  return v as Extract<Verdict, { verdict: 'diverges' }>
}

describe('raiment check', () => {
  it('tells compatible, diverges at entry k (call made, its place, the difference) and does not load', async () => {
    const dir = project({ v1: { 'order.ts': V1, 'quick.ts': QUICK }, v2: { 'order.ts': CHANGED, 'quick.ts': QUICK }, broken: { 'order.ts': 'export default thread({ uses: [], async does( { return 1 } })\n' } })
    const { weave } = await runOrders(dir, 'v1', 2)
    const quick = weave.spawn('quick', {})
    await weave.join(quick)
    await weave.close()

    const same = await check(dir, 'v1', 5)
    expect(same.ok).toBe(true)
    expect(same.threads.map((v) => v.verdict)).toEqual(['compatible', 'compatible', 'compatible'])
    expect(same.types).toEqual([
      { type: 'order', compatible: 2, diverges: 0, doesNotLoad: 0 },
      { type: 'quick', compatible: 1, diverges: 0, doesNotLoad: 0 },
    ])

    const changed = await check(dir, 'v2')
    expect(changed.ok).toBe(false)
    const d = diverged(changed.threads[0])
    expect(d.at).toBe(1)
    expect(d.kind).toBe('unexpected')
    expect(d.recorded).toEqual({ call: 'steps.step', args: ['charge', { amount: 1, currency: 'EUR' }], ord: 0 })
    expect(d.made).toEqual({ call: 'steps.step', args: ['charge', { amount: 100, currency: 'EUR' }], ord: 0 })
    expect(d.diff).toEqual(['args[1].amount: 1 → 100'])
    expect(d.where).toBe(`${join(dir, 'v2', 'order.ts')}:6:22`)
    expect(changed.types).toEqual([{ type: 'order', compatible: 0, diverges: 2, doesNotLoad: 0 }])

    const broken = await check(dir, 'broken')
    expect(broken.threads.map((v) => v.verdict)).toEqual(['does-not-load', 'does-not-load'])
    expect(broken.threads[0]).toMatchObject({ code: 'RAIMENT_INVALID_THREAD_MODULE' })
    expect(broken.unavailable.map((u) => u.type)).toEqual(['order'])
  })

  it('a library that fails to load: the threads of types that use it do not load, the others are checked and replay', async () => {
    const usesBroken = QUICK.replace("uses: ['steps']", "uses: ['steps', 'broken']")
    const dir = project({ v1: { 'order.ts': V1, 'quick.ts': QUICK }, v2: { 'order.ts': V1, 'quick.ts': usesBroken } })
    const { weave } = await runOrders(dir, 'v1', 1)
    const quick = weave.spawn('quick', {})
    await weave.join(quick)
    const dump = makeDump(weave.journal, quick)
    await weave.close()
    writeFileSync(join(dir, 'io-libs', 'broken.ts'), 'export default { async oops( { return 1 } }\n')
    const r = await check(dir, 'v2', 1)
    expect(r.threads.map((v) => [v.type, v.verdict])).toEqual([
      ['order', 'compatible'],
      ['quick', 'does-not-load'],
    ])
    expect(r.threads[1]).toMatchObject({ code: 'RAIMENT_INVALID_LIBRARY', message: expect.stringMatching(/broken\.ts: could not be loaded: /) })
    const ioLibs = join(dir, 'io-libs')
    const quickOf = (uses: string[]): AnyThreadType =>
      thread({
        uses: uses as never[],
        async does(_p: unknown): Promise<unknown> {
          return (this as unknown as { steps: { step(name: string, n: number): Promise<string> } }).steps.step('quick', 1)
        },
      }) as AnyThreadType
    expect((await replay(quickOf(['steps']), dump, { ioLibs })).result).toBe('quick:1')
    await expect(replay(quickOf(['steps', 'broken']), dump, { ioLibs })).rejects.toMatchObject({ code: 'RAIMENT_INVALID_LIBRARY' })
    // A library a weave would refuse at its start (a journalOnly naming no method of it): the same.
    writeFileSync(join(dir, 'io-libs', 'broken.ts'), "export default { async oops() { return 1 } }\nexport const journalOnly = ['opps']\n")
    expect((await check(dir, 'v2', 1)).threads[1]).toMatchObject({ verdict: 'does-not-load', code: 'RAIMENT_INVALID_LIBRARY', message: expect.stringContaining("'journalOnly' must be a list of the library's method names (oops)") })
  })

  it('a thread its weave failed where its record stops (new code that diverged) is compatible with the code it ran: not an end of its own', async () => {
    const dir = project({ v1: { 'order.ts': V1 }, v2: { 'order.ts': CHANGED } })
    const { weave, ids } = await runOrders(dir, 'v1', 1)
    await weave.close()
    const resumed = await Weave.open({ db: join(dir, 'app.db'), threads: join(dir, 'v2'), ioLibs: join(dir, 'io-libs'), durability: 'memory', dumps: false })
    try {
      expect(await resumed.join(ids[0]!)).toMatchObject({ status: 'failed', error: { code: 'RAIMENT_REPLAY_DIVERGENCE' } })
    } finally {
      await resumed.close()
    }
    const back = await check(dir, 'v1', 1)
    expect(back.threads).toMatchObject([{ id: ids[0], status: 'failed', verdict: 'compatible' }])
  })

  it('new code that throws where the record holds more: the verdict says what it threw, and where', async () => {
    const throws = V1.replace("    await this.steps.step('charge', { amount: p.n, currency: 'EUR' })\n", "    ;(p as unknown as { sku: string }).sku.toUpperCase()\n")
    const dir = project({ v1: { 'order.ts': V1 }, v2: { 'order.ts': throws } })
    const { weave } = await runOrders(dir, 'v1', 1)
    await weave.close()
    const order = diverged((await check(dir, 'v2')).threads[0])
    expect(order).toMatchObject({ at: 1, kind: 'ended', made: null })
    expect(order.threw).toMatch(new RegExp(`^TypeError: Cannot read properties of undefined \\(reading 'toUpperCase'\\) \\(at .*${join(dir, 'v2', 'order.ts').replaceAll('/', '\\/')}:6:\\d+\\)$`))
  })

  it('a removed call, an added one, and a finished thread that would call more', async () => {
    const dropCharge = V1.replace("    await this.steps.step('charge', { amount: p.n, currency: 'EUR' })\n", '')
    const moreQuick = QUICK.replace("return this.steps.step('quick', 1)", "await this.steps.step('quick', 1); return this.steps.step('more', 1)")
    const dir = project({ v1: { 'order.ts': V1, 'quick.ts': QUICK }, v2: { 'order.ts': dropCharge, 'quick.ts': moreQuick } })
    const { weave } = await runOrders(dir, 'v1', 1)
    await weave.join(weave.spawn('quick', {}))
    await weave.close()
    const r = await check(dir, 'v2', 1)
    // The order waits where the record holds the charge; the quick thread, done, calls past its record.
    const order = diverged(r.threads[0])
    expect(order).toMatchObject({ at: 1, kind: 'unexpected', recorded: { call: 'steps.step', args: ['charge', { amount: 1, currency: 'EUR' }] }, made: { call: 'steps.wait', args: [] } })
    const quick = diverged(r.threads[1])
    expect(quick).toMatchObject({ at: 1, kind: 'beyond', recorded: null, made: { call: 'steps.step', args: ['more', 1] } })
  })

  it('patch.patched: old records take the old path, new threads the new; check reports who still needs the old', async () => {
    const dir = project({ v1: { 'order.ts': V1 }, v3: { 'order.ts': PATCHED } })
    const first = await runOrders(dir, 'v1', 2)
    await first.weave.close()
    const before = await check(dir, 'v3')
    expect(before.ok).toBe(true)
    expect(before.changes).toEqual([{ change: 'charge-in-two-steps', oldPath: first.ids, newPath: 0 }])

    // The new code resumes the old threads on the old path and runs a new one on the new path.
    const db = join(dir, 'app.db')
    let wake: () => void = () => {}
    const waited = new Promise<void>((res) => (wake = res))
    let waits = 0
    ;(globalThis as { checkWaits?: () => void }).checkWaits = () => {
      if (++waits === 3) wake()
    }
    const weave = await Weave.open({ db, threads: join(dir, 'v3'), ioLibs: join(dir, 'io-libs'), durability: 'memory', dumps: false })
    const fresh = weave.spawn('order', { n: 7 })
    await waited
    await weave.close()
    const journal = new Database(db, { readonly: true })
    const calls = (id: string) => (journal.prepare('SELECT key FROM journal WHERE thread = ? ORDER BY seq').pluck().all(id) as string[]).map((k) => k.slice(0, k.indexOf(':')))
    expect(calls(first.ids[0]!)).toEqual(['steps.step', 'steps.step'])
    expect(calls(fresh)).toEqual(['steps.step', 'patch.patched', 'steps.step', 'steps.step'])
    journal.close()

    const after = await check(dir, 'v3')
    expect(after.ok).toBe(true)
    expect(after.changes).toEqual([{ change: 'charge-in-two-steps', oldPath: first.ids, newPath: 1 }])
  })

  it('patch.patched in a loop: each thread is listed once under its change, not once per marker call (a user trial)', async () => {
    const dir = project({ v1: { 'order.ts': LOOP }, v2: { 'order.ts': LOOP_PATCHED } })
    const first = await runOrders(dir, 'v1', 2)
    await first.weave.close()
    const r = await check(dir, 'v2')
    expect(r.ok).toBe(true)
    expect(r.changes).toEqual([{ change: 'tick-v2', oldPath: first.ids, newPath: 0 }])
    const out = await raiment(dir, 'check', '--db', 'app.db', '--threads', 'v2', '--io-libs', 'io-libs')
    expect(out.code).toBe(0)
    expect(out.stdout).toContain(`tick-v2: 2 unfinished threads still take the old path (${first.ids.join(', ')}): keep it`)

    // A thread started on the new code meets the marker three times and counts once on the new path.
    let wake: () => void = () => {}
    const waited = new Promise<void>((res) => (wake = res))
    let waits = 0
    ;(globalThis as { checkWaits?: () => void }).checkWaits = () => {
      if (++waits === 3) wake()
    }
    const weave = await Weave.open({ db: join(dir, 'app.db'), threads: join(dir, 'v2'), ioLibs: join(dir, 'io-libs'), durability: 'memory', dumps: false })
    weave.spawn('order', { n: 3 })
    await waited
    await weave.close()
    expect((await check(dir, 'v2')).changes).toEqual([{ change: 'tick-v2', oldPath: first.ids, newPath: 1 }])
  })

  it('the command: beside a running weave, creating nothing; exit 1 and where it diverges; --json', async () => {
    const dir = project({ v1: { 'order.ts': V1 }, v2: { 'order.ts': CHANGED } })
    const { weave } = await runOrders(dir, 'v1', 1)
    try {
      const files = readdirSync(dir).sort()
      const out = await raiment(dir, 'check', '--db', 'app.db', '--threads', 'v2', '--io-libs', 'io-libs')
      expect(out.code).toBe(1)
      expect(out.stdout).toContain('checked 1 thread of app.db against v2/: 0 compatible, 1 not')
      expect(out.stdout).toMatch(/diverges at entry 1 \(seq 1\)/)
      expect(out.stdout).toContain('recorded: steps.step("charge", {"amount":1,"currency":"EUR"})')
      expect(out.stdout).toContain('made:     steps.step("charge", {"amount":100,"currency":"EUR"})   at v2/order.ts:6:22')
      expect(out.stdout).toContain('args[1].amount: 1 → 100')
      // A mistyped --threads: refused, not "0 threads checked".
      const missing = await raiment(dir, 'check', '--db', 'app.db', '--threads', 'v3', '--io-libs', 'io-libs')
      expect(missing.code).toBe(1)
      expect(missing.stderr).toMatch(/^raiment: RAIMENT_NO_THREADS_DIR: there is no directory 'v3'/m)
      const json = await raiment(dir, 'check', '--db', 'app.db', '--threads', 'v1', '--io-libs', 'io-libs', '--json')
      expect(json.code).toBe(0)
      const r = JSON.parse(json.stdout) as { ok: boolean; threads: Array<{ verdict: string; then: string }> }
      expect(r.ok).toBe(true)
      expect(r.threads).toMatchObject([{ verdict: 'compatible', then: 'live' }])
      expect(readdirSync(dir).sort()).toEqual(files)
    } finally {
      await weave.close()
    }
  })

  it('a --threads that names no directory is refused also when no thread is unfinished (a user trial: a deploy gate passed)', async () => {
    const dir = project({ v1: { 'quick.ts': QUICK } })
    const weave = await Weave.open({ db: join(dir, 'app.db'), threads: join(dir, 'v1'), ioLibs: join(dir, 'io-libs'), durability: 'memory', dumps: false })
    await weave.join(weave.spawn('quick', {}))
    await weave.close()
    expect((await raiment(dir, 'check', '--db', 'app.db', '--threads', 'v1', '--io-libs', 'io-libs')).code).toBe(0)
    for (const threads of [join(dir, 'nonexistent'), join(dir, 'v1', 'quick.ts')]) {
      const out = await raiment(dir, 'check', '--db', 'app.db', '--threads', threads, '--io-libs', 'io-libs')
      expect(out.code).toBe(1)
      expect(out.stdout).toBe('')
      expect(out.stderr).toMatch(/^raiment: RAIMENT_NO_THREADS_DIR: there is no directory '/m)
    }
  })

  it('a journal of a newer schema: one line with its code, the file untouched', async () => {
    const dir = project({ v1: { 'order.ts': V1 } })
    const { weave } = await runOrders(dir, 'v1', 1)
    await weave.close()
    const raw = new Database(join(dir, 'app.db'))
    raw.pragma('user_version = 99')
    raw.close()
    const bytes = readFileSync(join(dir, 'app.db'))
    const files = readdirSync(dir).sort()
    const out = await raiment(dir, 'check', '--db', 'app.db', '--threads', 'v1', '--io-libs', 'io-libs')
    expect(out.code).toBe(1)
    expect(out.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^raiment: RAIMENT_DB_TOO_NEW: app\.db has journal schema version 99/)])
    expect(readFileSync(join(dir, 'app.db')).equals(bytes)).toBe(true)
    expect(readdirSync(dir).sort()).toEqual(files)
  })
})

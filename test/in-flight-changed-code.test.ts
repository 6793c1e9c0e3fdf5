/**
 * A call in flight when the weave died, and code changed before it restarted (a user trial): the
 * record ended before `psp.charge`, whose outcome was never recorded, so the new code's
 * `patch.patched('two-steps')` answered true and the thread authorized and captured: the
 * customer was charged twice. The journal now says which calls were in flight
 * (src/in-flight.ts): the patch answers as the old code went, the charge is made again with its
 * call id (the PSP dedupes it), and a charge made with other arguments is a divergence.
 *
 * Real processes: `raiment start` SIGKILLed while the charge hangs, then started on changed code.
 */
import { appendFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import Database from 'better-sqlite3'
import { raiment, raimentProcess, type Running } from './support/raiment-process.js'
import { tempDir } from './support/tmp.js'

const PSP = `import { appendFileSync, existsSync } from 'node:fs'
import { callContext } from 'raiment'
/** Each effect, with its call id; a charge hangs while HANG is set (the weave is killed in it). */
const effect = (what) => appendFileSync(process.env.EFFECTS, what + ' ' + callContext().callId + '\\n')
export default {
  async charge(order) { effect('charge ' + order); if (process.env.HANG === '1') await new Promise(() => {}); return 'charged' },
  async authorize(order) { effect('authorize ' + order); return 'auth' },
  async capture(order) { effect('capture ' + order); return 'captured' },
}
`

const V1 = `import { thread } from 'raiment'
export default thread({ uses: ['psp', 'log'], async does(p) {
  await this.log.info('paying ' + p.order)
  return await this.psp.charge(p.order)
} })
`

/** The docs' two-step payment: new threads authorize and capture. */
const V2 = `import { thread } from 'raiment'
export default thread({ uses: ['psp', 'log', 'patch'], async does(p) {
  await this.log.info('paying ' + p.order)
  if (await this.patch.patched('two-steps')) {
    await this.psp.authorize(p.order)
    return await this.psp.capture(p.order)
  }
  return await this.psp.charge(p.order)
} })
`

/** The charge made with other arguments. */
const V3 = `import { thread } from 'raiment'
export default thread({ uses: ['psp', 'log'], async does(p) {
  await this.log.info('paying ' + p.order)
  return await this.psp.charge(p.order.toUpperCase())
} })
`

const running = new Set<Running>()
afterEach(() => {
  for (const r of running) r.child.kill('SIGKILL')
  running.clear()
})

/** A project with the psp library and `pay` at v1; a thread of it killed during its charge. */
async function killedInCharge(): Promise<{ dir: string; env: Record<string, string>; id: string; effects: () => string[] }> {
  const dir = tempDir()
  mkdirSync(join(dir, 'threads'))
  mkdirSync(join(dir, 'io-libs'))
  writeFileSync(join(dir, 'io-libs', 'psp.mjs'), PSP)
  writeFileSync(join(dir, 'threads', 'pay.mjs'), V1)
  const file = join(dir, 'effects.txt')
  appendFileSync(file, '')
  const env = { EFFECTS: file }
  const spawned = await raiment(dir, 'spawn', 'pay', '{"order":"o-1"}', '--db', 'app.db')
  expect(spawned.code, spawned.stderr).toBe(0)
  const id = spawned.stdout.trim()
  const weave = raimentProcess(dir, ['start', '--db', 'app.db'], { env: { ...env, HANG: '1' } })
  running.add(weave)
  const effects = (): string[] => readFileSync(file, 'utf8').split('\n').filter(Boolean)
  // The charge made, and the journal has it as in flight (its batch committed): the host dies.
  await until(() => effects().length > 0 && inFlightRows(dir).length === 1)
  weave.child.kill('SIGKILL')
  await weave.ended
  return { dir, env, id, effects }
}

function inFlightRows(dir: string): string[] {
  const db = new Database(join(dir, 'app.db'), { readonly: true })
  try {
    return db.prepare("SELECT k FROM meta WHERE k LIKE 'inflight:%'").pluck().all() as string[]
  } finally {
    db.close()
  }
}

async function until(test: () => boolean): Promise<void> {
  // The effect and the row are written by the child: polled, as there is no event across processes.
  for (let i = 0; i < 500 && !test(); i++) await new Promise((r) => setTimeout(r, 10))
  expect(test()).toBe(true)
}

/** Starts the weave on the code now in threads/ and waits for thread `id` to end; its `show --json`. */
async function runToEnd(dir: string, env: Record<string, string>, id: string): Promise<{ status: string; result?: unknown; error?: { code?: string; message: string } }> {
  const weave = raimentProcess(dir, ['start', '--db', 'app.db'], { env })
  running.add(weave)
  await weave.until((out) => new RegExp(`(done|failed) ${id}`).test(out))
  weave.child.kill('SIGTERM')
  await weave.ended
  const shown = await raiment(dir, 'show', id, '--db', 'app.db', '--json')
  return (JSON.parse(shown.stdout) as { thread: { status: string; result?: unknown; error?: { code?: string; message: string } } }).thread
}

describe('a call in flight when the weave died, and the code changed', () => {
  it('a patch added before it answers as the old code went: the charge is made again with its call id, nothing authorized', async () => {
    const { dir, env, id, effects } = await killedInCharge()
    writeFileSync(join(dir, 'threads', 'pay.mjs'), V2)
    // raiment check knows it too: the patch must stay.
    const checked = await raiment(dir, 'check', '--db', 'app.db')
    expect(checked.code, checked.stderr).toBe(0)
    expect(checked.stdout).toContain(`two-steps: 1 unfinished thread still takes the old path (${id}): keep it`)
    const end = await runToEnd(dir, env, id)
    expect(end).toMatchObject({ status: 'done', result: 'charged' })
    const made = effects()
    expect(made.map((l) => l.split(' ').slice(0, 2).join(' '))).toEqual(['charge o-1', 'charge o-1'])
    // The same call id: a PSP that dedupes by it charges once.
    expect(new Set(made.map((l) => l.split(' ')[2])).size).toBe(1)
    expect(inFlightRows(dir)).toEqual([])
  })

  it('the charge made with other arguments is a divergence, not a second charge', async () => {
    const { dir, env, id, effects } = await killedInCharge()
    writeFileSync(join(dir, 'threads', 'pay.mjs'), V3)
    const checked = await raiment(dir, 'check', '--db', 'app.db')
    expect(checked.code).toBe(1)
    expect(checked.stdout).toMatch(/diverges at entry 1: the code makes another call where this one was in flight when its weave stopped .*\n {2}in flight: psp\.charge\("o-1"\)\n {2}made: {6}psp\.charge\("O-1"\)/)
    const end = await runToEnd(dir, env, id)
    expect(end.status).toBe('failed')
    expect(end.error?.message).toMatch(/psp\.charge\("o-1"\) \(ordinal 0\) was in flight when its weave stopped, its outcome never recorded \(it may have been made\), and the thread now makes psp\.charge\("O-1"\)/)
    expect(effects()).toHaveLength(1)
    expect(inFlightRows(dir)).toEqual([])
  })

  it('unchanged code makes it again with its call id, as before; raiment show lists it in flight meanwhile', async () => {
    const { dir, env, id, effects } = await killedInCharge()
    const shown = await raiment(dir, 'show', id, '--db', 'app.db')
    expect(shown.stdout).toMatch(/^in flight {2}psp\.charge {2}o-1 {2}since \d{4}-\d\d-\d\dT/m)
    const json = JSON.parse((await raiment(dir, 'show', id, '--db', 'app.db', '--json')).stdout) as { inFlight: unknown[] }
    expect(json.inFlight).toEqual([{ call: 'psp.charge', args: ['o-1'], ord: 0, started: expect.stringMatching(/Z$/) as unknown }])
    expect(await runToEnd(dir, env, id)).toMatchObject({ status: 'done', result: 'charged' })
    const made = effects()
    expect(made).toHaveLength(2)
    expect(made[0]).toBe(made[1])
    expect(inFlightRows(dir)).toEqual([])
  })
})

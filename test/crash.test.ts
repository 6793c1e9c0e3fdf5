/**
 * Crash and resume, with real processes: a weave child runs worker threads whose calls add to
 * counters in a separate SQLite file (the call id is the idempotency key); the test SIGKILLs it
 * at instants fast-check chooses, restarts it until every thread has ended, and checks that each
 * thread's result is what an uninterrupted run gives and that every effect was applied exactly
 * once per call id, although a call in flight at a crash is attempted again.
 *
 * The named crash points of the weft (RAIMENT_CRASH_AT) kill it exactly after a live call and
 * before its record, and after the record and before the thread sees it.
 *
 * Reproduce a failure with FC_SEED=<seed>.
 */
import Database from 'better-sqlite3'
import fc from 'fast-check'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { callIdOfRow } from '../src/call-context.js'
import { decodeValue } from '../src/encoding.js'
import { Journal } from '../src/journal.js'
import { describeRun, runChild, supportScript, type ChildRun } from './support/child.js'
import { Weave } from 'raiment'
import { expectedCounters, expectedResult, fxLibrary, worker, type Plan, type PlanCall } from './support/crash-plan.js'
import { tempDir } from './support/tmp.js'

const CHILD = supportScript('crash-child.ts')
const seed = process.env['FC_SEED'] !== undefined ? Number(process.env['FC_SEED']) : Date.now() % 2 ** 31
const RUNS = Number(process.env['CRASH_RUNS'] ?? 20)
console.log(`crash: fast-check seed ${seed}, ${RUNS} runs (FC_SEED=${seed} to reproduce)`)

function planArb(): fc.Arbitrary<Plan> {
  const delay = fc.integer({ min: 0, max: 3 })
  const call: fc.Arbitrary<PlanCall> = fc.oneof(
    fc.record({ kind: fc.constant('echo' as const), v: fc.constantFrom('x', 'y', 'z'), delay }),
    // Small alphabets, so identical calls (same key, different ordinals) are common.
    fc.record({ kind: fc.constant('incr' as const), counter: fc.constantFrom('c1', 'c2'), amount: fc.integer({ min: 1, max: 3 }), delay }),
  )
  return fc.array(fc.array(call, { minLength: 1, maxLength: 3 }), { minLength: 2, maxLength: 5 })
}

const isProgress = (line: string): boolean => line.startsWith('call ') || line.startsWith('done ')

function setUp(plans: Plan[]): string {
  const dir = tempDir('raiment-crash-')
  writeFileSync(join(dir, 'plans.json'), JSON.stringify(plans))
  return dir
}

function finished(r: ChildRun): boolean {
  return r.lines.includes('all-done')
}

/** No thread made a call after seeing an outcome that was not yet committed. */
function expectDurableFirst(r: ChildRun): void {
  const bad = r.lines.filter((l) => l.startsWith('not-durable '))
  if (bad.length > 0) throw new Error(`a thread acted on outcomes that were not durable yet: ${bad.join(' | ')}`)
}

/** A run the test did not kill must end with every thread done and exit 0. */
function expectClean(r: ChildRun): void {
  expectDurableFirst(r)
  if (!(r.code === 0 && finished(r))) throw new Error(`the weave child did not finish cleanly: ${describeRun(r)}`)
}

/** Restarts the child (no crash) until every thread has ended. */
async function finish(dir: string): Promise<ChildRun> {
  const r = await runChild(CHILD, [dir])
  expectClean(r)
  expect(r.lines.some((l) => /^started resumed=\d+$/.test(l)), describeRun(r)).toBe(true)
  return r
}

interface Effects {
  attempts: Map<string, number>
  applied: Map<string, { counter: string; amount: number }>
  counters: Record<string, number>
}

function readEffects(dir: string): Effects {
  const db = new Database(join(dir, 'effects.db'), { readonly: true })
  try {
    const attempts = new Map<string, number>()
    for (const r of db.prepare('SELECT call_id, count(*) AS n FROM attempts GROUP BY call_id').all() as Array<{ call_id: string; n: number }>) {
      attempts.set(r.call_id, r.n)
    }
    const applied = new Map<string, { counter: string; amount: number }>()
    for (const r of db.prepare('SELECT call_id, counter, amount FROM applied').all() as Array<{ call_id: string; counter: string; amount: number }>) {
      applied.set(r.call_id, { counter: r.counter, amount: r.amount })
    }
    const counters: Record<string, number> = {}
    for (const r of db.prepare('SELECT name, value FROM counters').all() as Array<{ name: string; value: number }>) counters[r.name] = r.value
    return { attempts, applied, counters }
  } finally {
    db.close()
  }
}

/** Call ids of the outcomes recorded in the journal, by library method. */
function recordedCalls(dir: string): { incr: string[]; all: string[]; journal: Journal } {
  const journal = new Journal(join(dir, 'weave.db'), { readonly: true })
  const incr: string[] = []
  const all: string[] = []
  for (const t of journal.threads()) {
    for (const [, key, ord] of journal.entries(t.id)) {
      const id = callIdOfRow(t, key, ord)
      all.push(id)
      if (key.startsWith('fx.incr:')) incr.push(id)
    }
  }
  return { incr, all, journal }
}

/**
 * The end state: every worker done with the result of an uninterrupted run, each call recorded
 * once, each effect applied once per call id, and nothing attempted for a call id the threads
 * did not make. Returns how many calls were attempted more than once.
 */
function verify(dir: string, plans: Plan[]): number {
  const { incr, all, journal } = recordedCalls(dir)
  try {
    const threads = journal.threads()
    expect(threads.map((t) => t.status)).toEqual(plans.map(() => 'done'))
    threads.forEach((t, i) => {
      expect((decodeValue(t.params) as { plan: Plan }).plan).toEqual(plans[i])
      expect(decodeValue(t.outcome!)).toEqual(expectedResult(plans[i]!))
      expect(journal.entries(t.id)).toHaveLength(plans[i]!.flat().length)
    })
  } finally {
    journal.close()
  }
  expect(new Set(all).size).toBe(all.length)
  const fx = readEffects(dir)
  expect([...fx.applied.keys()].sort()).toEqual([...incr].sort())
  expect(fx.counters).toEqual(expectedCounters(plans))
  const made = new Set(all)
  for (const id of all) expect(fx.attempts.get(id) ?? 0, `attempts of ${id}`).toBeGreaterThanOrEqual(1)
  for (const id of fx.attempts.keys()) expect(made.has(id), `an effect was attempted for ${id}, a call the threads did not make`).toBe(true)
  return [...fx.attempts.values()].filter((n) => n > 1).length
}

describe('crash and resume', () => {
  it(`gives every thread the result of an uninterrupted run, each effect once, after SIGKILLs at random instants (${RUNS} runs, seed ${seed})`, async () => {
    let kills = 0
    let retried = 0
    await fc.assert(
      fc.asyncProperty(
        fc.array(planArb(), { minLength: 2, maxLength: 4 }),
        fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 2 }),
        async (plans, killPoints) => {
          const dir = setUp(plans)
          let done = false
          for (const n of killPoints) {
            let progress = 0
            const r = await runChild(CHILD, [dir], { killWhen: (line) => isProgress(line) && ++progress >= n })
            expectDurableFirst(r)
            if (r.killed) {
              if (r.signal !== 'SIGKILL' && !finished(r)) throw new Error(`the weave child was not killed: ${describeRun(r)}`)
              kills++
            } else expectClean(r)
            // Killed just after its last line, it may have finished all the same.
            if (finished(r)) {
              done = true
              break
            }
          }
          if (!done) await finish(dir)
          retried += verify(dir, plans)
        },
      ),
      { numRuns: RUNS, seed },
    )
    console.log(`crash: ${kills} kills, ${retried} calls attempted again after a crash and applied once`)
    expect(kills).toBeGreaterThan(0)
  }, 60_000 + RUNS * 12_000)

  /** Three workers whose calls all add to counters, so the call at a crash point has an effect. */
  const plans: Plan[] = [0, 1, 2].map((t) => [
    [{ kind: 'incr', counter: 'c1', amount: 1, delay: 1 }],
    [
      { kind: 'incr', counter: 'c2', amount: 2, delay: 2 },
      { kind: 'incr', counter: 'c2', amount: 2, delay: 0 },
      { kind: 'incr', counter: 'c1', amount: t + 1, delay: 1 },
    ],
    [{ kind: 'incr', counter: 'c1', amount: 3, delay: 0 }],
  ])

  it('crash point after-call: the call ran, its outcome was not recorded; on restart it runs again, its effect applied once', async () => {
    const dir = setUp(plans)
    const crashed = await runChild(CHILD, [dir], { env: { RAIMENT_CRASH_AT: 'after-call:5' } })
    expectDurableFirst(crashed)
    expect(crashed.signal, describeRun(crashed)).toBe('SIGKILL')
    expect(finished(crashed)).toBe(false)
    // The fifth call to complete is the one whose answer was the last line before the crash.
    const done = crashed.lines.filter((l) => l.startsWith('done '))
    expect(done).toHaveLength(5)
    const lost = done[4]!.slice('done '.length)
    const before = recordedCalls(dir)
    before.journal.close()
    expect(before.all).not.toContain(lost)
    expect(before.all.length).toBeLessThanOrEqual(4)

    const r = await finish(dir)
    expect(r.lines).toContain(`call ${lost}`)
    verify(dir, plans)
    const fx = readEffects(dir)
    expect(fx.attempts.get(lost)).toBe(2)
    expect(fx.applied.has(lost)).toBe(true)
    // What was durable before the crash was replayed, not run again.
    for (const id of before.all) expect(fx.attempts.get(id), id).toBe(1)
  })

  it('crash point after-commit: the outcome was durable, the thread had not seen it; on restart it is replayed, not run again', async () => {
    const dir = setUp(plans)
    const crashed = await runChild(CHILD, [dir], { env: { RAIMENT_CRASH_AT: 'after-commit:5' } })
    expectDurableFirst(crashed)
    expect(crashed.signal, describeRun(crashed)).toBe('SIGKILL')
    expect(finished(crashed)).toBe(false)
    const before = recordedCalls(dir)
    before.journal.close()
    expect(before.all.length).toBeGreaterThanOrEqual(5)

    await finish(dir)
    verify(dir, plans)
    const fx = readEffects(dir)
    for (const id of before.all) expect(fx.attempts.get(id), id).toBe(1)
  })

  it.each(['sync', 'batched', 'memory'] as const)('durability %s: a thread acts only on outcomes already committed', async (durability) => {
    const dir = setUp(plans)
    const lines: string[] = []
    const weave = await Weave.open({
      db: join(dir, 'weave.db'),
      durability,
      threads: { worker },
      libraries: { fx: fxLibrary(join(dir, 'effects.db'), (l) => lines.push(l)) },
      ioLibs: false,
      dumps: false,
    })
    const ids = plans.map((plan) => weave.spawn('worker', { plan }))
    const ends = await Promise.all(ids.map((id) => weave.join(id)))
    await weave.close()
    expect(ends.map((e) => (e.status === 'done' ? e.result : e))).toEqual(plans.map(expectedResult))
    expect(lines.filter((l) => l.startsWith('call '))).toHaveLength(plans.flat(2).length)
    expect(lines.filter((l) => l.startsWith('not-durable '))).toEqual([])
  })
})

/**
 * continue-as-new and SIGKILL, with real processes: a weave child (test/support/continue-child.ts)
 * runs an actor that continues as new every EVERY messages while a feeder streams COUNT messages
 * to it. The test kills the child at instants fast-check chooses (after the n-th progress line,
 * or at the named crash points of the switch: queued and not committed, committed and the new run
 * not started), restarts it until both threads have ended, and checks that nothing was lost or
 * received twice (the actor got 0 … COUNT-1 in order), that each run's call with the same key and
 * ordinal had its own call id and its effect once, that a monitor of the actor got one exit
 * message, of its real end, and that the record is the last run's.
 *
 * Reproduce a failure with FC_SEED=<seed>.
 */
import fc from 'fast-check'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { decodeValue } from '../src/encoding.js'
import { Journal } from '../src/journal.js'
import { describeRun, runChild, supportScript, type ChildRun } from './support/child.js'
import { ticks } from './support/continue-plan.js'
import { tempDir } from './support/tmp.js'

const CHILD = supportScript('continue-child.ts')
const PENDING_CHILD = supportScript('continue-pending-child.ts')
const seed = process.env['FC_SEED'] !== undefined ? Number(process.env['FC_SEED']) : Date.now() % 2 ** 31
const RUNS = Number(process.env['CRASH_RUNS'] ?? 8)
const COUNT = 20
const EVERY = 3
const CONTINUES = Math.floor(COUNT / EVERY)
console.log(`continue-crash: fast-check seed ${seed}, ${RUNS} runs (FC_SEED=${seed} to reproduce)`)

type Kill = { after: number } | { point: 'continue-queued' | 'continue-committed'; at: number }

const killArb: fc.Arbitrary<Kill> = fc.oneof(
  fc.record({ after: fc.integer({ min: 1, max: COUNT + CONTINUES }) }),
  fc.record({ point: fc.constantFrom('continue-queued' as const, 'continue-committed' as const), at: fc.integer({ min: 1, max: CONTINUES }) }),
)

const finished = (r: ChildRun): boolean => r.lines.includes('all-done')
const isProgress = (line: string): boolean => line.startsWith('seen ') || line.startsWith('tick ')

async function runOnce(dir: string, kill: Kill): Promise<ChildRun> {
  let progress = 0
  const args = [dir, String(COUNT), String(EVERY)]
  const r =
    'after' in kill
      ? await runChild(CHILD, args, { killWhen: (line) => isProgress(line) && ++progress >= kill.after })
      : await runChild(CHILD, args, { env: { RAIMENT_CRASH_AT: `${kill.point}:${kill.at}` } })
  if (r.lines.some((l) => l.startsWith('error '))) throw new Error(`the weave reported an error: ${describeRun(r)}`)
  if (!finished(r) && r.signal !== 'SIGKILL') throw new Error(`the weave child neither finished nor was killed: ${describeRun(r)}`)
  return r
}

/** Both threads done with every message once and in order; one effect per run; the last run's record. */
function verify(dir: string): void {
  const journal = new Journal(join(dir, 'weave.db'), { readonly: true })
  let actorId: string
  try {
    const [a, f, m] = journal.threads()
    actorId = a!.id
    const result = { got: Array.from({ length: COUNT }, (_, i) => i), runs: CONTINUES }
    expect([a!.status, f!.status, m!.status]).toEqual(['done', 'done', 'done'])
    expect(decodeValue(a!.outcome!)).toEqual(result)
    expect(decodeValue(f!.outcome!)).toEqual(result)
    // The monitor's one exit message is the real end (a second one would be a dead letter below).
    expect(decodeValue(m!.outcome!)).toEqual({ exit: actorId, status: 'done', result })
    expect((a as { continued?: number }).continued).toBe(CONTINUES)
    expect(decodeValue(a!.params)).toMatchObject({ runs: CONTINUES, got: result.got.slice(0, CONTINUES * EVERY) })
    // tick, and per message left after the last continue a take and a seen, and the stop's take.
    expect(journal.entries(a!.id)).toHaveLength(1 + 2 * (COUNT - CONTINUES * EVERY) + 1)
    const db = journal.db
    expect(db.prepare('SELECT count(*) FROM dead_letters').pluck().get()).toBe(0)
    expect(db.prepare('SELECT count(*) FROM inbox').pluck().get()).toBe(0)
  } finally {
    journal.close()
  }
  const applied = ticks(join(dir, 'effects.db'))
  // Each run's call ids begin with the thread's id and scope (`@…`), and from the second with its count.
  const scopes = applied.map((id) => id.slice(0, id.indexOf(':')).replace(/@[0-9a-z]+/, '')).sort()
  expect(new Set(applied.map((id) => /@[0-9a-z]+/.exec(id)?.[0])).size).toBe(1)
  expect(scopes).toEqual([actorId, ...Array.from({ length: CONTINUES }, (_, i) => `${actorId}~${i + 1}`)].sort())
}

async function finish(dir: string): Promise<void> {
  for (let i = 0; i < 3; i++) {
    const r = await runChild(CHILD, [dir, String(COUNT), String(EVERY)])
    if (finished(r)) return
    if (r.code !== 0) throw new Error(`the weave child did not finish cleanly: ${describeRun(r)}`)
  }
  throw new Error('the weave child did not finish in three runs')
}

describe('continue-as-new and SIGKILL', () => {
  it(`loses and duplicates nothing when killed anywhere, the middle of a switch included (${RUNS} runs, seed ${seed})`, async () => {
    let kills = 0
    await fc.assert(
      fc.asyncProperty(fc.array(killArb, { minLength: 1, maxLength: 2 }), async (plan) => {
        const dir = tempDir('raiment-continue-crash-')
        let done = false
        for (const kill of plan) {
          const r = await runOnce(dir, kill)
          if (r.signal === 'SIGKILL') kills++
          if (finished(r)) {
            done = true
            break
          }
        }
        if (!done) await finish(dir)
        verify(dir)
      }),
      { numRuns: RUNS, seed },
    )
    console.log(`continue-crash: ${kills} kills`)
    expect(kills).toBeGreaterThan(0)
  }, 60_000 + RUNS * 15_000)

  it('a kill as the switch is queued, with a take recorded that the run had not been handed: on restart the message goes to the new run', async () => {
    const dir = tempDir('raiment-continue-crash-')
    const killed = await runChild(PENDING_CHILD, [dir], { env: { RAIMENT_CRASH_AT: 'continue-queued:1' } })
    expect(killed.signal, describeRun(killed)).toBe('SIGKILL')
    const journal = new Journal(join(dir, 'weave.db'), { readonly: true })
    try {
      // The run that switched is whole: the gate's outcome, then the take of the message.
      expect(journal.entries(journal.threads()[0]!.id).map((e) => e[1])).toEqual(['pendingGate.wait:[]', 'mailbox.take:[{}]'])
    } finally {
      journal.close()
    }
    const r = await runChild(PENDING_CHILD, [dir])
    expect(r.lines, describeRun(r)).toContain('result {"m":1}')
  }, 60_000)

  for (const point of ['continue-queued', 'continue-committed'] as const) {
    it(`a kill at ${point} (the second switch): on restart the thread goes on from the record it had, once`, async () => {
      const dir = tempDir('raiment-continue-crash-')
      const r = await runOnce(dir, { point, at: 2 })
      expect(r.signal, describeRun(r)).toBe('SIGKILL')
      const journal = new Journal(join(dir, 'weave.db'), { readonly: true })
      try {
        const a = journal.threads()[0]!
        // Queued, not committed: the run that switched is whole (continued once); committed: the new params, no record.
        const continued = (a as { continued?: number }).continued
        if (point === 'continue-queued') {
          expect(continued).toBe(1)
          expect(journal.entries(a.id).length).toBeGreaterThan(0)
        } else {
          expect(continued).toBe(2)
          expect(journal.entries(a.id)).toHaveLength(0)
          expect(decodeValue(a.params)).toMatchObject({ runs: 2, got: [0, 1, 2, 3, 4, 5] })
        }
      } finally {
        journal.close()
      }
      await finish(dir)
      verify(dir)
    }, 60_000)
  }
})


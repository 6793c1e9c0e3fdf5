/**
 * Schedules under a controlled clock (TestClock): over random cron expressions, time zones,
 * policies and runs of a weave that stop at random instants and start again after random
 * downtimes, the threads spawned are exactly the times croner gives for the windows the policy
 * covers, one thread each:
 * - `all`: every time from the schedule's creation to the end;
 * - `skip`: the times that came while a weave ran;
 * - `once`: those, and the latest time of each downtime.
 * A run may also end with the schedule's `upto` moved back (as if its last moves were lost while
 * their spawns were not): the times fired again are the same threads (their ids are made from the
 * time), so the sets do not change. The crash of a real process is test/schedules-crash.test.ts.
 *
 * Reproduce a failure with FC_SEED=<seed>.
 */
import { fc, test } from '@fast-check/vitest'
import Database from 'better-sqlite3'
import { Cron } from 'croner'
import { join } from 'node:path'
import { expect } from 'vitest'
import { thread, Weave, type MissedPolicy } from 'raiment'
import { TestClock } from './support/schedule-clock.js'
import { tempDir } from './support/tmp.js'

const seed = process.env['FC_SEED'] !== undefined ? Number(process.env['FC_SEED']) : Date.now() % 2 ** 31
console.log(`schedules: fast-check seed ${seed} (FC_SEED=${seed} to reproduce)`)

const tick = thread({ uses: [], async does(p: { scheduledAt: string }) { return p.scheduledAt } })

const MIN = 60_000
const HOUR = 60 * MIN

const k = (lo: number, hi: number): fc.Arbitrary<number> => fc.integer({ min: lo, max: hi })
const minute = fc.oneof(
  fc.constant('*'),
  k(1, 30).map((n) => `*/${n}`),
  k(0, 59).map(String),
  fc.tuple(k(0, 58), k(1, 59)).map(([a, b]) => `${Math.min(a, b)}-${Math.max(a, b)}`),
  fc.tuple(k(0, 59), k(0, 59)).map(([a, b]) => `${a},${b}`),
  fc.tuple(k(0, 30), k(1, 15)).map(([a, s]) => `${a}-59/${s}`),
)
const hour = fc.oneof(fc.constant('*'), k(1, 6).map((n) => `*/${n}`), fc.tuple(k(0, 22), k(1, 23)).map(([a, b]) => `${Math.min(a, b)}-${Math.max(a, b)}`))
const dow = fc.constantFrom('*', '1-5', '0,6')
const fiveFields = fc.tuple(minute, hour, dow).map(([m, h, d]) => `${m} ${h} * * ${d}`)
const withSeconds = fc.tuple(k(10, 59), minute).map(([s, m]) => `*/${s} ${m} * * * *`)
const cron = fc.oneof({ arbitrary: fiveFields, weight: 3 }, { arbitrary: withSeconds, weight: 1 })

const run = fc.record({
  /** How long the weave runs, and the jumps its clock makes meanwhile (fractions of that). */
  up: k(0, 3 * HOUR),
  jumps: fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 6 }),
  /** How long no weave runs after it. */
  down: k(0, 4 * HOUR),
  /** Whether `upto` is moved back to the creation while no weave runs. */
  rewind: fc.boolean(),
})

/** croner's times of `expr` in (after, upto], from a Cron of its own. */
function times(expr: string, tz: string, after: number, upto: number): number[] {
  const c = new Cron(expr, { paused: true, timezone: tz })
  const out: number[] = []
  for (let d = c.nextRun(new Date(after)); d !== null && d.getTime() <= upto; d = c.nextRun(d)) out.push(d.getTime())
  return out
}

test.prop(
  [
    cron,
    fc.constantFrom('UTC', 'Europe/Paris', 'America/New_York', 'Asia/Kolkata'),
    fc.constantFrom<MissedPolicy>('skip', 'once', 'all'),
    k(Date.parse('2026-01-01T00:00:00Z'), Date.parse('2027-01-01T00:00:00Z')),
    fc.array(run, { minLength: 1, maxLength: 4 }),
  ],
  { seed, numRuns: 25 },
)('the threads spawned are the times of the cron expression its policy covers, one each', async (expr, tz, missed, t0, runs) => {
  const db = join(tempDir('raiment-sched-prop-'), 'w.db')
  const clock = new TestClock(t0)
  const open = (): Promise<Weave> => Weave.open({ db, durability: 'memory', threads: { tick }, ioLibs: false, dumps: false, scheduleClock: clock })
  const expected = new Set<number>()
  let start = t0
  let end = t0
  for (const [i, r] of runs.entries()) {
    const weave = await open()
    if (i === 0) await weave.schedules.add('s', { cron: expr, type: 'tick', missed, tz })
    for (const f of [...r.jumps].sort()) await clock.advance(start + Math.floor(f * r.up), weave)
    end = start + r.up
    await clock.advance(end, weave)
    await weave.close()
    // The times of this run, and what the policy makes of those missed before it (since the
    // end of the run before).
    const gap = i > 0 ? times(expr, tz, start - runs[i - 1]!.down, start) : []
    if (missed === 'all') for (const t of gap) expected.add(t)
    if (missed === 'once' && gap.length > 0) expected.add(gap[gap.length - 1]!)
    for (const t of times(expr, tz, start, end)) expected.add(t)
    if (r.rewind) {
      const raw = new Database(db)
      raw.prepare('UPDATE schedules SET upto = ?').run(t0)
      raw.close()
    }
    start = end + r.down
    clock.t = start
  }
  const raw = new Database(db, { readonly: true })
  const rows = raw.prepare('SELECT id, params FROM threads ORDER BY id').all() as Array<{ id: string; params: string }>
  raw.close()
  const fired = rows.map((r) => Date.parse((JSON.parse(r.params.slice(1)) as { scheduledAt: string }).scheduledAt))
  expect(new Set(fired).size, 'one thread per time').toBe(fired.length)
  expect(fired.sort((a, b) => a - b)).toEqual([...expected].sort((a, b) => a - b))
  for (const r of rows) {
    const at = new Date(Date.parse((JSON.parse(r.params.slice(1)) as { scheduledAt: string }).scheduledAt)).toISOString().replace(/[-:]|\.000/g, '')
    expect(r.id).toMatch(new RegExp(`/s@${at}$`))
  }
  if (missed === 'all') expect(fired).toEqual(times(expr, tz, t0, end))
})

/**
 * A weave running an every-second schedule (missed times: all) is SIGKILLed at random moments
 * (after the n-th thread it spawned has started, n drawn by fast-check) and started again; at the
 * end, the journal holds one thread for each second from the schedule's creation to the last
 * run's end (croner's times), with the id made from that second: none lost, none twice, however
 * the kills fell between a spawn and its commit.
 */
import { fc } from '@fast-check/vitest'
import Database from 'better-sqlite3'
import { Cron } from 'croner'
import { join } from 'node:path'
import { expect, it } from 'vitest'
import { describeRun, runChild, supportScript } from './support/child.js'
import { tempDir } from './support/tmp.js'

const CHILD = supportScript('schedule-child.ts')
const seed = process.env['FC_SEED'] !== undefined ? Number(process.env['FC_SEED']) : Date.now() % 2 ** 31

it('fires every second once across SIGKILLs and restarts', async () => {
  console.log(`schedules-crash: fast-check seed ${seed} (FC_SEED=${seed} to reproduce)`)
  const [kills] = fc.sample(fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 2, maxLength: 2 }), { seed, numRuns: 1 })
  const dir = tempDir('raiment-sched-crash-')
  for (const n of kills!) {
    let started = 0
    const run = await runChild(CHILD, [dir], { killWhen: (line) => line.startsWith('started ') && ++started >= n })
    expect(run.signal, describeRun(run)).toBe('SIGKILL')
  }
  const until = Math.ceil((Date.now() + 1500) / 1000) * 1000
  const last = await runChild(CHILD, [dir, String(until)])
  expect(last.code, describeRun(last)).toBe(0)
  expect(last.lines).toContain('end')

  const db = new Database(join(dir, 'w.db'), { readonly: true })
  const { created, last_fired: lastFired } = db.prepare('SELECT created, last_fired FROM schedules').get() as { created: number; last_fired: number }
  const rows = db.prepare('SELECT id, params FROM threads').all() as Array<{ id: string; params: string }>
  db.close()
  const expected: number[] = []
  const cron = new Cron('* * * * * *', { paused: true, timezone: 'UTC' })
  for (let d = cron.nextRun(new Date(created)); d !== null && d.getTime() <= until; d = cron.nextRun(d)) expected.push(d.getTime())
  const fired = rows.map((r) => Date.parse((JSON.parse(r.params.slice(1)) as { scheduledAt: string }).scheduledAt)).sort((a, b) => a - b)
  expect(fired).toEqual(expected)
  expect(lastFired).toBe(until)
  for (const r of rows) {
    const at = (JSON.parse(r.params.slice(1)) as { scheduledAt: string }).scheduledAt.replace(/[-:]|\.000/g, '')
    expect(r.id.endsWith(`/every@${at}`), r.id).toBe(true)
  }
})

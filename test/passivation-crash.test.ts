/**
 * Passivated threads and a SIGKILL (real child process, durability 'sync'): the weave is killed
 * once every thread is passivated and that is durable; on restart nothing is resumed, `raiment
 * ps` shows them passivated meanwhile, no sleeper runs before its recorded deadline, each wakes
 * once and does its effect once, and each waiter wakes on its message.
 */
import { join } from 'node:path'
import { Journals, threadPage } from '../src/ui/data.js'
import { expect, it } from 'vitest'
import { Journal } from '../src/journal.js'
import { describeRun, runChild, supportScript } from './support/child.js'
import { raiment } from './support/raiment-process.js'
import { tempDir } from './support/tmp.js'

const CHILD = supportScript('passivate-child.ts')
const SLEEPERS = 4
const WAITERS = 3

const fields = (lines: readonly string[], word: string): string[][] => lines.filter((l) => l.startsWith(word + ' ')).map((l) => l.split(' ').slice(1))

it('passivated threads survive a SIGKILL: nothing wakes before it is due, each timer fires once, ps shows them passivated', async () => {
  const dir = tempDir('raiment-passivate-crash-')
  const asleep = new Set<string>()
  const first = await runChild(CHILD, [dir], {
    killWhen: (line) => {
      if (line.startsWith('asleep ')) asleep.add(line.split(' ')[1]!)
      return asleep.size === SLEEPERS + WAITERS
    },
  })
  expect(first.signal, describeRun(first)).toBe('SIGKILL')
  expect(fields(first.lines, 'fired')).toEqual([])
  const deadlines = new Map(fields(first.lines, 'sleep-until').map(([id, at]) => [id!, Number(at)]))
  expect(deadlines.size).toBe(SLEEPERS)

  const ps = await raiment(dir, 'ps', '--db', join(dir, 'weave.db'))
  expect(ps.code, ps.stderr).toBe(0)
  const statuses = ps.stdout.split('\n').slice(1).filter(Boolean).map((l) => l.split(/\s+/)[2])
  expect(statuses).toEqual(Array(SLEEPERS + WAITERS).fill('passivated'))
  const only = await raiment(dir, 'ps', '--status', 'passivated', '--json', '--db', join(dir, 'weave.db'))
  const listed = JSON.parse(only.stdout) as Array<{ status: string; passivated?: { mailbox: boolean; due: string | null } }>
  expect(listed.length).toBe(SLEEPERS + WAITERS)
  expect(listed.filter((t) => t.passivated?.mailbox === true).length).toBe(WAITERS)
  expect(listed.filter((t) => t.passivated?.due !== null).length).toBe(SLEEPERS)
  // The UI's threads table says the same (read-only, as raiment ui reads it).
  const page = threadPage(new Journals([join(dir, 'weave.db')]), {}, undefined, 100)
  expect(page.rows.map((r) => r.passivated === true)).toEqual(Array(SLEEPERS + WAITERS).fill(true))
  const show = await raiment(dir, 'show', [...deadlines.keys()][0]!, '--db', join(dir, 'weave.db'))
  expect(show.stdout).toMatch(/passivated \(waiting for \d{4}-.*Z, since/)

  const restart = Date.now()
  const second = await runChild(CHILD, [dir])
  expect(second.code, describeRun(second)).toBe(0)
  // Those whose deadline passed while no weave ran wake at the open; the others stay passivated.
  const dueBy = (t: number): number => [...deadlines.values()].filter((at) => at <= t).length
  const [running, now] = fields(second.lines, 'opened')[0]!.map((f) => Number(f.split('=')[1]))
  const resumed = Number(fields(second.lines, 'started')[0]![0]!.split('=')[1])
  expect(resumed).toBe(running)
  expect(resumed).toBeGreaterThanOrEqual(dueBy(restart))
  expect(resumed).toBeLessThanOrEqual(dueBy(now!))
  expect(second.lines).toContain('all-done')
  for (const [id, at] of deadlines) {
    const starts = fields(second.lines, 'start').filter(([t]) => t === id)
    // One whose deadline passed while no weave ran is resumed inside Weave.open, before the
    // child listens for 'thread-start' (on a loaded machine the first run can outlast a deadline).
    expect(starts.length, `${id} started ${starts.length} times`).toBe(at <= now! ? Math.min(starts.length, 1) : 1)
    // Woken by its timer: not before the deadline it recorded before the kill.
    if (starts.length === 1) expect(Number(starts[0]![1])).toBeGreaterThanOrEqual(at)
    const fired = fields(second.lines, 'fired').filter(([t]) => t === id)
    expect(fired.length).toBe(1)
    expect(Number(fired[0]![2])).toBeGreaterThanOrEqual(at)
  }
  const waiters = fields(second.lines, 'fired').filter(([, what]) => what === 'hello')
  expect(waiters.length).toBe(WAITERS)
  expect(fields(second.lines, 'end').map(([, s]) => s)).toEqual(Array(SLEEPERS + WAITERS).fill('done'))

  // In the record: each thread's effect once.
  const journal = new Journal(join(dir, 'weave.db'), { own: false })
  try {
    const fx = journal.db.prepare("SELECT thread, count(*) AS n FROM journal WHERE key LIKE 'mark.fired:%' GROUP BY thread").all() as Array<{ n: number }>
    expect(fx.length).toBe(SLEEPERS + WAITERS)
    expect(fx.every((r) => r.n === 1)).toBe(true)
    expect(journal.db.prepare('SELECT count(*) AS n FROM passivated').get()).toEqual({ n: 0 })
  } finally {
    journal.close()
  }
}, 60_000)

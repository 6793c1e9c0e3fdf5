/**
 * clock.sleep is durable: a thread killed (SIGKILL, real child process) while it sleeps resumes
 * with the deadline it recorded and waits only what is left of it.
 */
import { join } from 'node:path'
import { expect, it } from 'vitest'
import { Journal } from '../src/journal.js'
import { describeRun, runChild, supportScript } from './support/child.js'
import { tempDir } from './support/tmp.js'

const CHILD = supportScript('sleep-child.ts')
const SLEEP_MS = 1500

function sleepLine(lines: readonly string[]): { deadline: number; at: number } {
  const line = lines.find((l) => l.startsWith('sleep-until '))
  if (!line) throw new Error(`no sleep-until line in ${lines.join(' | ')}`)
  const [, deadline, at] = line.split(' ')
  return { deadline: Number(deadline), at: Number(at) }
}

it('a thread killed while it sleeps resumes and waits only the remainder of its sleep', async () => {
  const dir = tempDir('raiment-sleep-')
  const first = await runChild(CHILD, [dir], { killWhen: (line) => line.startsWith('sleep-until ') })
  expect(first.signal, describeRun(first)).toBe('SIGKILL')
  const slept = sleepLine(first.lines)
  expect(first.lines.some((l) => l.startsWith('end '))).toBe(false)

  const second = await runChild(CHILD, [dir])
  expect(second.code, describeRun(second)).toBe(0)
  expect(second.lines).toContain('started resumed=1')
  const resumed = sleepLine(second.lines)
  // The deadline is the recorded one, not a new one from the restart.
  expect(resumed.deadline).toBe(slept.deadline)
  expect(resumed.at).toBeGreaterThan(slept.at)
  const end = second.lines.find((l) => l.startsWith('end '))!
  expect(end).toMatch(/^end done /)
  const { t0, t1 } = JSON.parse(end.slice('end done '.length)) as { t0: number; t1: number }
  expect(slept.deadline - t0).toBeGreaterThanOrEqual(SLEEP_MS)
  expect(slept.deadline - t0).toBeLessThan(SLEEP_MS + 100)
  // It slept at least the full time, measured from the recorded start...
  expect(t1 - t0).toBeGreaterThanOrEqual(SLEEP_MS)
  expect(t1).toBeGreaterThanOrEqual(slept.deadline)
  // ...and not much more: it woke at the recorded deadline (or at once, had the restart taken
  // longer than the sleep), where sleeping the full time again would end SLEEP_MS after the
  // restart.
  expect(t1 - Math.max(slept.deadline, resumed.at)).toBeLessThan(500)
  expect(t1 - t0).toBeLessThan(SLEEP_MS + Math.max(1200, resumed.at - slept.at + 500))

  // The journal holds the clock readings and one sleepUntil with the first deadline.
  const journal = new Journal(join(dir, 'weave.db'), { readonly: true })
  try {
    const [t] = journal.threads()
    const keys = journal.entries(t!.id).map(([, key]) => key)
    expect(keys).toEqual(['clock.now:[]', 'clock.now:[]', `clock.sleepUntil:[${slept.deadline}]`, 'clock.now:[]'])
  } finally {
    journal.close()
  }
})

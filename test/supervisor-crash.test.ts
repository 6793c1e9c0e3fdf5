/**
 * A supervisor's back-off is durable: a weave killed (SIGKILL, real child process) while a
 * supervisor waits to restart a child resumes the wait with the deadline it recorded, waits only
 * what is left of it, and restarts the child once.
 */
import { join } from 'node:path'
import { expect, it } from 'vitest'
import { Journal } from '../src/journal.js'
import { describeRun, runChild, supportScript } from './support/child.js'
import { tempDir } from './support/tmp.js'

const CHILD = supportScript('supervisor-child.ts')
const BACKOFF_MS = 1500

/** The numbers of the first line that starts with `word`. */
function line(lines: readonly string[], word: string): number[] {
  const l = lines.find((x) => x.startsWith(word + ' '))
  if (!l) throw new Error(`no ${word} line in ${lines.join(' | ')}`)
  return l.split(' ').slice(1).map(Number)
}

it('a weave killed during a back-off resumes it at the recorded deadline and restarts the child once', async () => {
  const dir = tempDir('raiment-supervisor-')
  const first = await runChild(CHILD, [dir], { killWhen: (l) => l.startsWith('backoff-until ') })
  expect(first.signal, describeRun(first)).toBe('SIGKILL')
  const [started1, at1] = line(first.lines, 'child-start') as [number, number]
  expect(started1).toBe(1)
  const [deadline, waitedAt] = line(first.lines, 'backoff-until') as [number, number]
  // The wait is the back-off, from when the child failed.
  expect(deadline - at1).toBeGreaterThanOrEqual(BACKOFF_MS)
  expect(deadline - waitedAt).toBeLessThanOrEqual(BACKOFF_MS)

  const second = await runChild(CHILD, [dir])
  expect(second.code, describeRun(second)).toBe(0)
  expect(second.lines).toContain('started resumed=1')
  const [again, resumedAt] = line(second.lines, 'backoff-until') as [number, number]
  // The same deadline, not a new back-off from the restart.
  expect(again).toBe(deadline)
  const [n, at2] = line(second.lines, 'child-start') as [number, number]
  expect(n).toBe(2)
  expect(at2).toBeGreaterThanOrEqual(deadline)
  expect(at2 - Math.max(deadline, resumedAt)).toBeLessThan(700)
  expect(second.lines.find((l) => l.startsWith('end '))).toBe('end done {"restarted":1}')

  const journal = new Journal(join(dir, 'weave.db'), { readonly: true })
  try {
    expect(journal.threads({ type: 'once' }).map((t) => t.status)).toEqual(['failed', 'done'])
  } finally {
    journal.close()
  }
}, 60_000)

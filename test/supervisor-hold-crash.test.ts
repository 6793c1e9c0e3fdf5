/**
 * A supervisor restart loses no message across a crash: a weave killed (SIGKILL, real child
 * process) during the back-off, with a failed worker's backlog and messages sent to its name
 * meanwhile held, resumes, restarts the worker, and the worker receives every one of them, once,
 * in order; none is a dead letter.
 */
import { expect, it } from 'vitest'
import { describeRun, runChild, supportScript } from './support/child.js'
import { tempDir } from './support/tmp.js'

const CHILD = supportScript('supervisor-hold-child.ts')

it('a weave killed during the back-off hands the held messages to the restarted worker once, in order', async () => {
  const dir = tempDir('raiment-supervisor-hold-')
  const first = await runChild(CHILD, [dir], { killWhen: (l) => l.startsWith('sent ') })
  expect(first.signal, describeRun(first)).toBe('SIGKILL')
  expect(first.lines.filter((l) => l.startsWith('not-delivered'))).toEqual([])
  const second = await runChild(CHILD, [dir])
  expect(second.code, describeRun(second)).toBe(0)
  expect(second.lines).toContain('started resumed=1')
  const got = [...Array(10).keys()].map((i) => ({ i }))
  expect(second.lines.find((l) => l.startsWith('end '))).toBe(`end done dead=0 got=${JSON.stringify(got)}`)
}, 60_000)

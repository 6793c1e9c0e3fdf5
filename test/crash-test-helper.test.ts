/**
 * crashTest() of raiment/testing, on a tiny project in a temp dir (threads/ and io-libs/, as a
 * user's): each run is `raiment spawn --wait` in a real child process, SIGKILLed at a crash point
 * and resumed by a new one. A well-behaved saga (its library dedupes by call id) ends the same
 * after every crash; a library that does its effect again when a call is made again, and a thread
 * that reads Math.random() itself, are caught as mismatches, precisely where they go wrong.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { assertCrashSafe, crashTest, CrashTestFailed } from 'raiment/testing'
import { tempDir } from './support/tmp.js'

/**
 * `tally.next(dedupe)`: how many times it was asked in this run (a count kept in the run's own
 * directory, RAIMENT_CRASH_TEST_DIR, the same for the killed process and its resume). With
 * `dedupe`, a call made again with the same call id answers what it answered first, as a library
 * that uses the call id as an idempotency key does; without, it counts again.
 */
const TALLY = `import { callContext } from 'raiment'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

export default {
  async next(dedupe: boolean) {
    const { callId } = callContext()
    const dir = process.env.RAIMENT_CRASH_TEST_DIR
    if (dir === undefined) throw new Error('RAIMENT_CRASH_TEST_DIR is not set')
    const file = join(dir, 'tally.json')
    const s = existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : { n: 0, answered: {} }
    if (dedupe && callId in s.answered) return s.answered[callId]
    s.n++
    s.answered[callId] = s.n
    writeFileSync(file, JSON.stringify(s))
    return s.n
  },
}
`

const THREADS: Record<string, string> = {
  // Two steps through a library that dedupes, and a time read through the weft between them.
  'saga.ts': `import { thread } from 'raiment'
export default thread({
  uses: ['tally', 'clock'],
  async does(p: { order: number }) {
    const reserved = await this.tally.next(true)
    const at = await this.clock.now()
    const charged = await this.tally.next(true)
    return { order: p.order, reserved, charged, at }
  },
})
`,
  // The same steps through the library, which counts a call made again as a new one.
  'counter.ts': `import { thread } from 'raiment'
export default thread({
  uses: ['tally'],
  async does() {
    return [await this.tally.next(false), await this.tally.next(false)]
  },
})
`,
  // Reads a random number itself, not through the weft (the lint rules of threads/ flag it).
  'dice.ts': `import { thread } from 'raiment'
export default thread({
  uses: ['clock'],
  async does() {
    await this.clock.now()
    const roll = Math.random()
    await this.clock.now()
    return roll
  },
})
`,
}

function project(): { threads: string; ioLibs: string } {
  const dir = tempDir('raiment-crash-test-helper-')
  mkdirSync(join(dir, 'threads'))
  mkdirSync(join(dir, 'io-libs'))
  for (const [f, text] of Object.entries(THREADS)) writeFileSync(join(dir, 'threads', f), text)
  writeFileSync(join(dir, 'io-libs', 'tally.ts'), TALLY)
  return { threads: join(dir, 'threads'), ioLibs: join(dir, 'io-libs') }
}

describe('crashTest', () => {
  it('a saga whose library dedupes by call id ends the same after a crash at every after-call and after-commit', async () => {
    const report = await crashTest({ type: 'saga', params: { order: 7 }, ...project(), normalize: ({ at: _at, ...rest }: { at: number }) => rest })
    expect(report.end).toMatchObject({ status: 'done', result: { order: 7, reserved: 1, charged: 2 } })
    // Three live calls, each passing both points once.
    expect(report.passes).toEqual({ 'after-call': 3, 'after-commit': 3 })
    expect(report.crashes.map((c) => `${c.point}:${c.k}`)).toEqual(['after-call:1', 'after-call:2', 'after-call:3', 'after-commit:1', 'after-commit:2', 'after-commit:3'])
    expect(report.processes).toBe(13)
    for (const c of report.crashes) {
      expect(c.crashed, `${c.point}:${c.k}`).toBe(true)
      expect(c.end, `${c.point}:${c.k}`).toMatchObject({ status: 'done', result: { order: 7, reserved: 1, charged: 2 } })
      expect(c.same).toBe(true)
    }
    // Killed after the k-th call answered and before its outcome was recorded: that call is made
    // again on resume, with the same call id. Killed after the commit: nothing is made again.
    expect(report.crashes.map((c) => c.repeated.map((r) => r.call))).toEqual([['tally.next'], ['clock.now'], ['tally.next'], [], [], []])
    expect(report.crashes[0]!.repeated[0]!.callId).toMatch(/\/crash-test@\w+:[\w-]+:0$/)
    expect(report.mismatches).toEqual([])
    expect(report.ok).toBe(true)
    assertCrashSafe(report)
  }, 180_000)

  it('catches a library that does its effect again when a call in flight is made again: a mismatch at each after-call, none after a commit', async () => {
    const report = await crashTest({ type: 'counter', ...project() })
    expect(report.end).toEqual({ status: 'done', result: [1, 2] })
    expect(report.passes).toEqual({ 'after-call': 2, 'after-commit': 2 })
    const ends = Object.fromEntries(report.crashes.map((c) => [`${c.point}:${c.k}`, c.end]))
    expect(ends).toEqual({
      'after-call:1': { status: 'done', result: [2, 3] },
      'after-call:2': { status: 'done', result: [1, 3] },
      'after-commit:1': { status: 'done', result: [1, 2] },
      'after-commit:2': { status: 'done', result: [1, 2] },
    })
    expect(report.ok).toBe(false)
    expect(report.mismatches.map((m) => ({ at: `${m.point}:${m.k}`, expected: m.expected, repeated: m.repeated.map((r) => r.call) }))).toEqual([
      { at: 'after-call:1', expected: { status: 'done', result: [1, 2] }, repeated: ['tally.next'] },
      { at: 'after-call:2', expected: { status: 'done', result: [1, 2] }, repeated: ['tally.next'] },
    ])
    expect(report.mismatches[0]!.reproduce).toMatch(/^mkdir -p crash-test-again\/after-call-1 && export RAIMENT_CRASH_TEST_DIR=crash-test-again\/after-call-1 && RAIMENT_CRASH_AT=after-call:1 npx raiment spawn counter --wait --key crash-test --db crash-test-again\/after-call-1\/crash-test.db .*; npx raiment spawn counter /)
    let thrown: unknown
    try {
      assertCrashSafe(report)
    } catch (e) {
      thrown = e
    }
    expect(thrown).toBeInstanceOf(CrashTestFailed)
    const err = thrown as CrashTestFailed
    expect(err.code).toBe('RAIMENT_CRASH_TEST_FAILED')
    expect(err.mismatches).toHaveLength(2)
    expect(err.message).toContain("thread 'counter' did not end as its run with no crash did after 2 of 4 crashes")
    expect(err.message).toContain('- crashed at after-call:1, resumed: done with [2,3]; with no crash: done with [1,2]; ran again after the crash: tally.next (')
    expect(err.message).toContain('callContext().callId')
  }, 180_000)

  it('catches a thread that reads Math.random() outside the weft, after any crash', async () => {
    const report = await crashTest({ type: 'dice', ...project(), every: 1 })
    expect(report.passes).toEqual({ 'after-call': 2, 'after-commit': 2 })
    expect(report.crashes.map((c) => `${c.point}:${c.k}`)).toEqual(['after-call:1', 'after-commit:1'])
    expect(report.crashes.every((c) => c.crashed && c.end.status === 'done')).toBe(true)
    expect(report.mismatches.map((m) => `${m.point}:${m.k}`)).toEqual(['after-call:1', 'after-commit:1'])
    expect(() => assertCrashSafe(report)).toThrow(CrashTestFailed)
  }, 120_000)

  it('refuses bad options at the door, before running anything', async () => {
    const p = project()
    await expect(crashTest({ type: 'saga', params: { when: new Date(0) }, ...p })).rejects.toThrow(/'params' must be a JSON value/)
    await expect(crashTest({ type: 'saga', ...p, points: ['after-cal' as 'after-call'] })).rejects.toThrow(/'points' must be a non-empty array of crash points among after-call, after-commit/)
    await expect(crashTest({ type: 'saga', ...p, every: 0 })).rejects.toThrow(/'every' must be true/)
    await expect(crashTest({ type: 'saga', ...p, evry: 2 } as never)).rejects.toThrow(/unknown option 'evry'/)
    expect(() => assertCrashSafe({} as never)).toThrow(/expects the report crashTest\(\) resolves to/)
  })

  it('says so when the run with no crash does not end', async () => {
    const err = await crashTest({ type: 'nosuch', ...project() }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(CrashTestFailed)
    expect((err as CrashTestFailed).message).toMatch(/the run of 'nosuch' with no crash did not end \(no journal was made; the command exited \(code 1\): .*RAIMENT_UNKNOWN_THREAD_TYPE/)
  })
})

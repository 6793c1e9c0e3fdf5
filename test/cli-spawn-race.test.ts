/**
 * `raiment spawn --wait` racing a `raiment start` on the same journal (a user trial: 1 run in 6):
 * the spawn found no weave running, a start took the journal before the spawn's own weave opened
 * it, and the spawn failed with RAIMENT_JOURNAL_OWNED, whose message says to use 'raiment spawn'.
 * Made deterministic with the stop point `spawn-checked` (src/crash-points.ts): the spawn stops
 * there, a weave starts, and the spawn continues: it hands the thread to that weave and prints its end.
 */
import { readFileSync } from 'node:fs'
import { describe, expect, test } from 'vitest'
import { raimentProcess, THREADS } from './support/raiment-process.js'
import { tempDir } from './support/tmp.js'

const T = ['--threads', THREADS]
/** Two Node processes, each loading TypeScript through tsx. */
const SLOW = 120_000

/** The state letter of a process in /proc (Linux): T while it is stopped. */
function stateOf(pid: number): string {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3)
}

describe('raiment spawn --wait and a weave that starts meanwhile', () => {
  test('a weave that takes the journal between the spawn\'s check and its open is asked to spawn the thread; its end is printed', { timeout: SLOW }, async () => {
    const dir = tempDir()
    const spawning = raimentProcess(dir, ['spawn', 'greet', '{"name":"ada"}', '--wait', ...T], { env: { RAIMENT_STOP_AT: 'spawn-checked' } })
    await spawning.until((out) => out.includes('raiment: stopped at spawn-checked'))
    const weave = raimentProcess(dir, ['start', ...T])
    try {
      await weave.until((out) => /^weave \S+ on raiment\.db/m.test(out))
      expect(stateOf(spawning.child.pid!)).toBe('T')
      spawning.child.kill('SIGCONT')
      const end = await spawning.ended
      expect(end.stderr).not.toContain('RAIMENT_JOURNAL_OWNED')
      expect(end.code, end.stderr).toBe(0)
      expect(JSON.parse(end.stdout)).toEqual({ greeted: 'ada', greeting: 'hello ada' })
      expect(end.stderr).toMatch(/spawned \S+ on the weave running on raiment\.db/)
    } finally {
      spawning.child.kill('SIGCONT')
      weave.child.kill('SIGTERM')
      await weave.ended
    }
  })
})

/**
 * `--timeout` of the commands that ask a running weave (src/cli/ask-weave.ts): a user trial's
 * `raiment spawn --key` during a resume of 3,000 threads gave up after the fixed 5 s with
 * "Is it stuck?". A weave stopped with SIGSTOP (as busy as one gets) is given 300 ms: the command
 * gives up then, with its code, saying the weave may just be busy and to pass --timeout; unless
 * the weave has stopped meanwhile (SIGKILL), as in another trial: then it says so.
 */
import Database from 'better-sqlite3'
import { join } from 'node:path'
import { describe, expect, test } from 'vitest'
import { raiment, raimentProcess, THREADS } from './support/raiment-process.js'
import { tempDir } from './support/tmp.js'
import { until } from './support/until.js'

const T = ['--threads', THREADS]
/** Several Node processes, each loading TypeScript through tsx. */
const SLOW = 120_000

describe('--timeout', () => {
  test('is how long spawn and send wait for the weave to take the request; the timeout says it may be busy', { timeout: SLOW }, async () => {
    const dir = tempDir()
    const weave = raimentProcess(dir, ['start', ...T])
    try {
      await weave.until((out) => /^weave \S+ on raiment\.db/m.test(out))
      weave.child.kill('SIGSTOP')
      const spawned = await raiment(dir, 'spawn', 'greet', '{"name":"ada"}', '--timeout', '300ms', ...T)
      expect(spawned.code).toBe(1)
      expect(spawned.stderr).toMatch(/^raiment: RAIMENT_SPAWN_TIMEOUT: the weave \(pid \d+\) on raiment\.db did not take the spawn within 300 ms; nothing was spawned\. The weave may just be busy .*pass --timeout to wait longer than 300 ms/m)
      const sent = await raiment(dir, 'send', 'nobody', '1', '--timeout', '0.5s')
      expect(sent.code).toBe(1)
      expect(sent.stderr).toMatch(/^raiment: RAIMENT_SEND_TIMEOUT: .*within 500 ms; it was withdrawn, nothing was sent.*pass --timeout/m)
      const bad = await raiment(dir, 'kill', 'x/1', '--timeout', 'soon')
      expect(bad.stderr).toMatch(/^raiment: RAIMENT_INVALID_ARGUMENT: --timeout must be a duration such as .*got 'soon'/m)
    } finally {
      weave.child.kill('SIGCONT')
      weave.child.kill('SIGTERM')
      await weave.ended
    }
  })

  test('a send whose weave stopped (SIGKILL) before it took the message says the weave stopped, not that it may be busy', { timeout: SLOW }, async () => {
    const dir = tempDir()
    const weave = raimentProcess(dir, ['start', ...T])
    try {
      await weave.until((out) => /^weave \S+ on raiment\.db/m.test(out))
      weave.child.kill('SIGSTOP')
      const sending = raimentProcess(dir, ['send', 'nobody', '1', '--timeout', '3s']).ended
      const db = new Database(join(dir, 'raiment.db'), { readonly: true })
      try {
        await until('the send request', () => db.prepare("SELECT count(*) FROM control WHERE kind = 'send'").pluck().get() === 1)
      } finally {
        db.close()
      }
      weave.child.kill('SIGKILL')
      const sent = await sending
      expect(sent.code).toBe(1)
      expect(sent.stderr).toMatch(/^raiment: RAIMENT_SEND_TIMEOUT: the weave \(pid \d+\) stopped before it took the message \(no weave runs on the journal now\); it was withdrawn, nothing was sent: send it again$/m)
      expect(sent.stderr).not.toMatch(/busy/)
    } finally {
      if (weave.child.exitCode === null && weave.child.signalCode === null) weave.child.kill('SIGKILL')
      await weave.ended
    }
  })
})

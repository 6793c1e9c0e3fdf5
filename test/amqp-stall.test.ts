/**
 * A weave frozen (SIGSTOP) past the broker's heartbeat timeout finds its connection gone once it
 * runs again. It said only amqplib's "Unexpected close", and "restored after 0.1 s", counted from
 * when it noticed (a user trial froze weaves for 12–15 s). It now says the process had stopped
 * running, for how long, and counts the outage from when it stopped. A real weave process.
 */
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { AMQP_URL, brokerTests, brokerUp, CI, freshNamespace } from './support/broker.js'
import { raimentProcess, THREADS } from './support/raiment-process.js'
import { tempDir } from './support/tmp.js'

/** Longer than the broker takes to drop a connection whose heartbeats (2 s) stopped. */
const FREEZE_MS = 9_000

describe.skipIf(!brokerUp && !CI)('a weave frozen past the heartbeat timeout', () => {
  const cleanups = brokerTests()

  it('says that it had stopped running, and for how long the connection was out', async () => {
    const dir = tempDir()
    const ns = freshNamespace()
    const w = raimentProcess(dir, ['start', '--db', join(dir, 'w.db'), '--amqp', AMQP_URL, '--namespace', ns, '--threads', THREADS])
    cleanups.push(async () => {
      if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL')
      await w.ended
    })
    await w.until((out) => out.includes(`joined namespace '${ns}'`))
    w.child.kill('SIGSTOP')
    // The fault itself: a freeze this long.
    await new Promise((r) => setTimeout(r, FREEZE_MS))
    w.child.kill('SIGCONT')
    await w.until((out) => out.includes('broker connection restored after'))
    const out = w.stdout + w.stderr
    expect(out).toMatch(/broker connection lost: .*; this process had stopped running for \d+\.\d s \(frozen, as by SIGSTOP, or its event loop blocked\), so the broker stopped hearing it/)
    expect(out).not.toMatch(/lost: Unexpected close/)
    const restored = Number(/broker connection restored after (\d+\.\d) s/.exec(out)![1])
    expect(restored).toBeGreaterThanOrEqual((FREEZE_MS - 2_000) / 1000)
  }, 60_000)
})

/**
 * A replicated weave frozen (SIGSTOP) until another took it over, and past the broker's heartbeat
 * timeout: let run again, it says its connection was lost and restored, then RAIMENT_FENCED, and
 * exits 3. The restored line must not read as a recovery (a user trial read "taking its lease
 * again" and then saw it fenced): it says a fence may follow. Real processes, on the broker.
 */
import { describe, expect, test } from 'vitest'
import { brokerTests, brokerUp, CI } from './support/broker.js'
import { replicatedPair } from './support/replicated-pair.js'

/** The fault: frozen this long after the takeover, longer than the broker takes to drop a connection whose heartbeats (2 s) stopped. */
const FREEZE_MS = 9_000

describe.skipIf(!brokerUp && !CI)('a weave fenced after its connection was dropped', () => {
  const cleanups = brokerTests()

  test('says the restored connection may still end in a fence, then RAIMENT_FENCED, exit 3', async () => {
    const { x, h } = await replicatedPair(cleanups)
    x.child.kill('SIGSTOP')
    await h.until((out) => out.includes('took over weave x'))
    await new Promise((r) => setTimeout(r, FREEZE_MS))
    x.child.kill('SIGCONT')
    const end = await x.ended
    const out = end.stdout + end.stderr
    expect(end.code, out).toBe(3)
    const lines = end.stderr.split('\n')
    const restored = lines.findIndex((l) => l.includes('broker connection restored after'))
    const fenced = lines.findIndex((l) => l.startsWith('raiment: RAIMENT_FENCED: '))
    expect(restored, out).toBeGreaterThanOrEqual(0)
    expect(fenced, out).toBeGreaterThan(restored)
    expect(lines[restored]).toMatch(/broker connection restored after \d+\.\d s; taking its lease again, unless another weave took this one over meanwhile: then RAIMENT_FENCED follows, and it exits 3$/)
  }, 60_000)
})

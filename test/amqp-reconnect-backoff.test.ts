/**
 * A broker connection lost again soon after each reconnect (a step on it fails and closes it, as a
 * cluster node restarted without the weave's stream replica did): the reconnects back off,
 * doubling, rather than starting over at 100 ms each time, and such a loss is said once, then
 * counted once the connection stays up. Before, the weave reconnected every ~0.25 s, with three
 * lines each time. A real weave process, through a TCP proxy in front of the broker that resets
 * each connection shortly after it is made.
 */
import { join } from 'node:path'
import { describe, expect, test } from 'vitest'
import { brokerTests, brokerUp, CI, freshNamespace, removeNamespace } from './support/broker.js'
import { brokerProxy } from './support/broker-proxy.js'
import { raimentProcess, THREADS, type Running } from './support/raiment-process.js'
import { tempDir } from './support/tmp.js'

/** How soon after it is made the proxy resets each connection (ms): its handshake is done by then. */
const FLAP_MS = 150
/** How long the reconnects are counted (ms): ~16 without back-off, 5 or 6 with it. */
const WATCH_MS = 4_000

describe.skipIf(!brokerUp && !CI)('a connection lost again after each reconnect', () => {
  const cleanups = brokerTests()

  test('reconnects back off, and the loss is said once, then counted', async () => {
    const ns = freshNamespace()
    cleanups.push(() => removeNamespace(ns, ['a']))
    const px = await brokerProxy()
    cleanups.push(() => px.close())
    const dir = tempDir()
    const a: Running = raimentProcess(dir, ['start', '--amqp', px.url, '--namespace', ns, '--heartbeat', '100', '--id', 'a', '--db', join(dir, 'a.db'), '--threads', THREADS])
    cleanups.push(async () => {
      if (a.child.exitCode === null && a.child.signalCode === null) a.child.kill('SIGKILL')
      await a.ended
    })
    await a.until((out) => out.includes(`joined namespace '${ns}'`))
    const out = (): string => a.stdout + a.stderr
    const count = (s: string): number => out().split(s).length - 1
    px.flap(FLAP_MS)
    await a.until((o) => o.includes('broker connection lost'))
    const before = px.accepted
    // An absence (no reconnect storm): counted over a while.
    await new Promise((r) => setTimeout(r, WATCH_MS))
    const made = px.accepted - before
    expect(made, out()).toBeGreaterThanOrEqual(3)
    expect(made, out()).toBeLessThanOrEqual(7)
    // Said: the loss, and the first loss soon after a reconnect; not the others, whatever their reason.
    expect(count('broker connection lost'), out()).toBe(2)
    expect(out()).toMatch(/broker connection lost: .*reconnecting \(0\.\d s after it was restored: backing off, up to 5 s between attempts/)
    expect(count('broker connection restored after'), out()).toBe(2)
    // Up for good: said once, with the count of the losses not said.
    px.restore()
    await a.until((o) => /broker connection restored after [\d.]+ s, up for 5 s now \(lost \d+ more times in between/.test(o))
    expect(count('broker connection lost'), out()).toBe(2)
    expect(a.child.exitCode).toBe(null)
  }, 60_000)
})

/**
 * The service broker's max_message_size, lowered for a few seconds by a test of messages bigger
 * than the broker takes (and always restored). A channel keeps the limit it opened with: one
 * opened while the limit is lowered refuses bigger messages until it closes, whatever the limit
 * is by then. No other test sends 1 MiB, so a short lowering troubles none that runs meanwhile.
 *
 * Tests that lower it run one at a time, whatever file and worker they are in: each holds a lock
 * (a file made atomically, holding its pid: scripts/rabbit-node.ts `takePidLock`) from before it reads the limit to restore until
 * it has restored it. Two lowering at once would read each other's lowered value as the one to
 * restore and could leave the shared broker lowered for good. A lock whose process is gone (a run
 * killed) is taken over.
 */
import { execFile } from 'node:child_process'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { takePidLock } from '../../scripts/rabbit-node.js'

const LOCK = join(tmpdir(), 'raiment-test-broker-limit.lock')

/** Takes the lock (waiting for whoever holds it, up to 2 minutes); returns its release. */
function lock(): Promise<() => void> {
  return takePidLock(LOCK, {
    timeoutMs: 120_000,
    // Another test lowers the limit now: no event reaches this process when it is done.
    pollMs: 50,
    tooLong: (holder) => new Error(`the broker's max_message_size is held lowered by process ${holder} (${LOCK}) for over 2 minutes`),
  })
}

/** `rabbitmqctl eval EXPR`: its output. */
export function rabbitEval(expr: string): Promise<string> {
  return new Promise((resolve, reject) => execFile('rabbitmqctl', ['eval', expr], (err, out, errText) => (err ? reject(new Error(`rabbitmqctl eval: ${errText}`)) : resolve(out.trim()))))
}

/**
 * Lowers the broker's max_message_size to `max` bytes; returns what restores it (once; pushed to
 * `cleanups` too, so a failed test restores it as well).
 */
export async function lowerMaxMessageSize(max: number, cleanups: Array<() => Promise<void>>): Promise<() => Promise<void>> {
  const release = await lock()
  let old: string | undefined
  try {
    old = /\{ok,(\d+)\}/.exec(await rabbitEval('application:get_env(rabbit, max_message_size).'))?.[1]
  } catch (e) {
    release()
    throw e
  }
  if (old === undefined) {
    release()
    throw new Error("the broker's max_message_size is not set: cannot lower it and restore it")
  }
  let lowered = true
  const restore = async (): Promise<void> => {
    if (!lowered) return
    lowered = false
    try {
      await rabbitEval(`application:set_env(rabbit, max_message_size, ${old}).`)
    } finally {
      release()
    }
  }
  cleanups.push(restore)
  await rabbitEval(`application:set_env(rabbit, max_message_size, ${max}).`)
  return restore
}

/**
 * The service broker's max_message_size, lowered for a few seconds by a test of messages bigger
 * than the broker takes (and always restored). A channel keeps the limit it opened with: one
 * opened while the limit is lowered refuses bigger messages until it closes, whatever the limit
 * is by then. No other test sends 1 MiB, so a short lowering troubles none that runs meanwhile.
 */
import { execFile } from 'node:child_process'

/** `rabbitmqctl eval EXPR`: its output. */
export function rabbitEval(expr: string): Promise<string> {
  return new Promise((resolve, reject) => execFile('rabbitmqctl', ['eval', expr], (err, out, errText) => (err ? reject(new Error(`rabbitmqctl eval: ${errText}`)) : resolve(out.trim()))))
}

/**
 * Lowers the broker's max_message_size to `max` bytes; returns what restores it (once; pushed to
 * `cleanups` too, so a failed test restores it as well).
 */
export async function lowerMaxMessageSize(max: number, cleanups: Array<() => Promise<void>>): Promise<() => Promise<void>> {
  const old = /\{ok,(\d+)\}/.exec(await rabbitEval('application:get_env(rabbit, max_message_size).'))?.[1]
  if (old === undefined) throw new Error("the broker's max_message_size is not set: cannot lower it and restore it")
  let lowered = true
  const restore = async (): Promise<void> => {
    if (lowered) await rabbitEval(`application:set_env(rabbit, max_message_size, ${old}).`)
    lowered = false
  }
  cleanups.push(restore)
  await rabbitEval(`application:set_env(rabbit, max_message_size, ${max}).`)
  return restore
}

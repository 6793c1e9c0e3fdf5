/**
 * Waits for a condition the test cannot be told of by an event (a row in a table another part of
 * the weave writes in its own time), looking every 20 ms; throws, naming `what`, after `ms`.
 */
export async function until(what: string, cond: () => boolean, ms = 20_000): Promise<void> {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

/** An event a test waits for: `fired` resolves once `fire` is called (by a callback it hands out). */
export function signal(): { fired: Promise<void>; fire: () => void } {
  let fire: () => void = () => {}
  const fired = new Promise<void>((resolve) => (fire = resolve))
  return { fired, fire }
}

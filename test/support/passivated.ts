/**
 * Waiting for passivation (src/passivation/) in a test: on its event, never on time.
 */
import type { Weave } from 'raiment'

/** Resolves once each of `ids` has been passivated (left memory) from now on. */
export function passivatedOnce(weave: Weave, ids: readonly string[]): Promise<void> {
  const left = new Set(ids)
  return new Promise((res) => {
    const on = (e: { id: string }): void => {
      left.delete(e.id)
      if (left.size > 0) return
      weave.off('thread-passivated', on)
      res()
    }
    weave.on('thread-passivated', on)
  })
}

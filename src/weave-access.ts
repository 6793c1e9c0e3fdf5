/**
 * How the built-in libraries that act on the weave itself (mailbox, threads, registry) reach it:
 * the weave puts itself, non-enumerable, in the config their factories receive.
 */
import type { WeaveConfig } from './call-context.js'
import { RaimentError } from './errors.js'
import type { Weave } from './weave.js'

/** The weave a library factory's config belongs to. */
export function weaveOf(config: WeaveConfig): Weave {
  const weave = (config as { weave?: Weave }).weave
  if (weave === undefined) {
    throw new RaimentError('RAIMENT_NO_WEAVE', 'this library acts on the weave and must be loaded by one (Weave.open), not on its own')
  }
  return weave
}

/** What `mailbox.receive` resolves to when its timeout passes with no matching message. */
export const TIMED_OUT: unique symbol = Symbol.for('raiment.timed-out') as never

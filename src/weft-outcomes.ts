/**
 * A call's outcome as a weft (src/weft.ts) records it, and as the thread sees it, live and on
 * replay.
 *
 * Invariants:
 * - Live, the thread sees an outcome as replay will rebuild it from its record: an error decoded
 *   from its record, an object as a copy of its record (never the library's own object); so live
 *   and replay agree.
 * - An outcome the library cannot record is the call's error instead (as recorded).
 * - A secret outcome (src/secrets/) is recorded sealed and reaches the thread opened, both ways.
 */
import type { Call } from './call.js'
import { decodeValue, encodeValue } from './encoding.js'
import { decodeError, encodeError } from './error-records.js'
import type { Entry } from './replay-record.js'
import type { CallSecrets } from './secrets/calls.js'

/**
 * The library answered `call` live with `v` (`ok`: a value, else an error): sets `call.ok` and
 * `call.value` to what the thread is to see, and returns the text to record.
 */
export function recordOutcome(call: Call, ok: boolean, v: unknown, s: CallSecrets | null): string {
  let text: string
  const sealed = ok && s !== null && s.sealsOutcomes(call.lib)
  if (ok) {
    try {
      text = encodeValue(sealed ? s.seal(call.lib, call.method, v) : v, call.lib.outcomePath(call.method))
    } catch (e) {
      ok = false
      v = e
      text = ''
    }
  } else text = ''
  if (!ok) {
    text = encodeError(v)
    // The thread sees the error as replay will rebuild it, so live and replay agree.
    v = decodeError(text)
  } else if (typeof v === 'object' && v !== null) {
    // Likewise the value: a copy as recorded, never the library's own object, which the thread
    // could change (and the library hand out again) where replay would not see it. (A
    // primitive decodes to itself, so it needs no copy.)
    v = decodeValue(text)
  }
  if (sealed && ok) v = s.open(typeof v === 'object' && v !== null ? v : decodeValue(text))
  call.ok = ok
  call.value = v
  return text
}

/** Settles `call` with its recorded outcome, entry `e`, on replay; `to` is told of a secret outcome sealed with a key not here. */
export function settleRecorded(call: Call, e: Entry, s: CallSecrets | null, to?: { unopenedSecret(kid: string): void }): void {
  if (e.ok && s !== null && s.sealsOutcomes(call.lib)) call.resolve(s.open(e.text !== undefined ? decodeValue(e.text) : e.value, to === undefined ? undefined : (kid) => to.unopenedSecret(kid)))
  else if (e.text !== undefined) {
    if (e.ok) call.resolve(decodeValue(e.text))
    else call.reject(decodeError(e.text))
  } else if (e.ok) call.resolve(e.value)
  else call.reject(e.value)
}

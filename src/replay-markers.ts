/**
 * Marker calls (`LibraryModule.markers`, such as `patch.patched`) that a replayed record lacks.
 *
 * Invariant: a marker the record lacks answers as the code that made the record went (its
 * absent value, unrecorded) exactly where the record shows that code went on without it: the
 * thread still has recorded calls to ask for (`Replay.unasked`), it had calls in flight when its
 * weave stopped (src/in-flight.ts), or the record is of a thread that ended by itself (it
 * returned or threw: a dump's replay, `raiment replay`, `raiment check --ended`), so its code
 * ended without it. Anywhere else the marker is past what the record knows: live, it is made
 * and recorded (the new path); replayed without a journal, the replay stops there.
 */
import type { Call } from './call.js'
import { marksOf } from './in-flight.js'
import type { Replay } from './replay-record.js'

/** The wefts (only replays without a journal) of records of threads that ended by themselves. */
const ended = new WeakSet<object>()

/** `weft` replays the record of a thread that ended by itself: a marker past it answers as absent. */
export function replaysEnded(weft: object): void {
  ended.add(weft)
}

function isMarker(call: Call): boolean {
  return call.lib.markers !== null && call.lib.markers.has(call.method)
}

/** Whether `call`, which the record `r` lacks, is a marker the record's code went on without (see above). */
export function markerLacked(r: Replay, call: Call, weft: object): boolean {
  return isMarker(call) && (r.unasked() || marksOf(weft) !== undefined || ended.has(weft))
}

/** Whether `call`, asked past the end of a record replayed without a journal, is a marker the record's code ended without. */
export function markerPastEnd(call: Call, weft: object): boolean {
  return ended.has(weft) && isMarker(call)
}

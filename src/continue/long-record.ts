/**
 * The one-time warning for a thread whose record grows long: replay (a resume, a move, a reload)
 * reads a record whole, so an actor that loops forever should continue as new now and then.
 *
 * Invariant: a thread is warned at most once per weave, when its record reaches LONG_RECORD
 * entries live (a record that already held more when the weave opened was warned of before).
 */
import type { WeaveConfig } from '../call-context.js'
import { RaimentError } from '../errors.js'

/** A record this long gets the warning. */
export const LONG_RECORD = 10_000

/** The warning: a RaimentError passed to the weave's `onWarning` (the logger of `raiment start`). */
export class LongRecord extends RaimentError {
  readonly thread: string
  readonly entries: number
  constructor(thread: string, type: string, entries: number) {
    super(
      'RAIMENT_LONG_RECORD',
      `thread ${thread} (${type}) has ${entries.toLocaleString('en-US')} entries in its record and it grows: a resume, a move or a reload replays it whole. ` +
        'A thread that loops forever (an actor on mailbox.receive) can end its record and go on from fresh params under the same id, ' +
        'mailbox, names, links and monitors: return this.threads.continueAsNew(state) (docs/messages-and-supervision.md#continue-as-new)',
    )
    this.thread = thread
    this.entries = entries
  }
}

interface Warned {
  warn: (w: Error) => void
  /** `<code>\0<thread>` of each warning given. */
  threads: Set<string>
}

/** By weave (the `weave` of a config): where its warnings go, and the threads warned. */
const warnings = new WeakMap<object, Warned>()

/** @internal The weave's warnings go to `warn` (Weave.open calls this with its `onWarning`). */
export function warnLongRecords(weave: object, warn: (w: Error) => void): void {
  warnings.set(weave, { warn, threads: new Set() })
}

/** @internal The weft of thread `id` (of `type`) recorded its LONG_RECORD-th entry: warn once. */
export function longRecord(config: WeaveConfig, id: string, type: string): void {
  warnOnce(config, id, new LongRecord(id, type, LONG_RECORD))
}

/** @internal Warns the weave of `config` of thread `id` with `e`, once per weave and code. */
export function warnOnce(config: WeaveConfig, id: string, e: RaimentError): void {
  const weave = (config as { weave?: object }).weave
  const w = weave === undefined ? undefined : warnings.get(weave)
  if (w === undefined) return
  const key = `${e.code}\0${id}`
  if (w.threads.has(key)) return
  w.threads.add(key)
  w.warn(e)
}

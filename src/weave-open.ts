/**
 * The opening of a weave (`Weave.open`, src/weave.ts), once its journal is owned and the weave
 * constructed: its observer and I/O libraries, the checks of its types' uses, its warnings, the
 * broker's claim and the journal's replication, then the resume of what was running, its
 * messages, schedules and control requests.
 *
 * Invariants:
 * - Nothing of a thread runs before the libraries are loaded and the types' uses checked: a
 *   weave that throws there has resumed nothing. Whatever throws here, `Weave.open` closes the
 *   weave (as `close()` does, with no wait: threads resumed already stop) before it throws.
 * - Threads recorded as running are resumed after the journal is replicated (a broker's weave has
 *   claimed its id), and before messages, schedules and control requests start.
 */
import { checkUses, type ThreadTypes } from './thread-types.js'
import { warnLongRecords } from './continue/long-record.js'
import { loadLibraries, loadObserver, observed, replicateJournal, type WeaveOptions } from './weave-options.js'
import type { WeaveParts } from './weave-parts.js'
import type { Weave } from './weave.js'

/** Brings the weave made of `p` up: its libraries loaded, its threads resumed, its schedules and control requests started. */
export async function openWeave(weave: Weave, p: WeaveParts, loaded: ThreadTypes, o: WeaveOptions): Promise<void> {
  const journal = weave.journal
  const observer = await loadObserver(o)
  if (observer !== null) {
    p.observer = observer
    journal.observer = observer
    weave.messages.observed = true
    observer.attach(observed(journal))
  }
  for (const [name, lib] of await loadLibraries(o, weave.config)) p.libs.set(name, lib)
  // Types given by name are the program's own: a missing library is thrown at this call.
  checkUses(loaded.types, weave.libraries, typeof o.threads === 'object' ? undefined : loaded.unavailable, loaded.files)
  const warn = o.onWarning ?? ((w: Error) => process.emitWarning(w))
  warnLongRecords(weave, warn)
  for (const e of loaded.unavailable.values()) warn(e)
  await o.remote?.claim?.(journal.weaveId)
  await replicateJournal(o, journal)
  p.runs.parked.opening(warn)
  p.runs.resume()
  p.runs.resumeCancels()
  p.runs.parked.opened()
  weave.messages.start()
  // Declared by modules that several weaves load: brought in by one of them (the others' go).
  const declares = o.moduleSchedulesOn === undefined || o.moduleSchedulesOn === journal.weaveId
  weave.schedules.start(declares || loaded.declared === undefined ? loaded.declared : new Map(), warn)
  p.control.start(o.pollMs ?? 50)
}

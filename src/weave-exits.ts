/** The exit signals of a thread that ended: what its parent, monitors, joiners and links are told. */
import type { ErrorRecord } from './error-records.js'
import { UnknownThread } from './errors.js'
import type { Weave } from './weave.js'
import type { Run } from './weave-types.js'

/**
 * Tells the parent and monitors that a thread ended (an exit message), and ends linked threads
 * with it unless they trap exits (then they get the message). Queued before the end record.
 */
export function exitSignals(weave: Weave, run: Pick<Run, 'id' | 'type' | 'parent'>, status: 'done' | 'failed' | 'killed', result: unknown, error: ErrorRecord | null): void {
  const id = run.id
  const msg =
    status === 'done'
      ? { exit: id, status, result }
      : status === 'failed'
        ? { exit: id, status, error: { name: error?.name ?? 'Error', message: error?.message ?? '', ...pickCode(error) } }
        : { exit: id, status }
  const told = new Set<string>()
  const tell = (to: string): void => {
    if (told.has(to) || !weave.isAlive(to)) return
    told.add(to)
    weave.messages.send(id, to, msg, `exit:${id}:${to}`, null, Infinity)
  }
  if (run.parent !== null) tell(run.parent)
  const watchers = weave.messages.watchers(id)
  // A watcher on another weave that monitors this thread is told by that envelope: a link's, for
  // one that traps exits, tells it nothing more (one exit message, as on one weave).
  const monitors = (watcher: string): boolean => watchers.some((w) => w.kind === 'monitor' && w.watcher === watcher)
  for (const { watcher, kind } of watchers) {
    if (kind === 'join' || weave.messages.isRemote(watcher)) {
      weave.watches.exitTo(watcher, id, run.type, kind, status, msg, { result, error }, '', told.has(watcher) || (kind === 'link' && monitors(watcher)))
    } else if (kind === 'monitor' || weave.messages.traps(watcher)) tell(watcher)
    else if (status !== 'done') weave.linkedExit(watcher, id, status, msg)
  }
  const watched = weave.messages.ended(id, status)
  // Its watches of threads on other weaves: those weaves drop them (the targets may live long).
  if (watched.length > 0) weave.watches.unwatch(id, watched)
}

/** The `code` field of a recorded error, if it has one (an exit message carries it). */
function pickCode(e: ErrorRecord | null): { code?: unknown } {
  return e && 'code' in e.fields ? { code: e.fields['code'] } : {}
}

/**
 * `Weave.kill` of a thread recorded here but not running here (pending, or of a type this weave
 * cannot run): told as any end. It is in `ending` (ended for isAlive and a second kill) until its
 * row says so, once committed. False when it had ended.
 * @throws UnknownThread when no thread has that id
 */
export function killRecorded(weave: Weave, ending: Set<string>, id: string): boolean {
  const row = weave.journal.thread(id)
  if (row === undefined) throw new UnknownThread(id)
  if (row.status !== 'pending' && row.status !== 'running') return false
  if (ending.has(id)) return false
  ending.add(id)
  exitSignals(weave, { id, type: row.type, parent: row.parent }, 'killed', undefined, null)
  weave.journal.endThread(id, 'killed', null, () => {
    ending.delete(id)
    weave.emit('thread-end', { id, type: row.type, status: 'killed' })
  })
  return true
}

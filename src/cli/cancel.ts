/**
 * `raiment cancel ID [--reason TEXT]`: a thread cancelled so that it can clean up (src/cancel.ts).
 * Beside a running weave, the weave is asked (a control request); with none, the request is
 * recorded in the journal (meta `cancel:<id>`), in the transaction that found none, and the next
 * weave applies it as it resumes the thread.
 */
import { RaimentError, UnknownThread } from '../errors.js'
import { weaveOfThread } from '../remote.js'
import { askWeave, CONTROL_TIMEOUT_MS } from './ask-weave.js'
import { openExisting, refuseReplicatedOffline, say, withOwner, type DbOptions } from './common.js'

export async function cancel(id: string, o: DbOptions & { reason?: string }): Promise<number> {
  const reason = o.reason ?? 'cancelled'
  const journal = openExisting(o.db)
  try {
    const row = journal.thread(id)
    if (row === undefined) {
      const home = weaveOfThread(id)
      if (home !== null && home !== journal.weaveId) {
        throw new RaimentError('RAIMENT_UNKNOWN_THREAD', `no thread with id '${id}' in this journal: it is a thread of weave '${home}' (this journal's is '${journal.weaveId}'); cancel it with that weave's journal (raiment cancel ${id} --db FILE)`)
      }
      throw new UnknownThread(id)
    }
    if (row.status !== 'running' && row.status !== 'pending') {
      say(`${id} had already ended (${row.status})`)
      return 0
    }
    const owner = withOwner(journal, (owner) => {
      if (owner !== null) return owner
      // A replicated journal's stream would not have it (nor a takeover elsewhere).
      refuseReplicatedOffline(journal)
      journal.setMeta(`cancel:${id}`, reason)
      return owner
    })
    if (owner === null) {
      say(`cancel of ${id} recorded: a weave that runs it applies it (raiment start --db ${o.db})`)
      return 0
    }
    const reply = await askWeave(journal, 'cancel', id, reason, false)
    if (reply === null) throw new RaimentError('RAIMENT_CANCEL_TIMEOUT', `the weave (pid ${owner.pid}) did not answer the cancel of ${id} within ${CONTROL_TIMEOUT_MS / 1000} s; the request stays queued and it acts on it when it polls`)
    if (reply === 'cancelled') say(`cancelled ${id}: the call it waits on (or else its next) throws ThreadCancelled`)
    else if (reply === 'already ended') say(`${id} had already ended (${journal.thread(id)?.status ?? 'ended'})`)
    else throw new RaimentError('RAIMENT_CANCEL_FAILED', `the weave (pid ${owner.pid}) could not cancel ${id}: ${reply}`)
    return 0
  } finally {
    journal.close()
  }
}

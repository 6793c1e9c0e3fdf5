/**
 * `raiment cancel ID [--reason TEXT]`: a thread cancelled so that it can clean up (src/cancel.ts).
 * Beside a running weave, the weave is asked (a control request); with none, the request is
 * recorded in the journal (meta `cancel:<id>`), in the transaction that found none, and the next
 * weave applies it as it resumes the thread. A thread that moved away is cancelled where it runs:
 * the weave running here sends the request after it.
 */
import { RaimentError, ThreadMoved, UnknownThread } from '../errors.js'
import { weaveOfThread } from '../remote.js'
import { askTimeout, askWeave, busyHint, waitText, type AskOptions } from './ask-weave.js'
import { movedTo, openExisting, refuseReplicatedOffline, say, withOwner, type DbOptions } from './common.js'

export async function cancel(id: string, o: DbOptions & AskOptions & { reason?: string }): Promise<number> {
  const reason = o.reason ?? 'cancelled'
  const waitMs = askTimeout(o)
  const journal = openExisting(o.db)
  try {
    const row = journal.thread(id)
    if (row === undefined) {
      const home = weaveOfThread(id)
      if (home !== null && home !== journal.weaveId) {
        throw new RaimentError('RAIMENT_UNKNOWN_THREAD', `no thread with id '${id}' in this journal: it is a thread of weave '${home}' (this journal's is '${journal.weaveId}'); cancel it with that weave's journal (raiment cancel ${id} --db FILE), or from a weave or thread joined to it by a broker (weave.cancel, this.threads.cancel)`)
      }
      throw new UnknownThread(id)
    }
    const moved = row.status === 'moved'
    if (row.status !== 'running' && row.status !== 'pending' && !moved) {
      say(`${id} had already ended (${row.status})`)
      return 0
    }
    const owner = withOwner(journal, (owner) => {
      if (owner !== null || moved) return owner
      // A replicated journal's stream would not have it (nor a takeover elsewhere).
      refuseReplicatedOffline(journal)
      journal.setMeta(`cancel:${id}`, reason)
      return owner
    })
    if (owner === null && moved) {
      // Nothing here can send it after the thread: saying it had ended would be wrong, it runs on.
      const to = movedTo(journal.db, id) ?? 'another weave'
      throw new ThreadMoved(id, to, `no weave runs on ${o.db} to send the cancel after it: cancel it on the journal of the weave it runs on, or start a weave here with a broker (raiment start --db ${o.db} --amqp URL) and cancel it again`)
    }
    if (owner === null) {
      say(`cancel of ${id} recorded: a weave that runs it applies it (raiment start --db ${o.db})`)
      return 0
    }
    const reply = await askWeave(journal, 'cancel', id, reason, false, { waitMs })
    if (reply === null) throw new RaimentError('RAIMENT_CANCEL_TIMEOUT', `the weave (pid ${owner.pid}) did not answer the cancel of ${id} within ${waitText(waitMs)}; the request stays queued and it acts on it when it polls. ${busyHint(waitMs)}`)
    if (reply === 'cancelled') say(`cancelled ${id}: the call it waits on (or else its next) throws ThreadCancelled`)
    else if (reply.startsWith('forwarded ')) say(`cancel of ${id} sent to weave ${reply.slice('forwarded '.length)}, where it moved (that weave cancels it if it still runs)`)
    else if (reply === 'already ended') say(`${id} had already ended (${journal.thread(id)?.status ?? 'ended'})`)
    else throw new RaimentError('RAIMENT_CANCEL_FAILED', `the weave (pid ${owner.pid}) could not cancel ${id}: ${reply}`)
    return 0
  } finally {
    journal.close()
  }
}

/**
 * `raiment migrate ID --to WEAVE`: asks the weave running on the journal (a control request, as
 * `raiment kill` does) to move one of its threads to another weave of its broker namespace, and
 * waits for its answer: where the thread went, or why it could not go (it then keeps running).
 */
import { checkName } from '../amqp/topology.js'
import { decodeError } from '../error-records.js'
import { InvalidArgument, RaimentError, UnknownThread } from '../errors.js'
import { checkMoveTarget } from '../weave-moves.js'
import { answerOf, askTimeout, busyHint, waitText, type AskOptions } from './ask-weave.js'
import { note, openExisting, runningOwner, say, type DbOptions } from './common.js'

/** How long to wait for the weave to take the request (it may look the target weave up on the broker); then it is withdrawn. */
const MIGRATE_TIMEOUT_MS = 15_000

export interface MigrateOptions extends DbOptions, AskOptions {
  to: string
}

/** `raiment migrate ID --to WEAVE`. Exit 0 once the move is durable on this weave. */
export async function migrate(id: string, o: MigrateOptions): Promise<number> {
  const bad = checkName('--to', o.to)
  if (bad) throw new InvalidArgument(bad)
  checkMoveTarget(o.to)
  const waitMs = askTimeout(o, MIGRATE_TIMEOUT_MS)
  const journal = openExisting(o.db)
  try {
    const row = journal.thread(id)
    if (row === undefined) throw new UnknownThread(id)
    if (row.status !== 'running' && row.status !== 'pending') {
      throw new RaimentError('RAIMENT_THREAD_NOT_MOVABLE', `thread ${id} cannot move: it is ${row.status}; only a running thread moves`)
    }
    const owner = runningOwner(journal)
    if (owner === null) {
      throw new RaimentError(
        'RAIMENT_NO_WEAVE',
        `no weave runs on ${o.db}: a thread moves from a running weave joined to a broker (raiment start --db ${o.db} --amqp URL), then run this again`,
      )
    }
    const n = journal.db.prepare('INSERT INTO control (kind, thread, arg) VALUES (?, ?, ?)').run('migrate', id, o.to).lastInsertRowid
    const reply = await answerOf(journal, n, 'migrate', true, undefined, waitMs)
    if (reply === null) {
      throw new RaimentError(
        'RAIMENT_MIGRATE_TIMEOUT',
        `the weave (pid ${owner.pid}) did not take the request within ${waitText(waitMs)}; it was withdrawn, nothing was done: ask again once the weave answers. ${busyHint(waitMs)}`,
      )
    }
    let moved: { moved?: string; to?: string; refused?: string; down?: boolean } = {}
    try {
      moved = JSON.parse(reply) as typeof moved
    } catch {
      // not JSON: the error message of a weave of an older Raiment
    }
    // The weave's refusal, with its code (RAIMENT_UNKNOWN_WEAVE, RAIMENT_THREAD_NOT_MOVABLE, ...).
    if (typeof moved.refused === 'string') throw decodeError(moved.refused)
    if (typeof moved.to !== 'string') throw new RaimentError('RAIMENT_MIGRATE_FAILED', `the weave (pid ${owner.pid}) did not move ${id}: ${reply}`)
    say(`moved ${id} to weave ${moved.to}; messages sent to it here are forwarded there`)
    if (moved.down === true) note(`weave ${moved.to} is not live now: ${id} waits in its queue, with what is sent to it, and runs on once weave ${moved.to} starts again`)
    return 0
  } finally {
    journal.close()
  }
}

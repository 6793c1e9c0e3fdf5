/**
 * Continue-as-new: a thread ends its record and goes on as a fresh run, from new params, under
 * the same id (`return this.threads.continueAsNew(state)`), so a thread that loops forever keeps
 * its record, and its replay, short.
 *
 * Invariants:
 * - The switch is one commit: in the batch after everything the old run queued (its last
 *   outcomes, the inbox deletes of what it received), the old run's entries (and the failed
 *   attempts of its retried calls) are deleted and the new params recorded. A crash before that
 *   commit resumes the old record whole, which replays to the same continueAsNew and switches
 *   again; a crash after it starts the new run from the new params with an empty record.
 * - The thread's identity does not change: id, parent, names, mailbox (the messages waiting stay,
 *   in order; those the old run received were deleted with its record of them), links, monitors,
 *   trapExits, joiners. No exit signal is sent and the thread is alive throughout.
 * - The new run starts once the switch is durable. Its call ids begin with `<id>~<n>` (n: how many
 *   times the thread continued, the `continued` column of `threads`), never with a call id of an
 *   earlier run, so what they key (message ids, idempotency keys) is new.
 * - Calls of the old run still in flight are abandoned as at a thread's end: a wait (a receive, a
 *   sleep) is aborted and takes nothing; an outcome that comes later is not recorded.
 */
import type Database from 'better-sqlite3'
import { CALL_SCOPE, callScope, scopeText, type WeaveConfig } from '../call-context.js'
import { passCancel } from '../cancel.js'
import { dropMarks } from '../in-flight.js'
import { crashArmed, crashPoint } from '../crash-points.js'
import { decodeValue, encodeValue } from '../encoding.js'
import { RaimentError } from '../errors.js'
import type { Journal, ThreadRow } from '../journal.js'
import type { Run, WeaveHost } from '../weave-types.js'
import { offOldCode } from '../old-code.js'

/**
 * What `threads.continueAsNew(params)` rejects with: let it end the thread's function (return
 * or await the call, and do not catch it), and the weave starts the thread again from `params`.
 */
export class ContinueAsNew extends RaimentError {
  /** The next run's params, encoded as the journal records them. */
  readonly params: string
  /** @throws UnrecordableValue when `params` cannot be recorded */
  constructor(params: unknown) {
    const text = encodeValue(params, 'params')
    super('RAIMENT_CONTINUE_AS_NEW', 'threads.continueAsNew: this thread goes on as a new run; let this error end its function (return or await the call), do not catch it')
    this.params = text
  }

  /** The next run's params, decoded. */
  get next(): unknown {
    return decodeValue(this.params)
  }
}

/**
 * Is `v` a ContinueAsNew? By its code, not its class: the built-in libraries import `raiment`,
 * which an application may resolve to another copy of this module.
 */
export function isContinueAsNew(v: unknown): v is ContinueAsNew {
  return v instanceof Error && (v as { code?: unknown }).code === 'RAIMENT_CONTINUE_AS_NEW' && typeof (v as { params?: unknown }).params === 'string'
}

/** How many times the thread of a journal row continued as new (0 for a row of an older journal). */
export function continuedOf(row: ThreadRow): number {
  return (row as { continued?: number }).continued ?? 0
}

/** The config a run's weft passes to its calls: the weave's, or for a continued thread one that scopes its call ids. */
export function runConfig(config: WeaveConfig, run: Run, scope: number): WeaveConfig {
  const n = run.continued
  if (n === undefined || n === 0) return config
  return Object.create(config, { [CALL_SCOPE]: { value: callScope(run.id, n, scopeText(scope)) } }) as WeaveConfig
}

type Stmt = Database.Statement<unknown[]>

interface Statements {
  dropMain: Stmt
  dropTail: Stmt
  dropAttempts: Stmt
  renew: Stmt
}

const prepared = new WeakMap<Journal, Statements>()

function statements(journal: Journal): Statements {
  let s = prepared.get(journal)
  if (s === undefined) {
    const db = journal.db
    s = {
      dropMain: db.prepare('DELETE FROM journal_main WHERE thread = ?'),
      // journal_tail has no index by thread (its inserts must stay cheap): this reads the tail,
      // up to TAIL_MAX rows (10-25 ms here when it is full, in the commit); journal_main is by key.
      dropTail: db.prepare('DELETE FROM journal_tail WHERE thread = ?'),
      dropAttempts: db.prepare('DELETE FROM retry_attempts WHERE thread = ?'),
      renew: db.prepare('UPDATE threads SET params = ?, continued = ?, calls = 0 WHERE id = ?'),
    }
    prepared.set(journal, s)
  }
  return s
}

/**
 * @internal Run `run`'s function ended with `next` (its weft finished, nothing stopped it): queue
 * the switch, and start the new run once it is durable.
 */
export function continueRun(host: WeaveHost, run: Run, next: Pick<ContinueAsNew, 'params'>): void {
  const journal = host.weave.journal
  // Its waits went as it ended (a message that arrives from here on stays in the inbox for the
  // new run), and what a receive took that the function never saw went back (Weft.finish).
  // Other calls still in flight are abandoned as at any end (their outcomes are not recorded),
  // not aborted.
  const n = (run.continued ?? 0) + 1
  run.continued = n
  // The new weft is the run's at once: a kill or a linked exit before the switch commits ends
  // the thread (its end queued after the switch) and the new run never starts.
  const weft = host.weft(run, null)
  passCancel(run.weft, weft)
  // The old run's calls in flight are abandoned: the new run, resumed, must not be asked for them.
  dropMarks(journal, run.id, run.weft)
  run.weft = weft
  const s = statements(journal)
  journal.queue(s.dropMain, [run.id])
  journal.queue(s.dropTail, [run.id])
  journal.queue(s.dropAttempts, [run.id])
  journal.queue(s.renew, [next.params, n, run.id], () => {
    if (crashArmed) crashPoint('continue-committed')
    if (host.closed() || run.ended || run.weft !== weft) return
    // A type a weave runs is never removed (a reload replaces it), so it is there. The new run
    // starts on the type's code of now, with a record of its own: one a reload kept on older
    // code is on the current code from here, and may be passivated again.
    if (run.kept === true) offOldCode(journal, run.id)
    run.kept = false
    host.start(run, host.type(run.type)!, decodeValue(next.params), false)
  })
  if (crashArmed) crashPoint('continue-queued')
}

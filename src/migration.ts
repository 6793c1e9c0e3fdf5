/**
 * Moving a running thread to another weave: the record that travels, read on the weave it leaves
 * and written on the weave it arrives at.
 *
 * Invariants:
 * - A record is read only when nothing for the thread is queued and not yet committed (the weave
 *   flushes first), and the departure (status 'moved', the forward, the record's outbox row, the
 *   inbox emptied) is queued in the same synchronous step, so a message is either in the record
 *   or forwarded after it, never both and never neither.
 * - The record holds what a dump holds (spawn record and journal entries), in the journal's own
 *   encoding so that the thread replays on arrival exactly as it would have resumed here, plus
 *   the messages still in its inbox (in order), its registered names, whether it traps exits,
 *   and who watches it (what it watches stays with the watched threads' weaves).
 * - Arrival is taken once per record id (the `received` table), in one batch with the thread row
 *   and its entries, and the thread is resumed only once that batch is durable.
 */
import type Database from 'better-sqlite3'
import { RaimentError } from './errors.js'
import type { EntryRow, Journal } from './journal.js'
import type { WatchKind } from './messages.js'
import { AttemptLog, type AttemptRow } from './retry/attempts.js'
import { SEND_KEY_RETENTION_MS } from './send-keys.js'

/** The version of `MoveRecord`; a weave refuses a newer one rather than guess. */
export const MOVE_FORMAT = 1

export interface MoveRecord {
  format: number
  /** The weave the thread left. */
  from: string
  /**
   * `trace`: its last run's trace context (src/observer.ts), if observed; `continued`: how many
   * times it continued as new (src/continue/), absent for none; both absent from older weaves.
   * `scope`: its call scope (src/call-context.ts `callScope`), absent for a thread of an older journal.
   */
  thread: { id: string; type: string; params: string; parent: string | null; created: number; trace?: string | null; continued?: number; scope?: string }
  entries: EntryRow[]
  /** Messages not yet taken, oldest first; `msgId` keeps them unique on arrival. */
  /** `n`: its number on the weave it left (absent from older weaves), which a receive may have scanned to. */
  inbox: Array<{ n?: number; from: string | null; msgId: string; body: string; at: number; trace?: string | null }>
  names: string[]
  traps: boolean
  /** Who watches the thread (monitors, links, joins from other weaves); absent from older weaves. */
  watches?: Array<{ watcher: string; kind: WatchKind }>
  /**
   * The threads it monitors. Where one is not on the weave it arrives at, a row there records the
   * watch, so that its end drops it on that thread's weave (`unwatch`); absent from older weaves.
   */
  watching?: string[]
  /** The failed attempts of its retried calls (src/retry/), so a wait goes on where it arrives; absent from older weaves. */
  attempts?: AttemptRow[]
  /**
   * Sent back: the weave it had moved to could not replay its record (that weave's code diverges
   * from it: src/weave-moves.ts `diverged`), and why. A thread sent back is not sent back again.
   */
  back?: string
  /**
   * The calls it had in flight when it left, as its journal marked them (src/in-flight.ts): made
   * again here, with their call ids, before it may take another path (absent for none).
   */
  inFlight?: Array<{ key: string; ord: number; started: number }>
  /** A cancel put off to its next call (src/cancel.ts), its reason: the first call it makes live here takes it. */
  cancel?: string
  /** The keys of keyed sends it was sent (src/send-keys.ts), with their times; absent from older weaves. */
  keys?: Array<[string, number]>
}

/**
 * A thread that moved to a weave whose code diverges from its record went back to the weave it
 * came from (a rolling deploy moved it ahead of the code): told on both weaves, as a warning.
 */
export class MovedBack extends RaimentError {
  constructor(id: string, from: string, to: string, why: string, here: 'sent' | 'back') {
    super(
      'RAIMENT_MOVED_BACK',
      here === 'sent'
        ? `thread ${id} moved here from weave ${from}, and its record diverges from this weave's code: ${why} It goes back to weave ${from}, which ran it. Deploy the same thread code here (raiment check tells) before moving threads here`
        : `thread ${id} came back from weave ${to}, whose code diverges from its record: ${why} It runs here again`,
    )
  }
}

/**
 * The broker refused the record of a thread's move (bigger than its max_message_size, which is
 * lower than maxMessageBytes): the thread came back to the weave it was leaving, and runs on there.
 */
export class MoveRefused extends RaimentError {
  constructor(id: string, to: string, why: string) {
    super('RAIMENT_MOVE_REFUSED', `thread ${id} did not move to weave '${to}': ${why}. It runs here again, with what was sent to it meanwhile`)
  }
}

export class ThreadNotMovable extends RaimentError {
  constructor(id: string, why: string) {
    super('RAIMENT_THREAD_NOT_MOVABLE', `thread ${id} cannot move: ${why}`)
  }
}

type Stmt = Database.Statement<unknown[]>

/** Reads move records on departure and writes them on arrival. */
export class Moves {
  readonly #journal: Journal
  readonly #inbox: Stmt
  readonly #names: Stmt
  readonly #traps: Stmt
  readonly #watches: Stmt
  readonly #watching: Stmt
  readonly #keys: Stmt
  readonly #insertThread: Stmt
  readonly #reviveThread: Stmt
  readonly #dropEntries: Stmt
  readonly #insertEntry: Stmt

  constructor(journal: Journal) {
    this.#journal = journal
    const db = journal.db
    this.#inbox = db.prepare('SELECT n, sender AS "from", msg_id AS msgId, body, at, trace FROM inbox WHERE thread = ? ORDER BY n')
    this.#names = db.prepare('SELECT name FROM names WHERE thread = ?').pluck()
    this.#traps = db.prepare('SELECT 1 FROM traps WHERE thread = ?')
    this.#watches = db.prepare('SELECT watcher, kind FROM watches WHERE target = ? ORDER BY watcher, kind')
    this.#keys = db.prepare('SELECT key, at FROM send_keys WHERE receiver = ? AND at >= ? ORDER BY at, key').raw(true)
    this.#watching = db.prepare("SELECT target FROM watches WHERE watcher = ? AND kind = 'monitor' ORDER BY target").pluck()
    this.#insertThread = db.prepare("INSERT INTO threads (id, type, params, parent, status, created, continued, scope) VALUES (?, ?, ?, ?, 'running', ?, ?, ?)")
    this.#reviveThread = db.prepare("UPDATE threads SET status = 'running', outcome = NULL, ended = NULL, params = ?, continued = ?, scope = ? WHERE id = ?")
    this.#dropEntries = db.prepare('DELETE FROM journal WHERE thread = ?')
    this.#insertEntry = db.prepare('INSERT INTO journal (thread, seq, key, ord, ok, outcome, started, duration) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
  }

  /** The record of thread `id` as committed now (call with nothing queued for it). */
  read(id: string): MoveRecord {
    const j = this.#journal
    const row = j.thread(id)
    if (row === undefined) throw new ThreadNotMovable(id, 'no such thread in this weave')
    return {
      format: MOVE_FORMAT,
      from: j.weaveId,
      thread: { id: row.id, type: row.type, params: row.params, parent: row.parent, created: row.created, trace: row.trace ?? null, ...continuedOf(row as { continued?: number }), ...(row.scope ? { scope: row.scope } : {}) },
      entries: j.entries(id),
      inbox: this.#inbox.all(id) as MoveRecord['inbox'],
      names: this.#names.all(id) as string[],
      traps: this.#traps.get(id) !== undefined,
      watches: this.#watches.all(id) as NonNullable<MoveRecord['watches']>,
      watching: this.#watching.all(id) as string[],
      attempts: AttemptLog.of(j).ofThread(id),
      keys: this.#keys.all(id, Date.now() - SEND_KEY_RETENTION_MS) as Array<[string, number]>,
    }
  }

  /**
   * Queues the thread row (new, or one that had moved away from here before) and its entries,
   * replacing whatever journal this weave kept of it.
   */
  write(r: MoveRecord): void {
    const j = this.#journal
    const t = r.thread
    // (Its scope travels with it: a call made again here has the id it had there.)
    const scope = typeof t.scope === 'string' ? t.scope : null
    if (j.thread(t.id) === undefined) j.queue(this.#insertThread, [t.id, t.type, t.params, t.parent, t.created, t.continued ?? 0, scope])
    else j.queue(this.#reviveThread, [t.params, t.continued ?? 0, scope, t.id])
    j.queue(this.#dropEntries, [t.id])
    for (const e of r.entries) j.queue(this.#insertEntry, [t.id, ...e])
    const attempts = AttemptLog.of(j)
    for (const a of r.attempts ?? []) attempts.add(t.id, a)
  }
}

/** A row's continue-as-new count, as a record carries it (absent for none). */
function continuedOf(row: { continued?: number }): { continued?: number } {
  return row.continued ? { continued: row.continued } : {}
}

/** Checks a record that came off the wire before anything of it is written. */
export function checkRecord(r: unknown): string | null {
  const o = r as MoveRecord
  if (!o || typeof o !== 'object' || typeof o.format !== 'number') return 'no format'
  if (o.format > MOVE_FORMAT) return `format ${o.format} is newer than this Raiment reads (${MOVE_FORMAT}); upgrade raiment on this weave`
  if (!o.thread || typeof o.thread.id !== 'string' || typeof o.thread.type !== 'string' || typeof o.thread.params !== 'string') return 'no thread'
  if (!Array.isArray(o.entries) || !Array.isArray(o.inbox) || !Array.isArray(o.names)) return 'no entries, inbox or names'
  if (o.watches !== undefined && !Array.isArray(o.watches)) return 'watches is not a list'
  if (o.watching !== undefined && !(Array.isArray(o.watching) && o.watching.every((t) => typeof t === 'string'))) return 'watching is not a list of thread ids'
  if (o.attempts !== undefined && !Array.isArray(o.attempts)) return 'attempts is not a list'
  if (o.back !== undefined && typeof o.back !== 'string') return 'back is not a string'
  if (o.inFlight !== undefined && !(Array.isArray(o.inFlight) && o.inFlight.every((c) => typeof c?.key === 'string' && Number.isInteger(c.ord) && typeof c.started === 'number'))) return 'inFlight is not a list of calls'
  if (o.cancel !== undefined && typeof o.cancel !== 'string') return 'cancel is not a string'
  if (o.keys !== undefined && !(Array.isArray(o.keys) && o.keys.every((k) => Array.isArray(k) && typeof k[0] === 'string' && typeof k[1] === 'number'))) return 'keys is not a list of [key, at]'
  return null
}

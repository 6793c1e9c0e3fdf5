/**
 * Forks: a new thread that replays another's record up to an entry, with some recorded outcomes
 * replaced, then runs live (`weave.fork`, `raiment fork`). The same edits make a "what if" of a
 * replay in a test (`replay(type, dump, { at, set })`).
 *
 * Invariants:
 * - The original is only read: its row and entries are never written.
 * - A fork is recorded (its thread row, as running, and its entries) in one transaction, so a
 *   crash leaves no fork or the whole of one, which a weave resumes like any running thread.
 * - A fork has an id of its own, so every call id of its live calls is its own too: an
 *   idempotent library does the fork's effects even where the original did the same ones. A
 *   recorded `threads.self()` answers it (not the original's id) in the fork.
 * - Edits are checked before anything is written: `at` must be a seq of the record or its end,
 *   and each replaced entry a seq of the record before `at`.
 */
import type Database from 'better-sqlite3'
import { newScope } from '../call-context.js'
import { decodeValue, encodeValue } from '../encoding.js'
import { InvalidArgument, UnknownThread } from '../errors.js'
import type { EntryRow, Journal, ThreadRow } from '../journal.js'
import type { WeaveHost } from '../weave-types.js'
import type { Entry } from '../weft.js'

/** Edits of a record: replay up to (not including) entry `at`, with the outcomes of `set` replaced. */
export interface RecordEdits {
  /** The seq of the first entry not replayed (it, and what follows, runs live); default: the whole record. */
  at?: number
  /** Outcomes to replace, by seq: each recorded entry answers this value instead (as a success). */
  set?: Record<number, unknown> | ReadonlyMap<number, unknown>
}

/** What the edits are called where they were given: the options (`at`, `set`) or the CLI's flags (`--at`, `--set`). */
export interface EditNames {
  at: string
  set: string
}

export const OPTION_NAMES: EditNames = { at: 'at', set: 'set' }
export const FLAG_NAMES: EditNames = { at: '--at', set: '--set' }

/**
 * Applies `edits` to a record (entries in seq order): those before `at`, with `set` applied by `replace`.
 * @throws InvalidArgument naming the seq that the record does not hold, or an `at` that is not one of its seqs or its end
 */
export function editRecord<T>(entries: readonly T[], seqOf: (e: T) => number, callOf: (e: T) => string, edits: RecordEdits, where: string, replace: (e: T, value: unknown) => T, names: EditNames = OPTION_NAMES): T[] {
  const seqs = entries.map(seqOf)
  const end = seqs.length === 0 ? 0 : seqs[seqs.length - 1]! + 1
  const range = seqs.length === 0 ? 'it has no entries' : `its entries are seq ${seqs[0]} to ${end - 1}`
  const at = edits.at ?? end
  if (!Number.isSafeInteger(at) || (at !== end && !seqs.includes(at))) {
    throw new InvalidArgument(`${names.at} ${JSON.stringify(edits.at)} is not an entry of the record of ${where} nor its end (${end}); ${range}`)
  }
  // A receive with a predicate peeks its mailbox, then takes the message it chose by number: cut
  // between, the fork would take live, from its own mailbox, a message of the original's.
  const i = seqs.indexOf(at)
  if (i >= 0 && callOf(entries[i]!) === 'mailbox.takeNumber') {
    let first = i
    while (first > 0 && callOf(entries[first - 1]!) === 'mailbox.peek') first--
    throw new InvalidArgument(
      `${names.at} ${at} cuts a receive of ${where} in two: entry seq ${at} takes the message its receive chose by peeking at seq ${seqs[first]}; give ${names.at} ${seqs[first]} (the receive made again, live) or ${names.at} ${seqs[i + 1] ?? end} (after it)`,
    )
  }
  const set = edits.set === undefined ? new Map<number, unknown>() : edits.set instanceof Map ? (edits.set as ReadonlyMap<number, unknown>) : new Map(Object.entries(edits.set).map(([k, v]) => [Number(k), v]))
  for (const seq of set.keys()) {
    if (!Number.isSafeInteger(seq) || !seqs.includes(seq)) throw new InvalidArgument(`${names.set} ${String(seq)}: the record of ${where} has no entry seq ${String(seq)}; ${range}`)
    if (seq >= at) throw new InvalidArgument(`${names.set} ${seq}: entry seq ${seq} of ${where} is not replayed (the fork runs live from seq ${at}); set only entries before ${names.at}`)
  }
  return entries.filter((e) => seqOf(e) < at).map((e) => (set.has(seqOf(e)) ? replace(e, set.get(seqOf(e))) : e))
}

/** Whether `e` is a peek of a receive that found a message (the receive goes on: another peek, or the take of what it found). */
function foundByPeek(e: EntryRow): boolean {
  if (!e[1].startsWith('mailbox.peek:') || e[3] !== 1) return false
  const v = decodeValue(e[4])
  return typeof v === 'object' && v !== null && !('timedOut' in v)
}

/**
 * `edits` for a fork of a record that ends in a receive with a predicate, past a peek that found
 * a message whose take is not recorded: by default the fork makes that receive again, live, from
 * its first peek (from the original's mailbox, it would take a message its own does not hold).
 */
function beforeOpenReceive(entries: readonly EntryRow[], edits: RecordEdits, id: string, names: EditNames): RecordEdits {
  const end = entries.length === 0 ? 0 : entries[entries.length - 1]![0] + 1
  if ((edits.at ?? end) !== end || entries.length === 0 || !foundByPeek(entries[entries.length - 1]!)) return edits
  let first = entries.length - 1
  while (first > 0 && foundByPeek(entries[first - 1]!)) first--
  if (edits.at !== undefined) {
    throw new InvalidArgument(`${names.at} ${end} cuts a receive of ${id} in two: its peek at seq ${end - 1} found a message it had not taken yet; give ${names.at} ${entries[first]![0]} (the receive made again, live)`)
  }
  return { ...edits, at: entries[first]![0] }
}

/** The key of `threads.self()`: its outcome is the id of the thread that asked. */
const SELF_KEY = 'threads.self:[]'

/**
 * The entries of a fork of `id`: its `record` (read once by the caller), edited (values are checked to be recordable). Where
 * the original asked for its own id (`threads.self()`), the fork `forkId` is told its own: told
 * the original's, it would act for the original (a reply sent there would reach the original).
 * `forkId` null: only to check the edits.
 */
export function forkEntries(record: readonly EntryRow[], id: string, edits: RecordEdits, forkId: string | null, names: EditNames = OPTION_NAMES): EntryRow[] {
  let entries = record
  if (forkId !== null) {
    const own = encodeValue(forkId)
    entries = entries.map((e): EntryRow => (e[1] === SELF_KEY && e[3] === 1 ? [e[0], e[1], e[2], 1, own, e[5], e[6]] : e))
  }
  return editRecord(entries, (e) => e[0], (e) => e[1].slice(0, e[1].indexOf(':')), beforeOpenReceive(entries, edits, id, names), id, (e, value): EntryRow => [e[0], e[1], e[2], 1, encodeValue(value, `the value set for seq ${e[0]}`), e[5], e[6]], names)
}

type Stmt = Database.Statement<unknown[]>

/** Writes forks: prepared once per journal. */
export class Forks {
  readonly #insertThread: Stmt
  readonly #insertEntry: Stmt
  readonly #journal: Journal

  constructor(journal: Journal) {
    this.#journal = journal
    const db = journal.db
    this.#insertThread = db.prepare("INSERT INTO threads (id, type, params, parent, status, created, scope) VALUES (?, ?, ?, NULL, 'running', ?, ?)")
    this.#insertEntry = db.prepare('INSERT INTO journal (thread, seq, key, ord, ok, outcome, started, duration) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
  }

  /** Queues fork `id` of `row` with `entries` into the journal's next batch (a weave's way). */
  queue(id: string, row: ThreadRow, entries: readonly EntryRow[], after: () => void, scope: string = newScope()): void {
    const j = this.#journal
    j.queue(this.#insertThread, [id, row.type, row.params, Date.now(), scope])
    for (const e of entries) j.queue(this.#insertEntry, [id, ...e])
    j.queue(this.#insertThread.database.prepare('SELECT 1'), [], after)
  }

  /** Writes fork `id` now, inside the caller's transaction (the CLI's, with no weave running). */
  write(id: string, row: ThreadRow, entries: readonly EntryRow[]): void {
    this.#insertThread.run(id, row.type, row.params, Date.now(), newScope())
    for (const e of entries) this.#insertEntry.run(id, ...e)
  }
}

/**
 * `Weave.fork`, for a weave that is open: records fork of thread `id` through `forks` (its
 * journal's) and starts it once that is durable. Returns the fork's id.
 */
export function forkThread(host: WeaveHost, forks: Forks, id: string, edits: RecordEdits): string {
  const journal = host.weave.journal
  const row = journal.thread(id)
  if (row === undefined) throw new UnknownThread(id)
  const t = host.type(row.type)
  if (t === undefined) throw host.cannotRunType(row.type)
  // Its record as of now, the entries queued for the next commit included: not flushed, as this
  // may run from an async continuation, between the writes of one step (src/group-commit.ts
  // `ownTurn`). The fork's rows are queued after those entries: they commit together.
  const record = journal.entriesNow(id)
  forkEntries(record, id, edits, null) // the edits checked before an id is taken
  const forkId = journal.nextThreadId()
  const entries = forkEntries(record, id, edits, forkId)
  const scope = newScope()
  const run = host.prepare(forkId, row.type, null, entries.map(([seq, key, ord, ok, text]): Entry => ({ seq, key, ord, ok: ok === 1, text, call: null })), null, 0, scope)
  forks.queue(forkId, row, entries, () => {
    if (!host.closed() && !run.ended) host.start(run, t, decodeValue(row.params), true)
  }, scope)
  return forkId
}

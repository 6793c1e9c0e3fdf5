/**
 * Calls in flight, in the journal: a thread resumed on changed code must not take another path
 * past a call it had made and whose outcome was never recorded (the weave was killed, or stopped
 * with the call in flight). A user trial's payment thread, SIGKILLed during `psp.charge` and
 * started on code whose `patch.patched('two-steps')` chose authorize + capture, charged twice:
 * the record ended before the charge, so the patch answered true.
 *
 * Invariants:
 * - A live call that is not a wait (no abort hook: a receive, a sleep, a join are waits), made
 *   while its thread runs, and still unanswered a turn after it started gets a row in the next
 *   batch, meta `markKey` = when it started (`raiment show` lists them); its outcome's batch
 *   deletes it. A call answered within its turn (most are) writes nothing. It costs a call that
 *   is not a batch's own commit (under `sync`, an fsync) when no other batch comes meanwhile. A
 *   weave killed before that commit (~ms after the call's start) leaves no row: that window stays.
 * - A thread resumed with rows (`attachMarks`) has them as its weft's marks until it has asked
 *   for each again: meanwhile `patch.patched()` and the other markers answer as the code before
 *   them went (the thread was past them), the call of a mark is made again with its call id (its
 *   row is deleted with its outcome), and a call of the same method with other arguments (or
 *   another ordinal) is a divergence: the call in flight may have been made.
 * - A thread's end (a kill, a continue-as-new, a move) deletes what rows it has left, and no call
 *   it started is marked after (`dropMarks`, in the end's batch). A move carries them in its
 *   record: the weave it goes to writes them in its arrival's batch (`arrivedMarks`).
 * - While no weft of the process has marks, the call path pays one integer test (`pending`); a
 *   weft stopped or detached with marks left lets go of them (`forget`), as its thread's rows
 *   stay for the run that resumes it.
 * - Marks never asked for again (the new code makes no such call) keep the thread's markers
 *   answering as the old code went until it ends: the conservative side.
 */
import type { DivergenceDetail } from './errors.js'
import type { Journal } from './journal.js'
import type { Divergence } from './weft-divergence.js'
import { describeKey } from './replay-record.js'

/** What the journal marks as in flight (a Call). */
export interface InFlight {
  readonly threadId: string
  readonly key: string
  readonly ord: number
  readonly answered: boolean
  readonly abortHook: unknown
  /** When the library was asked (ms since the epoch): the row's value. */
  readonly started: number
}

/**
 * The calls with a row, until their outcome is recorded: a set, not a field of each call (a
 * thread waiting in memory holds its call; the idle thread's bytes are counted). While none has
 * been marked in the process, `isMarked` is one integer test.
 */
const markedCalls = new WeakSet<object>()
let everMarked = 0

function setMarked(c: object): void {
  markedCalls.add(c)
  everMarked = 1
}

/** Whether call `c` has a row (its outcome's batch deletes it: `unmark`). */
export function isMarked(c: object): boolean {
  return everMarked !== 0 && markedCalls.has(c)
}

const PREFIX = 'inflight:'

/**
 * The meta key of a call in flight: `inflight:<length of the thread id>:<thread>:<ord>:<key>`
 * (a chosen thread id may hold ':'; its length tells where it ends).
 */
export function markKey(thread: string, ord: number, key: string): string {
  return `${threadPrefix(thread)}${ord}:${key}`
}

function threadPrefix(thread: string): string {
  return `${PREFIX}${thread.length}:${thread}:`
}

/** Whether a batch about to commit marks `c`: started live, unanswered, not a wait. */
export function marks(c: InFlight): boolean {
  return !c.answered && c.abortHook === null && !isMarked(c)
}

/** By journal: its threads with rows written and not yet deleted, with how many (their end deletes what is left). */
const rowsBy = new WeakMap<object, Map<string, number>>()

function rowsOf(journal: object): Map<string, number> {
  let m = rowsBy.get(journal)
  if (m === undefined) rowsBy.set(journal, (m = new Map<string, number>()))
  return m
}

function count(journal: object, thread: string, by: number): void {
  const rows = rowsOf(journal)
  const n = (rows.get(thread) ?? 0) + by
  if (n <= 0) rows.delete(thread)
  else rows.set(thread, n)
}

/** `c` is marked in the batch `journal` is writing. */
export function marked(journal: object, c: InFlight): void {
  setMarked(c)
  count(journal, c.threadId, 1)
}

/** `c`'s outcome is recorded: its row goes in that batch. */
export function unmark(journal: Journal, c: InFlight): void {
  markedCalls.delete(c)
  journal.queueMetaDelete(markKey(c.threadId, c.ord, c.key))
  count(journal, c.threadId, -1)
}

/**
 * The thread has ended (or its run has: it continues as new, it moves away): its rows left (calls
 * let go of, marks never asked for again) go in the end's batch, and the calls it started that a
 * batch has not marked yet are not marked.
 */
export function dropMarks(journal: Journal, thread: string, weft: object): void {
  forget(weft)
  journal.notStarted(thread)
  if (!rowsOf(journal).delete(thread)) return
  const stmt = (deletes.get(journal) ?? deletes.set(journal, journal.db.prepare('DELETE FROM meta WHERE k > ? AND k < ?')).get(journal))!
  // Every key of the thread's prefix lies between it and the prefix with ';' (after ':') last.
  const prefix = threadPrefix(thread)
  journal.queue(stmt, [prefix, `${prefix.slice(0, -1)};`])
}
const deletes = new WeakMap<Journal, ReturnType<Journal['db']['prepare']>>()

/** Counts the rows of a journal by thread, as it opens (the threads with some get their marks as they resume). */
export function loadMarks(journal: Journal): void {
  const rows = rowsOf(journal)
  rows.clear()
  for (const [rest] of journal.metaWithPrefix(PREFIX)) {
    const i = rest.indexOf(':')
    const thread = rest.slice(i + 1, i + 1 + Number(rest.slice(0, i)))
    rows.set(thread, (rows.get(thread) ?? 0) + 1)
  }
}

/** Marks not yet asked for again, by weft. */
const byWeft = new WeakMap<object, Set<string>>()
let pending = 0

/**
 * `weft` replays thread `thread`'s record (it resumes, wakes, or moves to reloaded code): the
 * thread's rows, if it has any, are its marks.
 */
export function attachMarks(journal: Journal, weft: object, thread: string): void {
  if (rowsOf(journal).has(thread)) giveMarks(weft, marksIn(journal, thread))
}

/**
 * Thread `thread` moved here with `calls` in flight (its move record carries its rows): their rows
 * go in its arrival's batch, and they are `weft`'s marks, as at a resume.
 */
export function arrivedMarks(journal: Journal, weft: object | null, thread: string, calls: ReadonlyArray<{ key: string; ord: number; started: number }>): void {
  for (const c of calls) journal.queueMeta(markKey(thread, c.ord, c.key), String(c.started))
  count(journal, thread, calls.length)
  // (None for a thread that waits here for its type: the weft made when it runs reads the rows.)
  if (weft !== null) giveMarks(weft, new Set(calls.map((c) => `${c.ord}:${c.key}`)))
}

/** The calls thread `thread` has in flight as the journal says, with when each started (`raiment show`). */
export function inFlightCalls(journal: Journal, thread: string): Array<{ key: string; ord: number; started: number }> {
  return journal.metaWithPrefix(threadPrefix(thread)).map(([rest, v]) => {
    const i = rest.indexOf(':')
    return { key: rest.slice(i + 1), ord: Number(rest.slice(0, i)), started: Number(v) }
  })
}

/** The calls thread `thread` has in flight, as the journal says now (`<ord>:<key>`). */
export function marksIn(journal: Journal, thread: string): Set<string> {
  return new Set(inFlightCalls(journal, thread).map((c) => `${c.ord}:${c.key}`))
}

/** `weft` replays a record whose thread had `set` in flight (a check's replay is given them so too). */
export function giveMarks(weft: object, set: Set<string>): void {
  if (set.size === 0) return
  if (!byWeft.has(weft)) pending++
  byWeft.set(weft, set)
}

/** The marks `weft` has left, if any (one integer test while no weft has). */
export function marksOf(weft: object): Set<string> | undefined {
  return pending === 0 ? undefined : byWeft.get(weft)
}

/** A live call, as in-flight marks see it. */
interface Asked {
  readonly lib: { readonly markers: ReadonlyMap<string, unknown> | null; keyPrefix(method: string): string }
  readonly method: string
  readonly key: string
  readonly ord: number
}

/**
 * A live call of a weft with marks: 'marker' (a patch marker: it answers as the code before it
 * went, as the thread was past it), 'go' (one of them, made again with its call id, its row kept
 * until its outcome; or a call of another method), or the mark of its method it does not match
 * (other arguments, or another ordinal: a divergence, `inFlightDivergence`).
 */
export function inFlightCall(weft: object, marks: Set<string>, c: Asked): 'marker' | 'go' | { key: string; ord: number } {
  if (c.lib.markers !== null && c.lib.markers.has(c.method)) return 'marker'
  if (marks.delete(`${c.ord}:${c.key}`)) {
    setMarked(c)
    if (marks.size === 0) forget(weft)
    return 'go'
  }
  const prefix = c.lib.keyPrefix(c.method)
  for (const m of marks) {
    const i = m.indexOf(':')
    if (m.startsWith(prefix, i + 1)) return { key: m.slice(i + 1), ord: Number(m.slice(0, i)) }
  }
  return 'go'
}

/** The divergence of call `c` (the thread's `index`th live entry) made where `mark` was in flight. */
export function inFlightDivergence(mark: { key: string; ord: number }, c: { key: string; ord: number }, index: number, made: DivergenceDetail['made']): Divergence {
  return {
    what: `${describeKey(mark.key)} (ordinal ${mark.ord}) was in flight when its weave stopped, its outcome never recorded (it may have been made), and the thread now makes ${describeKey(c.key)} (ordinal ${c.ord}) instead.`,
    detail: { kind: 'unexpected', index, recorded: { seq: -1, key: mark.key, ord: mark.ord }, ...(made !== undefined ? { made } : {}) },
  }
}

/** `weft` has no marks left (asked for again, or moot: it ended, or went on past them under `onDivergence: 'continue'`). */
export function forget(weft: object): void {
  if (pending > 0 && byWeft.delete(weft)) pending--
}

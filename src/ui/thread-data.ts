/**
 * What the UI reads of one thread for its page (src/ui/thread-page.ts): a page of its journal,
 * its children, its conversation, its mailbox, its links and monitors. Read as src/ui/data.ts
 * says: read-only, in one snapshot, a bounded number of rows.
 */
import { callIdOfRow } from '../call-context.js'
import type { DumpEntry } from '../dump.js'
import { type ErrorRecord } from '../error-records.js'
import type { Journal, ThreadRow } from '../journal.js'
import { decodeArgsShown, inFlightOf, threadView, type InFlightView, type ThreadView } from '../cli/records.js'
import { splitKey } from '../weft.js'
import { hasTable } from '../passivation/listing.js'
import { attemptsByCall, type AttemptView } from '../retry/view.js'
import { decodeSafe } from '../cli/records.js'
import { callCount, item, journalExtent, namesOf, type Journals, type ThreadItem } from './data.js'
import { Cut, decodeBounded } from './values.js'
import type { LiveWaits } from '../passivation/live-waits.js'

/**
 * One journaled call as the timeline shows it: a dump's entry, and its call id. Its arguments and
 * outcome may be a `Cut` (too long to decode for a page: src/ui/values.ts).
 */
export interface CallItem extends Omit<DumpEntry, 'error'> {
  error?: ErrorRecord | Cut
  callId: string
  /** Its failed attempts, when it was retried (docs/retries.md). */
  attempts?: Attempt[]
}

/** A failed attempt; its error may be a `Cut`. */
export type Attempt = Omit<AttemptView, 'error'> & { error: ErrorRecord | Cut }

/** A call with failed attempts and no outcome: waiting for its next attempt, or never answered. */
export interface Unanswered {
  call: string
  callId: string
  attempts: Attempt[]
}

export interface Watch {
  target: string
  watcher: string
  kind: string
}

export interface InboxItem {
  n: number
  sender: string | null
  at: number
  message: unknown
}

/** A message in the thread's conversation: sent (`to` a peer) or received (`from` a peer). */
export interface MessageItem {
  seq: number
  at: number
  dir: 'sent' | 'received'
  peer: string
  message: unknown
  /** For a send: whether it was delivered. */
  delivered?: boolean
}

export interface ThreadDetail {
  thread: ThreadView
  weave: string
  journal: string
  names: string[]
  /** A page of its journal, from `from` (a seq). */
  calls: CallItem[]
  /** How many calls it made. */
  total: number
  /** One past its last seq: where its pages end. */
  extent: number
  from: number
  pageSize: number
  children: Array<ThreadItem & { depth: number }>
  childrenCut: boolean
  messages: MessageItem[]
  messagesCut: boolean
  /** The first messages waiting in its mailbox (at most INBOX_SHOWN). */
  inbox: InboxItem[]
  /** How many wait there, counted up to INBOX_COUNTED (more: INBOX_COUNTED + 1). */
  inboxCount: number
  watches: Watch[]
  /**
   * Calls with failed attempts and no outcome: a running thread's wait for their next attempt
   * (`raiment show`'s "in flight"); an ended thread's calls it ended in the wait of ("never
   * answered").
   */
  unanswered: Unanswered[]
  /** Calls asked of their library and not answered yet, as the journal says (src/in-flight.ts; `raiment show`'s "in flight"). */
  inFlight: InFlightView[]
  /** A running thread in memory: what it waits for now, as the weave running it says (src/ui/thread-waits.ts); set by the server. */
  waiting?: LiveWaits | null
}

/** The largest number of entries of a thread's journal the thread page shows at once. */
export const CALL_PAGE = 200
/** The largest number of descendants and messages the thread page shows. */
const CHILDREN_MAX = 500
const MESSAGES_MAX = 300
/** The messages of its mailbox the page shows, and how far it counts them (an index range). */
export const INBOX_SHOWN = 200
export const INBOX_COUNTED = 10_000

function argsOf(text: string): unknown[] {
  try {
    return decodeArgsShown(text)
  } catch {
    return [text]
  }
}

/** How far a call's start may be recorded before its first attempt's, by another weave's clock (a thread that moved). */
const CLOCK_SLACK_MS = 60_000
/** How many entries a page looks at, at most, for the outcomes of retried calls off the page: all at once, */
const SCAN_MAX = 20_000
/** then for each call left (at most ONE_BY_ONE of them), from its last failed attempt on. */
const SCAN_ONE = 2_000
const ONE_BY_ONE = 50

/**
 * The failed attempts of a thread's calls, by call id (`raiment show` reads them as
 * src/retry/view.ts `threadAttempts` does). A journal older than retries has none.
 */
function attemptsOf(j: Journal, id: string): Map<string, Attempt[]> {
  if (!hasTable(j.db, 'retry_attempts')) return new Map()
  return attemptsByCall<ErrorRecord | Cut>(j, id, (text) => decodeBounded(text, decodeSafe))
}

/**
 * Of `left` (attempts of calls not on the page), those of calls with no outcome in the journal.
 * Only a thread of several pages reads its other entries' keys for it, and only while some are left.
 */
function withoutOutcome(j: Journal, row: ThreadRow, left: Map<string, Attempt[]>, wholeJournalShown: boolean): Unanswered[] {
  if (left.size > 0 && !wholeJournalShown) {
    // Only entries that can be these calls' outcomes are hashed into call ids: of the methods
    // retried, and started no earlier than the first attempt (less a slack for the clock of a
    // weave the thread moved from), at most SCAN_MAX of them: a page stays cheap whatever the
    // record (past that, a call answered among the rest would be listed as unanswered).
    let scanned = 0
    let since = Infinity
    const names = new Set<string>()
    for (const list of left.values()) for (const a of list) {
      names.add(a.call)
      since = Math.min(since, a.started)
    }
    const entries = j.db.prepare('SELECT key, ord FROM journal WHERE thread = ? AND key >= ? AND key < ? AND started >= ?')
    for (const name of names) {
      for (const e of entries.iterate(row.id, `${name}:`, `${name};`, since - CLOCK_SLACK_MS) as IterableIterator<{ key: string; ord: number }>) {
        left.delete(callIdOfRow(row, e.key, e.ord))
        if (left.size === 0 || ++scanned >= SCAN_MAX) break
      }
      if (left.size === 0 || scanned >= SCAN_MAX) break
    }
    // Calls still left past the cap: each looked for from its own last failed attempt on (its
    // outcome, if any, started after it), a few entries each: an answered call of a method
    // called often between two retries is found all the same.
    let calls = 0
    for (const [callId, attempts] of scanned >= SCAN_MAX ? [...left] : []) {
      if (++calls > ONE_BY_ONE) break
      let after = -Infinity
      for (const a of attempts) after = Math.max(after, a.ended)
      let n = 0
      for (const e of entries.iterate(row.id, `${attempts[0]!.call}:`, `${attempts[0]!.call};`, after - CLOCK_SLACK_MS) as IterableIterator<{ key: string; ord: number }>) {
        if (callIdOfRow(row, e.key, e.ord) === callId) {
          left.delete(callId)
          break
        }
        if (++n >= SCAN_ONE) break
      }
    }
  }
  return [...left].map(([callId, attempts]) => ({ call: attempts[0]!.call, callId, attempts }))
}

/** Entries `from`.. (at most `limit`) of a thread, in completion order; `attempts` loses those of the calls returned. */
function callPage(j: Journal, row: ThreadRow, from: number, limit: number, attempts: Map<string, Attempt[]>): CallItem[] {
  const cols = 'seq, key, ord, ok, outcome, started, duration'
  const id = row.id
  const main = j.db.prepare(`SELECT ${cols} FROM journal_main WHERE thread = ? AND seq >= ? ORDER BY seq LIMIT ?`).all(id, from, limit) as EntryRow[]
  const rest = limit - main.length
  const tail = rest > 0 ? (j.db.prepare(`SELECT ${cols} FROM journal_tail WHERE thread = ? AND seq >= ? ORDER BY seq LIMIT ?`).all(id, from, rest) as EntryRow[]) : []
  return main.concat(tail).map((e) => {
    const { call, args } = splitKey(e.key)
    // Values too long to show whole are not decoded (src/ui/values.ts): a page of them stays small.
    const shownArgs = decodeBounded(args, argsOf)
    const c: CallItem = {
      seq: e.seq,
      call,
      args: shownArgs instanceof Cut ? [shownArgs] : (shownArgs as unknown[]),
      ord: e.ord,
      ok: e.ok === 1,
      started: e.started,
      duration: e.duration,
      callId: callIdOfRow(row, e.key, e.ord),
    }
    if (e.ok === 1) c.value = decodeBounded(e.outcome, decodeSafe)
    else c.error = decodeBounded(e.outcome, decodeSafe) as ErrorRecord | Cut
    const tried = attempts.get(c.callId)
    if (tried !== undefined) {
      c.attempts = tried
      attempts.delete(c.callId)
    }
    return c
  })
}

interface EntryRow {
  seq: number
  key: string
  ord: number
  ok: number
  outcome: string
  started: number
  duration: number
}

/** Its descendants, depth first in spawn order, at most CHILDREN_MAX. */
function descendants(j: Journal, id: string): { rows: Array<ThreadItem & { depth: number }>; cut: boolean } {
  const kids = j.db.prepare('SELECT * FROM threads WHERE parent = ? ORDER BY rowid LIMIT ?')
  const rows: Array<ThreadItem & { depth: number }> = []
  let cut = false
  const visit = (parent: string, depth: number): void => {
    // all(), not iterate(): the statement is run again, for the grandchildren, inside the loop.
    for (const r of kids.all(parent, CHILDREN_MAX + 1) as ThreadRow[]) {
      if (rows.length >= CHILDREN_MAX) {
        cut = true
        return
      }
      rows.push({ ...item(j, r), depth })
      visit(r.id, depth + 1)
    }
  }
  visit(id, 0)
  return { rows, cut }
}

/**
 * What it sent and received in its calls `from`..`to` (seq), from its journal: `mailbox.send`
 * calls, and the messages it took.
 */
function conversation(j: Journal, id: string, from: number, to: number): { messages: MessageItem[]; cut: boolean } {
  const out: MessageItem[] = []
  const sql =
    "SELECT seq, key, ok, outcome, started FROM journal_main WHERE thread = ? AND seq >= ? AND seq < ? AND (key >= 'mailbox.' AND key < 'mailbox/') " +
    "UNION ALL SELECT seq, key, ok, outcome, started FROM journal_tail WHERE thread = ? AND seq >= ? AND seq < ? AND (key >= 'mailbox.' AND key < 'mailbox/') ORDER BY seq"
  for (const e of j.db.prepare(sql).iterate(id, from, to, id, from, to) as IterableIterator<EntryRow>) {
    if (out.length >= MESSAGES_MAX) return { messages: out, cut: true }
    if (e.ok !== 1) continue
    const { call, args } = splitKey(e.key)
    if (call === 'mailbox.send') {
      const [to, message] = argsOf(args)
      const r = decodeSafe(e.outcome) as { delivered?: boolean; to?: string } | undefined
      out.push({ seq: e.seq, at: e.started, dir: 'sent', peer: r?.to ?? String(to), message, delivered: r?.delivered !== false })
    } else if (call === 'mailbox.take' || call === 'mailbox.takeNumber') {
      const r = decodeSafe(e.outcome) as { from?: string | null; message?: unknown; timedOut?: boolean } | undefined
      if (r === undefined || r === null || typeof r !== 'object' || r.timedOut) continue
      out.push({ seq: e.seq, at: e.started, dir: 'received', peer: r.from ?? '(outside)', message: r.message })
    }
  }
  return { messages: out, cut: false }
}

/** A thread with a page of its journal from `from` (a seq), or null when no journal has it. */
export function threadDetail(journals: Journals, id: string, from: number): ThreadDetail | null {
  const i = journals.find(id)
  if (i < 0) return null
  return journals.read(i, (j) => {
    const row = j.thread(id)!
    // Pages go by seq (completion order, from 0): the last seq bounds them, read from the index.
    const extent = journalExtent(j, id) - 1
    const total = callCount(j, row, extent + 1)
    const start = Math.max(0, Math.min(from, extent))
    const { rows: children, cut: childrenCut } = descendants(j, id)
    // The conversation of the calls on this page (all of it, for a thread of one page).
    const { messages, cut: messagesCut } = conversation(j, id, start, start + CALL_PAGE)
    const inbox = (j.db.prepare('SELECT n, sender, at, body FROM inbox WHERE thread = ? ORDER BY n LIMIT ?').all(id, INBOX_SHOWN) as Array<{ n: number; sender: string | null; at: number; body: string }>).map(
      (m) => ({ n: m.n, sender: m.sender, at: m.at, message: decodeBounded(m.body, decodeSafe) }),
    )
    const watches = j.db.prepare('SELECT target, watcher, kind FROM watches WHERE target = ? OR watcher = ? ORDER BY kind, target, watcher').all(id, id) as Watch[]
    const attempts = attemptsOf(j, id)
    const calls = callPage(j, row, start, CALL_PAGE, attempts)
    const inboxCount = inbox.length < INBOX_SHOWN ? inbox.length : (j.db.prepare('SELECT count(*) FROM (SELECT 1 FROM inbox WHERE thread = ? LIMIT ?)').pluck().get(id, INBOX_COUNTED + 1) as number)
    return {
      thread: threadView(row, j, total),
      weave: j.weaveId,
      journal: journals.files[i]!,
      names: namesOf(j, id),
      calls,
      total,
      extent: extent + 1,
      from: start,
      pageSize: CALL_PAGE,
      children,
      childrenCut,
      messages,
      messagesCut,
      inbox,
      inboxCount,
      watches,
      unanswered: withoutOutcome(j, row, attempts, start === 0 && calls.length < CALL_PAGE),
      inFlight: inFlightOf(j, id),
    }
  })
}

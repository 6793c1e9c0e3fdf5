/**
 * The read-only commands: `ps`, `show`, `logs`, `dump`. They open the journal read-only, so they can run
 * beside a live weave and never create or change a file.
 */
import { successionOf } from '../successions.js'
import { callCounts } from '../journal-queries.js'
import { existsSync, writeFileSync } from 'node:fs'
import { dumpText, makeDump, RecordIncomplete } from '../dump.js'
import { InvalidArgument } from '../errors.js'
import { withProjectClasses } from '../project-classes.js'
import type { ThreadRow, ThreadStatus } from '../journal.js'
import { age, errorText, isoTime, note, openReadonly, parseLimit, plural, say, short, table, type DbOptions } from './common.js'
import { attemptErrorText, type AttemptView } from '../retry/view.js'
import { attemptJson, callJson, inFlightJson, jsonValue, threadJson, threadView, threadWithCalls } from './records.js'
import { dumpLine, showProgress } from './progress.js'
import { passivatedIds, waitText } from '../passivation/listing.js'
import { parkedSince, type Parked } from '../parked-listing.js'
import { oldCodeThreads } from '../old-code.js'
import { askWaits, heldInMemory, waitingJson, waitingStatus } from './show-waits.js'

const STATUSES: readonly ThreadStatus[] = ['pending', 'running', 'done', 'failed', 'killed', 'moved']

export interface PsOptions extends DbOptions {
  status?: string
  type?: string
  tree?: boolean
  limit?: string
  json?: boolean
}

/** `raiment ps`: one row per thread, oldest first; `--limit N` the newest N. */
export function ps(o: PsOptions): number {
  const asked = o.status === undefined ? undefined : parseStatuses(o.status)
  // `passivated`: running threads out of memory (docs/passivation.md); `running` lists them too.
  const onlyAsleep = asked !== undefined && asked.includes('passivated') && !asked.includes('running')
  const status = asked?.map((s): ThreadStatus => (s === 'passivated' ? 'running' : s))
  const limit = o.limit === undefined ? undefined : parseLimit(o.limit)
  const journal = openReadonly(o.db)
  try {
    const asleep = status === undefined || status.includes('running') ? passivatedIds(journal.db) : new Set<string>()
    const parked = status === undefined || status.includes('running') || status.includes('pending') ? parkedSince(journal) : new Map<string, Parked>()
    const oldCode = status === undefined || status.includes('running') ? oldCodeThreads(journal) : new Map<string, string>()
    const listed = journal.threads({ ...(status ? { status } : {}), ...(o.type ? { type: o.type } : {}) })
    const all = onlyAsleep ? listed.filter((r) => r.status !== 'running' || asleep.has(r.id)) : listed
    const rows = limit === undefined || limit >= all.length ? all : all.slice(all.length - limit)
    // An ended thread's count is in its row; a live one's, and one that moved away (its record stays here), are counted.
    const counted = (r: ThreadRow): boolean => r.status === 'running' || r.status === 'pending' || r.status === 'moved'
    const live = rows.some(counted) ? callCounts(journal.db) : new Map<string, number>()
    const count = (r: ThreadRow): number => (counted(r) ? (live.get(r.id) ?? 0) : r.calls)
    if (o.json) {
      say(JSON.stringify(rows.map((r) => threadJson(threadView(r, journal, count(r))))))
      return 0
    }
    if (rows.length === 0) {
      say(o.status || o.type ? 'no threads match' : `no threads in ${o.db}`)
      return 0
    }
    const calls = (r: ThreadRow): string => String(count(r))
    const now = Date.now()
    const ordered = o.tree ? treeOrder(rows) : rows.map((row) => ({ row, depth: 0 }))
    const header = ['ID', 'TYPE', 'STATUS', 'AGE', 'CALLS', ...(o.tree ? [] : ['PARENT'])]
    const lines = table(
      header,
      ordered.map(({ row, depth }) => [
        '  '.repeat(depth) + row.id,
        row.type,
        // A row of a thread killed while no weave ran stays until the next weave deletes it.
        parked.has(row.id) && (row.status === 'running' || row.status === 'pending')
          ? parked.get(row.id)!.diverges !== undefined
            ? 'waiting for code'
            : 'waiting for type'
          : row.status === 'running' && asleep.has(row.id)
            ? 'passivated'
            : row.status === 'running' && oldCode.has(row.id)
              ? 'running (old code)'
              : row.status,
        age(row.created, now),
        calls(row),
        ...(o.tree ? [] : [row.parent ?? '-']),
      ]),
    )
    for (const l of lines) say(l)
    if (rows.length < all.length) note(`the newest ${rows.length} of ${plural(all.length, 'thread')}; --limit N shows more`)
    return 0
  } finally {
    journal.close()
  }
}

function parseStatuses(text: string): Array<ThreadStatus | 'passivated'> {
  const list = text.split(',').map((s) => s.trim()).filter(Boolean)
  for (const s of list) {
    if (!STATUSES.includes(s as ThreadStatus) && s !== 'passivated') {
      throw new InvalidArgument(`--status must be one of ${STATUSES.join(', ')}, passivated (or several, comma-separated), got '${s}'`)
    }
  }
  return list as Array<ThreadStatus | 'passivated'>
}

/** Children right under their parent, indented one step per generation. */
function treeOrder(rows: ThreadRow[]): Array<{ row: ThreadRow; depth: number }> {
  const ids = new Set(rows.map((r) => r.id))
  const children = new Map<string, ThreadRow[]>()
  const roots: ThreadRow[] = []
  for (const r of rows) {
    if (r.parent !== null && ids.has(r.parent)) {
      const list = children.get(r.parent) ?? []
      list.push(r)
      children.set(r.parent, list)
    } else roots.push(r)
  }
  const out: Array<{ row: ThreadRow; depth: number }> = []
  const visit = (r: ThreadRow, depth: number): void => {
    out.push({ row: r, depth })
    for (const c of children.get(r.id) ?? []) visit(c, depth + 1)
  }
  for (const r of roots) visit(r, 0)
  return out
}

export interface ShowOptions extends DbOptions {
  full?: boolean
  json?: boolean
}

/** How many characters of a value a row of `show` holds without --full. */
const CELL = 36

/**
 * `raiment show ID`: the thread's journal as a timeline, and how many messages wait in its mailbox;
 * `--full` shows values whole, `--json` prints `{thread, calls, mailbox, waiting}` (see records.ts).
 * A running thread held in memory: the weave running on the journal, if any, is asked what it
 * waits for now (src/cli/show-waits.ts; within a second, else left out).
 */
export async function show(id: string, o: ShowOptions): Promise<number> {
  const journal = openReadonly(o.db)
  try {
    const { thread: t, calls, retrying, inFlight } = threadWithCalls(journal, id)
    // Delivered here and not received yet (a selective receive that matches none of them waits on).
    const mailbox = journal.db.prepare('SELECT count(*) FROM inbox WHERE thread = ?').pluck().get(id) as number
    // In memory (not passivated, parked, kept on old code, or moved): the weave can say what it waits for.
    const waiting = heldInMemory(t) ? await askWaits(o.db, journal.owned(), id) : null
    if (o.json) {
      say(JSON.stringify({ thread: threadJson(t), calls: calls.map(callJson), mailbox, waiting: waitingJson(waiting), ...(retrying.length > 0 ? { retrying: retrying.map(attemptJson) } : {}), ...(inFlight.length > 0 ? { inFlight: inFlight.map(inFlightJson) } : {}) }))
      return 0
    }
    let cut = false
    const cell = (v: unknown, max: number): string => {
      const whole = short(v, Infinity)
      if (o.full || whole.length <= max) return whole
      cut = true
      return short(whole, max)
    }
    const ended = t.ended === null ? '' : `  ended ${isoTime(t.ended)}`
    const parent = t.parent === null ? '' : `  parent ${t.parent}`
    const status =
      t.waitingForCode !== undefined
        ? `${t.status}, waiting for code that replays its record (it ${t.waitingForCode.diverges}; since ${isoTime(t.waitingForCode.since)}): fix the code and reload it or restart, or raiment fork, raiment kill it, or restart with --on-divergence continue`
        : t.waitingForType !== undefined
        ? `${t.status}, waiting for its type (the last weave could not run '${t.type}': see its RAIMENT_THREADS_WAIT_FOR_TYPE warning; since ${isoTime(t.waitingForType)})`
        : t.oldCode !== undefined
          ? `running (old code): a reload kept it on the code it started with (${t.oldCode}); a restart or a crash resumes it under the file on disk, where it diverges`
          : t.movedTo !== undefined
          ? `moved to weave ${t.movedTo}`
          : waiting !== null
          ? waitingStatus(waiting)
          : t.passivated === undefined
          ? t.status
          : `passivated (waiting for ${waitText(t.passivated)}, since ${isoTime(t.passivated.since)})`
    say(`${t.id}  ${t.type}  ${status}  created ${isoTime(t.created)}${ended}${parent}`)
    say(`params ${cell(t.params, 200)}`)
    if (t.continued !== undefined) say(`continued as new ${t.continued} time${t.continued === 1 ? '' : 's'}: the calls below are its current run's`)
    if (calls.length < t.calls) say(missingCalls(t.calls, calls.length, journal.meta('repl_epoch') !== undefined))
    if (t.calls === 0) say('(no calls recorded)')
    if (calls.length > 0) {
      const lines = table(
        ['SEQ', 'STARTED', 'CALL', 'ARGS', 'OUTCOME', 'MS', 'OK', 'VIA'],
        calls.map((c) => [
          String(c.seq),
          isoTime(c.started),
          c.call,
          cell(c.args.length === 1 ? c.args[0] : c.args, CELL),
          cell(c.ok ? c.value : errorText(c.error ?? {}), CELL),
          c.duration.toFixed(1),
          c.ok ? 'ok' : 'err',
          c.via ?? '',
        ]),
      )
      for (const l of lines) say(l)
    }
    const attempt = (where: string, a: AttemptView, next = true): void =>
      say(`${where}  attempt ${a.n}  ${isoTime(a.started)}  ${cell(attemptErrorText(a.error), 2 * CELL)}${next ? `  next at ${isoTime(a.due)}` : ''}`)
    const retried = calls.filter((c) => c.attempts !== undefined)
    if (retried.length > 0 || retrying.length > 0) say('failed attempts (retried):')
    for (const c of retried) for (const a of c.attempts!) attempt(`  seq ${c.seq} ${c.call}`, a)
    // A thread that ended (killed, failed) in a call's retry wait left the call unanswered: no
    // next attempt. One that moved took the wait with it: it goes on there.
    const live = t.status === 'running'
    const where = live ? 'in flight' : t.status === 'moved' ? `in flight on weave ${t.movedTo ?? '?'} (moved there)` : `never answered (the thread ${t.status})`
    for (const a of retrying) attempt(`  ${where} ${a.call}`, a, live)
    // Asked of their library, not answered (or let go of by a weave that stopped): made again, with their call ids, when it resumes.
    for (const c of inFlight) say(`in flight  ${c.call}  ${cell(c.args.length === 1 ? c.args[0] : c.args, CELL)}  since ${isoTime(c.started)}${live ? '' : `  (never answered: the thread ${t.status})`}`)
    if (mailbox > 0) say(`mailbox: ${plural(mailbox, 'message')} waiting, not received yet`)
    const succession = successionOf(journal.db, id)
    if (succession?.successor != null) say(`its messages and names went to its successor ${succession.successor} (restarted by ${succession.keeper})`)
    else if (succession?.held === true) say(`its messages and names are held for its successor: ${succession.keeper} restarts it (what is sent to it or its names meanwhile waits)`)
    if (t.status === 'done') say(`result ${cell(t.result, 200)}`)
    else if (t.status === 'failed') say(`error ${cell(errorText(t.error ?? {}), 200)}`)
    if (cut) note(`values longer than a column are cut (…); --full shows them whole, --json as JSON`)
    return 0
  } finally {
    journal.close()
  }
}

export interface LogsOptions extends DbOptions {
  json?: boolean
}

/**
 * `raiment logs ID`: the thread's log lines, from its record (the `log` library's calls), as the
 * weave printed them; `--json`, one object a line. Those of its current run (continued as new: the
 * runs before left no record).
 */
export function logs(id: string, o: LogsOptions): number {
  const journal = openReadonly(o.db)
  try {
    const { thread: t, calls } = threadWithCalls(journal, id)
    if (t.continued !== undefined && !o.json) note(`${id} continued as new ${plural(t.continued, 'time')}: the lines below are its current run's`)
    for (const c of calls) {
      if (!c.call.startsWith('log.')) continue
      const level = c.call.slice(4)
      const [message, fields] = c.args as [unknown, Record<string, unknown> | undefined]
      if (o.json) say(JSON.stringify({ seq: c.seq, at: isoTime(c.started), level, message, ...(fields !== undefined ? { fields: jsonValue(fields) } : {}) }))
      else say(`${isoTime(c.started)} ${level.padEnd(5)} ${String(message)}${fields !== undefined ? ` ${short(fields, Infinity)}` : ''}`)
    }
    return 0
  } finally {
    journal.close()
  }
}

/** `raiment dump ID [-o FILE]`. */
export interface DumpOptions extends DbOptions {
  output?: string
  threads: string
  ioLibs: string
}

export function dump(id: string, o: DumpOptions): Promise<number> {
  return withProjectClasses(() => dumpNow(id, o), `the record of ${id}`, o.threads, o.ioLibs)
}

function dumpNow(id: string, o: DumpOptions): number {
  const journal = openReadonly(o.db)
  let text: string
  // On a terminal, a large dump shows how far it has come (stderr), then the line goes.
  let done = 0
  let total = 0
  const shown = showProgress((ms) => dumpLine(done, total, ms), () => false)
  try {
    const d = makeDump(journal, id, (n, of) => {
      done = n
      total = of
      // The last tick: the entries are decoded, the text is written next (no tick there).
      shown.draw(n === of)
    })
    // An ended thread's row counts its calls: fewer here, and its dump would replay to a divergence.
    const made = journal.thread(id)?.calls ?? 0
    if (d.entries.length < made) {
      throw new RecordIncomplete(`cannot dump ${id} from ${o.db}: ${missingCalls(made, d.entries.length, journal.meta('repl_epoch') !== undefined).slice(1, -1)}; its dump would not replay. Nothing was written`)
    }
    text = dumpText(d)
  } finally {
    shown.stop()
    journal.close()
  }
  if (o.output === undefined || o.output === '-') {
    process.stdout.write(text)
  } else {
    const replaced = existsSync(o.output)
    writeFileSync(o.output, text)
    note(`wrote the dump of ${id} to ${o.output}${replaced ? ' (in place of the file there)' : ''}`)
  }
  return 0
}

/**
 * Why an ended thread that made `made` calls has only `here` in this file: a file rebuilt from a
 * journal stream (`raiment restore`, a takeover) gets the calls of the threads live when the
 * stream's snapshot was taken, and of those that ran after, not the calls of those ended before.
 */
function missingCalls(made: number, here: number, replicated: boolean): string {
  const why = replicated ? ': it was rebuilt from a journal stream (raiment restore, a takeover), which carries the calls of live threads only; the file of the weave that ran this thread, or a dump of it, has them' : ''
  return `(${plural(made, 'call')} made; ${here === 0 ? 'none' : `only ${here}`} in this file${why})`
}

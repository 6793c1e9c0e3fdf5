/**
 * Passivation: a thread blocked in waits only (a receive, a sleep, a join) for `passivateAfter`
 * ms leaves memory; what wakes it is a row of the `passivated` table; when that fires (a message
 * to it, its due time, the end of the thread it joins, a kill, a linked exit) the weave rebuilds
 * it by the ordinary resume of its record, as after a crash of the weave.
 *
 * Invariants:
 * - A thread is passivated only when every call it has pending is a live wait, unanswered, and
 *   every outcome it was ever given has been released and is durable (early ones too: the weft
 *   is busy until they are, src/weft-pending.ts): its journal holds all it
 *   needs, and the waits it drops were never recorded (replay makes them again, with the same
 *   arguments: a timeout's deadline and a sleep's are computed from recorded times).
 * - Dropping a wait aborts it as a weave shutdown does: a take leaves the inbox untouched, a
 *   sleep leaves the sleepers' heap. Messages stay in the inbox (SQLite, or in memory while it
 *   holds messages the thread did not take), so nothing delivered is lost or taken twice.
 * - A row is written and deleted in the group commit; until its batch commits, `#overlay` holds
 *   it (or null: deleted), so a message arriving meanwhile still finds it.
 * - At most one run of a thread: a wake of a thread that is in memory is that run.
 * - Due times are of the weave's clock (src/time/), as the waits they end; how long a thread
 *   waits before it is passivated (`after`) is real time.
 */
import type Database from 'better-sqlite3'
import { decodeValue } from '../encoding.js'
import type { ThreadRow } from '../journal.js'
import type { Run, ThreadEnd, WeaveHost, WokenBy } from '../weave-types.js'
import type { Weft } from '../weft.js'
import { waitsOf, wakeOf, wakesFor, type Wake } from './waits.js'
import { continuedOf } from '../continue/continue.js'
import { CheckQueue } from './check-queue.js'
import { MAX_TIMER_MS } from '../durations.js'
import { timerAt } from '../time/timers.js'

type Stmt = Database.Statement<unknown[]>

/** How soon a thread found waiting but busy (a call of another kind in flight) is looked at again, at least. */
const RECHECK_MS = 10
/** How soon a thread found waiting on something passivation cannot wake it for is looked at again, at least. */
const UNROUTABLE_RECHECK_MS = 1_000

/** What passivation needs of the weave beyond its runs: to let a run go without an end. */
export interface PassivationHost extends WeaveHost {
  /** The run leaves memory (no end is recorded): its weft is detached already. */
  forget(run: Run): void
}

export class Passivation {
  readonly #host: PassivationHost
  readonly #after: number
  readonly #insert: Stmt
  readonly #delete: Stmt
  readonly #get: Stmt
  readonly #dueBy: Stmt
  readonly #minDue: Stmt
  readonly #joining: Stmt
  readonly #inbox: Stmt
  /** Rows written or deleted (null) in batches not yet committed. */
  readonly #overlay = new Map<string, Wake | null>()
  /** Who joins a passivated thread from this process (weave.join): handed to its run when it wakes. */
  readonly #joiners = new Map<string, Array<(end: ThreadEnd) => void>>()
  /** The last stamp given to a queued run (`Run.waitQueued`). */
  #stamps = 0
  /** Runs that started waiting (or were busy), with when to look whether they still do. */
  readonly #soon = new CheckQueue()
  /** Runs waiting on something no row can say, looked at again later (UNROUTABLE_RECHECK_MS). */
  readonly #later = new CheckQueue()
  #checkTimer: NodeJS.Timeout | null = null
  /** When the check's timer is armed for (Infinity: not armed). */
  #checkFor = Infinity
  /** What cancels the timer of the soonest due row (on the weave's clock), and the time it is armed for (Infinity: none). */
  #dueTimer: (() => void) | null = null
  #armedFor = Infinity
  #stopped = false
  /**
   * How many threads are passivated: rows as they will be once what is queued commits (counted
   * once at open, then kept as rows are written and forgotten), so a heartbeat reads no table.
   */
  #count: number

  /** `after`: how long (ms) a thread waits before it is passivated. */
  constructor(host: PassivationHost, after: number) {
    this.#host = host
    this.#after = after
    const db = host.weave.journal.db
    this.#insert = db.prepare('INSERT OR REPLACE INTO passivated (thread, due, mailbox, filter, joins, at) VALUES (?, ?, ?, ?, ?, ?)')
    this.#delete = db.prepare('DELETE FROM passivated WHERE thread = ?')
    this.#get = db.prepare('SELECT due, mailbox, filter, joins FROM passivated WHERE thread = ?').raw(true)
    this.#inbox = db.prepare('SELECT n, body FROM inbox WHERE thread = ? ORDER BY n').raw(true)
    this.#dueBy = db.prepare('SELECT thread FROM passivated WHERE due <= ? ORDER BY due').pluck()
    this.#minDue = db.prepare('SELECT min(due) FROM passivated').pluck()
    this.#joining = db.prepare('SELECT thread FROM passivated WHERE joins = ?').pluck()
    this.#count = db.prepare('SELECT count(*) FROM passivated').pluck().get() as number
    host.weave.messages.onStored = (thread, n, body) => this.#stored(thread, n, body)
    host.weave.on('thread-end', (end) => void this.#ended(end.id))
    // A thread of another weave ended, as its weave told a join here.
    host.weave.watches.onJoinEnd = (target) => this.#ended(target)
  }

  /**
   * The recorded threads to resume when the weave opens, in spawn order: those pending or running
   * that are not passivated, and the passivated ones whose wake has come while no weave ran (due,
   * a message in the inbox that wakes it, the joined thread ended). The others stay passivated,
   * those of a type this weave does not run too (woken, one waits for its type: src/weave-parked.ts).
   * Rows of threads that ended meanwhile (killed by the CLI while no weave ran) are deleted.
   */
  toResume(): ThreadRow[] {
    const db = this.#host.weave.journal.db
    // Rows of threads that ended while no weave ran (a kill by the CLI) go, through the overlay:
    // until that commits, a join of one must not wait for a wake that will never come.
    const gone = db.prepare("SELECT p.thread FROM passivated p JOIN threads t ON t.id = p.thread WHERE t.status NOT IN ('running', 'pending')").pluck().all() as string[]
    for (const id of gone) this.#forgetRow(id)
    // `filtered`: woken by nothing but messages in its inbox, each to be matched against its filter.
    const rows = db
      .prepare(
        `SELECT t.*, p.thread IS NOT NULL AS asleep, p.filter AS wakeFilter,
           p.filter IS NOT NULL AND coalesce(p.due <= @now, 0) = 0
             AND NOT (p.joins IS NOT NULL AND NOT EXISTS (SELECT 1 FROM threads j WHERE j.id = p.joins AND j.status IN ('running', 'pending'))) AS filtered
         FROM threads t LEFT JOIN passivated p ON p.thread = t.id
         WHERE t.status IN ('running', 'pending') AND (p.thread IS NULL OR p.due <= @now
           OR (p.mailbox = 1 AND EXISTS (SELECT 1 FROM inbox i WHERE i.thread = t.id))
           OR (p.joins IS NOT NULL AND NOT EXISTS (SELECT 1 FROM threads j WHERE j.id = p.joins AND j.status IN ('running', 'pending'))))
         ORDER BY t.rowid`,
      )
      .all({ now: this.#host.weave.clock.now() }) as Array<ThreadRow & { asleep: 0 | 1; wakeFilter: string | null; filtered: 0 | 1 }>
    const resume: ThreadRow[] = []
    for (const r of rows) {
      const { asleep, wakeFilter, filtered, ...row } = r
      if (filtered === 1 && !this.#inboxWakes(r.id, wakeFilter)) continue
      if (asleep === 1) this.#forgetRow(r.id)
      resume.push(row)
    }
    return resume
  }

  /** Whether a message in passivated thread `id`'s inbox (committed) wakes it. */
  #inboxWakes(id: string, filter: string | null): boolean {
    for (const [n, body] of this.#inbox.iterate(id) as IterableIterator<[number, string]>) if (wakesFor(filter, n, body)) return true
    return false
  }

  /** Arms the timer of the soonest due row (once the weave has resumed what it resumes). */
  start(): void {
    this.#arm()
  }

  stop(): void {
    this.#stopped = true
    if (this.#checkTimer !== null) clearTimeout(this.#checkTimer)
    this.#dueTimer?.()
    this.#checkTimer = this.#dueTimer = null
  }

  /** How many threads are passivated now (out of memory, a row says what wakes each). */
  get count(): number {
    return this.#count
  }

  /** Is thread `id` passivated (not in memory, a row says what wakes it)? */
  isPassivated(id: string): boolean {
    return this.#host.run(id) === undefined && this.#row(id) !== null
  }

  /** The passivated threads of thread type `type` (a reload wakes them to check them against its new code). */
  ofType(type: string): string[] {
    this.#host.weave.journal.flushNow()
    const ids = this.#host.weave.journal.db
      .prepare("SELECT p.thread FROM passivated p JOIN threads t ON t.id = p.thread WHERE t.type = ? AND t.status = 'running'")
      .pluck()
      .all(type) as string[]
    return ids.filter((id) => this.isPassivated(id))
  }

  /**
   * A weft's call started waiting: look in `after` ms whether its thread still only waits. A run
   * is queued once at a time (`run.waitQueued`, its entry's stamp), however often it waits meanwhile.
   */
  readonly onWait = (weft: Weft): void => {
    const run = this.#host.run(weft.threadId)
    if (run === undefined || run.weft !== weft || run.waitQueued !== 0) return
    this.#enqueue(run, Date.now() + this.#after)
  }

  /**
   * The run of thread `id`: in memory, or rebuilt now by replay of its record if it is passivated
   * (a kill, a linked exit); undefined when it is neither.
   */
  wake(id: string, by: WokenBy): Run | undefined {
    const run = this.#host.run(id)
    if (run !== undefined || this.#row(id) === null) return run
    return this.#wake(id, by)
  }

  /** For `weave.join` of a passivated thread: `fn` gets its end, once it wakes and ends; false if it is not passivated. */
  join(id: string, fn: (end: ThreadEnd) => void): boolean {
    if (!this.isPassivated(id)) return false
    const list = this.#joiners.get(id)
    if (list === undefined) this.#joiners.set(id, [fn])
    else list.push(fn)
    return true
  }

  /** Takes `fn` off passivated thread `id`'s joiners (its join was given up). */
  unjoin(id: string, fn: (end: ThreadEnd) => void): void {
    const list = this.#joiners.get(id)
    const i = list?.indexOf(fn) ?? -1
    if (i < 0) return
    list!.splice(i, 1)
    if (list!.length === 0) this.#joiners.delete(id)
  }

  // ---- passivating -----------------------------------------------------------------------------

  #enqueue(run: Run, at: number, later = false): void {
    this.#queue(run, at, later)
    this.#armCheck(at)
  }

  /** Queues `run` to be looked at `at`, under a new stamp (an entry of another stamp is left alone when due). */
  #queue(run: Run, at: number, later: boolean): void {
    // (Kept a small integer: a stamp repeats only after a billion entries, long gone by then.)
    run.waitQueued = this.#stamps = (this.#stamps % 0x3fffffff) + 1
    ;(later ? this.#later : this.#soon).push(run.id, run.waitQueued, at)
  }

  /** The check's timer for `at`, unless it is armed for then or sooner. */
  #armCheck(at: number): void {
    if (this.#stopped || (this.#checkTimer !== null && this.#checkFor <= at)) return
    if (this.#checkTimer !== null) clearTimeout(this.#checkTimer)
    this.#checkFor = at
    this.#checkTimer = setTimeout(this.#check, Math.min(Math.max(0, at - Date.now()), MAX_TIMER_MS))
  }

  readonly #check = (): void => {
    this.#checkTimer = null
    this.#checkFor = Infinity
    const now = Date.now()
    const again: Array<[Run, number, boolean]> = []
    const look = (id: string, stamp: number): void => {
      const run = this.#host.run(id)
      // Ended, or queued again since (another run of the thread, or a later entry): not this entry's.
      if (run === undefined || run.waitQueued !== stamp) return
      run.waitQueued = 0
      const next = this.#passivate(run, now)
      if (next !== null) again.push([run, next[0], next[1]])
    }
    this.#soon.takeDue(now, look)
    this.#later.takeDue(now, look)
    for (const [run, at, later] of again) this.#queue(run, at, later)
    const next = Math.min(this.#soon.next(), this.#later.next())
    if (next !== Infinity) this.#armCheck(next)
  }

  /**
   * Passivates `run` if it only waits, and has for `after` ms (since the latest of its waits
   * started). Returns when to look again (it waits, not for long enough yet, with other work in
   * flight, or on something no row can say: then `later`), or null (passivated, or not waiting).
   */
  #passivate(run: Run, now: number): [at: number, later: boolean] | null {
    const host = this.#host
    const weft = run.weft
    // A thread a reload kept on the code it started with stays: it would wake on the new code.
    if (host.run(run.id) !== run || run.ended || host.closed() || run.kept === true || run.moving === true) return null
    const calls = waitsOf(weft.pendingCalls())
    if (calls === null) return null
    if (calls === 'busy') return [now + Math.max(this.#after, RECHECK_MS), false]
    let since = 0
    for (const c of calls) since = Math.max(since, c.started)
    if (since + this.#after > now) return [since + this.#after, false]
    const messages = host.weave.messages
    const wake = wakeOf(calls, messages.inboxes.nextNumber())
    // It waits on something no row can say (a library's own wait): it may wait on nothing else
    // once that is done, with no new wait to make it looked at again, so look again later.
    if (wake === null) return [now + Math.max(this.#after, UNROUTABLE_RECHECK_MS), true]
    // The thread it joins has ended, and its end has not reached the join yet (a join of a thread
    // with no run here polls for its row): a row would wait for an end that came already.
    if (wake.joins !== null && joinedEnded(host.weave.journal.thread(wake.joins)?.status)) return [now + Math.max(this.#after, RECHECK_MS), false]
    const id = run.id
    if (run.joiners !== null) this.#joiners.set(id, run.joiners)
    run.joiners = null
    weft.detach()
    messages.unload(id)
    this.#write(id, wake)
    // Forgotten last: its 'thread-passivated' listeners may send to it, and must find its row.
    host.forget(run)
    if (wake.due !== null && wake.due < this.#armedFor) this.#arm(wake.due)
    return null
  }

  /** The row of thread `id`, which runs in memory (so has none): it leaves memory. */
  #write(id: string, wake: Wake): void {
    this.#count++
    this.#overlay.set(id, wake)
    this.#host.weave.journal.queue(this.#insert, [id, wake.due, wake.mailbox ? 1 : 0, wake.filter, wake.joins, Date.now()], () => {
      if (this.#overlay.get(id) === wake) this.#overlay.delete(id)
    })
  }

  /** Deletes the row of thread `id`, which has one (each caller has found it). */
  #forgetRow(id: string): void {
    this.#count--
    this.#overlay.set(id, null)
    this.#host.weave.journal.queue(this.#delete, [id], () => {
      if (this.#overlay.get(id) === null) this.#overlay.delete(id)
    })
  }

  /** The row of `id` as it will be once what is queued commits; null: none. */
  #row(id: string): Wake | null {
    const o = this.#overlay.get(id)
    if (o !== undefined) return o
    const r = this.#get.get(id) as [number | null, number, string | null, string | null] | undefined
    return r === undefined ? null : { due: r[0], mailbox: r[1] === 1, filter: r[2], joins: r[3] }
  }

  // ---- waking ----------------------------------------------------------------------------------

  #wake(id: string, by: WokenBy): Run | undefined {
    const host = this.#host
    this.#forgetRow(id)
    const row = host.weave.journal.thread(id)
    if (row === undefined || row.status !== 'running' || host.closed()) return undefined
    const t = host.type(row.type)
    if (t === undefined) {
      // Its type is gone (a reload failed it, or the weave started without it): it waits for it,
      // as a run that runs nothing (src/weave-parked.ts), and its joiners with it.
      const parked = host.park(row)
      this.#handJoiners(id, parked)
      return parked
    }
    const record = host.record(id)
    const run = host.prepare(id, row.type, row.parent, record, row.trace ?? null, continuedOf(row), row.scope ?? null)
    // Its run here goes on the trace of the run passivated, as a resumed one does (src/weave-runs.ts adopt).
    if (run.obs !== null) {
      // Read whole (no read-ahead): its length is known.
      host.observer()!.replayed(record.knownLength ?? record.lastSeq + 1)
      host.weave.journal.setTrace(id, run.obs.traceparent)
      run.obs.woke(by)
    }
    this.#handJoiners(id, run)
    host.start(run, t, decodeValue(row.params), true, by)
    return run
  }

  /** Who joined passivated thread `id` from this process is told by its run from now on. */
  #handJoiners(id: string, run: Run): void {
    const joiners = this.#joiners.get(id)
    if (joiners === undefined) return
    this.#joiners.delete(id)
    run.joiners = run.joiners === null ? joiners : [...run.joiners, ...joiners]
  }

  /** Message `n` (encoded `body`) went into thread `thread`'s inbox (nobody took it at once). */
  #stored(thread: string, n: number, body: string): void {
    // A message that came in as the weave closed (its journal may be closed) wakes nothing.
    if (this.#stopped || this.#host.closed() || this.#host.run(thread) !== undefined) return
    const row = this.#row(thread)
    // One its receive would not take stays in the inbox, and the thread asleep.
    if (row !== null && row.mailbox && wakesFor(row.filter, n, body)) this.#wake(thread, 'message')
  }

  /** Thread `id` ended (its end is durable; or its weave told so, for one of another weave): wake who joins it. */
  #ended(id: string): boolean {
    if (this.#stopped || this.#host.closed()) return false
    const woken = new Set<string>()
    for (const [t, w] of this.#overlay) if (w !== null && w.joins === id) woken.add(t)
    for (const t of this.#joining.all(id) as string[]) woken.add(t)
    let any = false
    for (const t of woken) {
      if (this.#host.run(t) === undefined && this.#row(t) !== null) {
        this.#wake(t, 'join')
        any = true
      }
    }
    return any
  }

  /** Arms the due timer for `at`, or for the soonest due row. */
  #arm(at?: number): void {
    if (this.#stopped) return
    if (at === undefined) {
      let min = (this.#minDue.get() as number | null) ?? Infinity
      for (const w of this.#overlay.values()) if (w !== null && w.due !== null && w.due < min) min = w.due
      at = min
    }
    this.#dueTimer?.()
    this.#dueTimer = null
    this.#armedFor = at
    if (at === Infinity) return
    this.#dueTimer = timerAt(this.#host.weave.clock, at, this.#fire)
  }

  readonly #fire = (): void => {
    this.#dueTimer = null
    this.#armedFor = Infinity
    const now = this.#host.weave.clock.now()
    if (this.#host.closed()) return
    const due = new Set<string>(this.#dueBy.all(now) as string[])
    for (const [t, w] of this.#overlay) if (w !== null && w.due !== null && w.due <= now) due.add(t)
    for (const t of due) if (this.#host.run(t) === undefined && this.#row(t) !== null) this.#wake(t, 'timer')
    // Once the deletions of the rows woken are committed, the soonest row left is the next.
    void this.#host.weave.journal.committed().then(() => this.#arm())
  }
}

/**
 * Whether a joined thread's row says it ended (its joiners are told, or are about to be). One
 * that moved away is joined on its new weave: a wait a row can say, as any remote join.
 */
function joinedEnded(status: string | undefined): boolean {
  return status === 'done' || status === 'failed' || status === 'killed'
}

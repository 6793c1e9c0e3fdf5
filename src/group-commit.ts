/**
 * The journal's group commit: the writes queued during a turn of the event loop commit together,
 * in one transaction; where new entries go (journal_tail or journal_main); and the tap that
 * replication reads each batch through. The journal (src/journal.ts) holds one and queues every
 * write of its owner into it.
 *
 * Invariants:
 * - Every write goes through `#flush`, one synchronous transaction per batch; a write's
 *   `after` callback runs only once that transaction has committed (durable under the chosen
 *   durability), never before.
 * - A thread's entries are in journal_main, or (the newest) in journal_tail, never both; every
 *   entry of a thread in journal_tail has a higher seq than all of its entries in journal_main.
 *   Entries leave the tail only all at once, in the transaction of a batch (or at open).
 * - With a tap (`setTap`, replication: src/replication/), every write of the owner that a rebuild
 *   needs reaches the tap inside its own transaction, before COMMIT, in commit order, as logical
 *   writes `[sql, params]`, one call per transaction, numbered `rseq` 1, 2, ... (meta 'rseq', in the
 *   same transaction): each batch of `#flush` (answers to control requests included) and each
 *   block the journal's `nextThreadId` reserves (handed over through `tapOwn`). The writes that do
 *   not reach it need not: the owner record (meta 'owner'), moving the tail into journal_main (where an entry
 *   lies is not state), and writes made while no owner ran (those, as everything before the tap,
 *   are in the snapshot the tap takes when it is set). A batch's `after` callbacks then run when
 *   the tap releases them (`replicated`: once the broker confirmed the batch), in commit order, or
 *   never (fenced).
 * - A batch that fails to commit is the last: its callbacks never run, and every later flush
 *   throws the same `JournalWriteFailed`, committing nothing (a later batch could hold what
 *   depends on the lost one: a message taken, a send by a thread that replays).
 */
import type Database from 'better-sqlite3'
import { markKey, marked, marks, type InFlight } from './in-flight.js'
import { ClosedBeforeDurable, InvalidArgument, JournalWriteFailed } from './errors.js'
import type { EntryRow } from './journal.js'
import type { Observer } from './observer.js'

/** A logical write: the SQL of a prepared statement and its parameters. */
export type Write = readonly [sql: string, params: readonly unknown[]]

/**
 * A turn of its own: await it before a synchronous flush (`flushNow`) made from an async
 * continuation. A step's writes are queued a microtask apart (a library call's side write, then
 * its entry once its promise settles); a flush between them, in a microtask queued before the
 * entry's, would commit the one without the other, and a crash before the next commit would lose
 * a message taken or send one twice. Between macrotasks no step is halfway.
 */
export function ownTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve))
}

/** Where replication plugs into the journal (see the invariant on taps above). */
export interface JournalTap {
  /** Inside the transaction of batch `rseq`, before COMMIT (may throw: the batch rolls back). */
  write(rseq: number, writes: Write[]): void
  /**
   * After COMMIT: call `run` (the batch's callbacks) when they may run, in order; or never.
   * `hold`: this batch (and so every later one) waits for the stream whatever the durability
   * (a thread's move: see `holdForStream`).
   */
  release(run: () => void, hold?: boolean): void
  /**
   * Calls `run` once the owner may act on the world for this journal (a retry's next attempt):
   * now while a fencing gate lets releases through (or none is kept), later when it opens, never
   * once fenced (another weave took the journal over). Without it, at once.
   */
  gate?(run: () => void): void
}

type Statement = Database.Statement<unknown[]>

/**
 * How many entries journal_tail holds before they move into journal_main: a move writes each
 * thread's pages once for up to this many entries; a read of one thread scans the tail. The tail
 * moves once it holds TAIL_LIMIT entries and at least TAIL_PER_THREAD per thread in it, or
 * TAIL_MAX entries: with many threads a few entries each (a ring of 10,000 threads passing a
 * token), a move at TAIL_LIMIT would write a page of journal_main per entry. A move writes the
 * last page of each thread in it, so the more entries per thread it carries, the fewer pages per
 * entry (the ring, `batched`: 62 s at 4 per thread and 65,536 at most, 46 s at 16 and 131,072).
 * Reading one thread's entries while they are in the tail (a dump, a move) scans it: ~6 ms at
 * 131,072 rows.
 */
const TAIL_LIMIT = 4096
const TAIL_PER_THREAD = 16
const TAIL_MAX = 131_072

/** A batch whose entries number this many per thread goes straight to journal_main. */
const DIRECT_PER_THREAD = 8

/** What the journal lends its group commit. */
export interface CommitHost {
  readonly file: string
  readonly db: Database.Database
  /** Once true, nothing more commits. */
  readonly closed: boolean
  /** Incremented at each commit (the journal's `epoch`). */
  epoch: number
  /** Told of each group commit (src/observer.ts); null: nobody is. */
  readonly observer: Observer | null
  meta(k: string): string | undefined
}

export class GroupCommit {
  readonly #host: CommitHost
  /** The batch: statements queued for the next commit, their parameters, and what runs once it is durable. */
  #stmts: Statement[] = []
  #params: unknown[][] = []
  #after: Array<() => void> = []
  #scheduled = false
  /** Entries queued for the next commit, and how many threads they are of. */
  #batchEntries = 0
  #batchThreads = 0
  /** An entry is queued with this one (into journal_tail); `#flush` runs #insertMainEntry in its place for a direct batch. */
  readonly #insertEntry: Statement
  readonly #insertMainEntry: Statement
  readonly #mergeTail: Statement
  readonly #clearTail: Statement
  /** The journal's statement setting a meta row (the tap's 'rseq'). */
  readonly #setMeta: Statement
  /** Prepared once: exec('BEGIN') would parse the SQL again at every commit. */
  readonly #begin: Statement
  readonly #commit: Statement
  /** Entries added to journal_tail since it was last merged (by this process). */
  #tailRows = 0
  /** The threads those entries are of. */
  readonly #tailThreads = new Set<string>()
  /** A batch rolled back (after a tail move, perhaps): the tail may hold rows `#tailRows` and `#tailThreads` miss, until the next move. */
  #tailUnknown = false
  /** Who waits in `committed()`, until its batch is released (or the journal closes): its resolve, and its reject if strict. */
  readonly #waiting = new Map<() => void, ((e: Error) => void) | null>()
  /** Values read at each commit, handed over once its batch is released (`addMark`). */
  readonly #marks: Array<{ read: () => number; released: (v: number) => void }> = []
  /** Replication's hook (see the invariant), or null; `#rseq`: the last batch it saw. */
  #tap: JournalTap | null = null
  /** The batch forming now is released only once the tap's stream has it (`holdForStream`). */
  #holdNext = false
  #rseq = 0
  /** Set when a batch failed to commit: nothing commits after it (see the invariant). */
  failed: JournalWriteFailed | null = null
  /** Live calls started since the last batch: those in flight as it commits are marked in it (src/in-flight.ts). */
  #started: InFlight[] = []
  /** A look at `#started` is due in the next turn (`#checkStarted`). */
  #startedCheck = false
  /** Threads (or runs) that ended since, with how many of `#started` were there then: those are not marked. */
  #endedAt: Map<string, number> | null = null

  /**
   * `prep` prepares a statement (a read-only journal gives null for each: it never writes);
   * `setMeta` is the journal's statement setting a meta row.
   */
  constructor(host: CommitHost, prep: (sql: string) => Statement, setMeta: Statement) {
    this.#host = host
    this.#setMeta = setMeta
    this.#insertEntry = prep(
      'INSERT INTO journal_tail (thread, seq, key, ord, ok, outcome, started, duration) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
    )
    this.#insertMainEntry = prep(
      'INSERT INTO journal_main (thread, seq, key, ord, ok, outcome, started, duration) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
    )
    // In (thread, seq) order: each page of journal_main is written once per merge.
    this.#mergeTail = prep(
      'INSERT INTO journal_main (thread, seq, key, ord, ok, outcome, started, duration) ' +
        'SELECT thread, seq, key, ord, ok, outcome, started, duration FROM journal_tail ORDER BY thread, seq',
    )
    this.#clearTail = prep('DELETE FROM journal_tail')
    this.#begin = prep('BEGIN')
    this.#commit = prep('COMMIT')
  }

  /** Moves every entry of journal_tail into journal_main (inside a transaction). */
  moveTail(): void {
    this.#mergeTail.run()
    this.#clearTail.run()
    this.#tailRows = 0
    this.#tailThreads.clear()
    this.#tailUnknown = false
  }

  /**
   * Whether journal_tail may hold entries of `thread`: false only when it holds none (of an owner
   * since its open, which moved the tail; a reader of one record then skips the tail's scan).
   */
  mayHaveTail(thread: string): boolean {
    return this.#tailUnknown || this.#tailThreads.has(thread)
  }

  /**
   * Queues a journal entry; `after` runs once it is durable. `newThread`: this is the first entry
   * of its thread in this batch.
   */
  addEntry(thread: string, seq: number, key: string, ord: number, ok: 0 | 1, outcome: string, started: number, duration: number, after: () => void, newThread: boolean): void {
    this.#stmts.push(this.#insertEntry)
    this.#params.push([thread, seq, key, ord, ok, outcome, started, duration])
    this.#after.push(after)
    this.#batchEntries++
    if (newThread) this.#batchThreads++
    if (!this.#scheduled) this.#schedule()
  }

  /**
   * The entries of `thread` queued for the next commit, in order, as journal rows
   * `[seq, key, ord, ok, outcome, started, duration]` (a reader of a record that must not flush).
   */
  queuedEntries(thread: string): EntryRow[] {
    const out: EntryRow[] = []
    const stmts = this.#stmts
    for (let i = 0; i < stmts.length; i++) {
      const p = this.#params[i]!
      if (stmts[i] === this.#insertEntry && p[0] === thread) out.push(p.slice(1) as EntryRow)
    }
    return out
  }

  /**
   * A live call `c` was started: marked in the next batch if still in flight then (src/in-flight.ts).
   * A call in flight a turn later has a batch scheduled for it if none is; one answered by then
   * (most) changes nothing: its outcome's batch is the one it would have had.
   */
  started(c: InFlight): void {
    this.#started.push(c)
    if (this.#startedCheck) return
    this.#startedCheck = true
    setImmediate(this.#checkStarted)
  }

  /** Thread `thread` (or its run) has ended: the calls it started are not marked (src/in-flight.ts `dropMarks`). */
  notStarted(thread: string): void {
    // (Not filtered out now: a weave that ends many threads while many calls are started would pay for each.)
    if (this.#started.length > 0) (this.#endedAt ??= new Map()).set(thread, this.#started.length)
  }

  #checkStarted = (): void => {
    this.#startedCheck = false
    if (this.#scheduled || this.#host.closed) return
    if (this.#started.some(marks)) this.#schedule()
    else {
      this.#started = []
      this.#endedAt = null
    }
  }

  /** Queues a statement into the next batch; `after` runs once it is durable. */
  queue(stmt: Statement, params: unknown[], after?: () => void): void {
    this.#stmts.push(stmt)
    this.#params.push(params)
    if (after) this.#after.push(after)
    if (!this.#scheduled) this.#schedule()
  }

  /**
   * Resolves once everything queued so far, and what the microtasks running now queue, is
   * durable, and every batch before it released: a batch of its own when nothing is queued. (A
   * message taken at once by a waiting receive has no row; its take is queued a microtask later.
   * With a tap holding batches, an earlier one may be committed and not yet released.)
   */
  committed(strict = false): Promise<void> {
    // Closed: nothing more commits (what was queued went with the close's last flush).
    if (this.#host.closed) return this.failed !== null && strict ? Promise.reject(this.failed) : Promise.resolve()
    return new Promise((resolve, reject) => {
      this.#waiting.set(resolve, strict ? reject : null)
      this.#after.push(() => {
        this.#waiting.delete(resolve)
        resolve()
      })
      if (!this.#scheduled) this.#schedule()
    })
  }

  /**
   * The journal closed: whoever waits in `committed()` for a release that will not come resolves;
   * a strict waiter (a caller told "durable": `Weave.committed`, a schedule's change, a move)
   * rejects, with the failure of the batch that failed, or ClosedBeforeDurable.
   */
  closed(): void {
    for (const [resolve, reject] of this.#waiting) {
      if (reject === null) resolve()
      else reject(this.failed ?? new ClosedBeforeDurable())
    }
    this.#waiting.clear()
  }

  /** Marks the calls started since the last batch still in flight, first in this one: a thread's end queued in it deletes its rows after them. */
  #markStarted(): void {
    const started = this.#started
    const ended = this.#endedAt
    this.#started = []
    this.#endedAt = null
    const stmts: Statement[] = []
    const params: unknown[][] = []
    for (let i = 0; i < started.length; i++) {
      const c = started[i]!
      if (!marks(c) || (ended !== null && i < (ended.get(c.threadId) ?? 0))) continue
      marked(this.#host, c)
      stmts.push(this.#setMeta)
      params.push([markKey(c.threadId, c.ord, c.key), String(c.started)])
    }
    if (stmts.length === 0) return
    this.#stmts = stmts.concat(this.#stmts)
    this.#params = params.concat(this.#params)
  }

  #schedule(): void {
    this.#scheduled = true
    setImmediate(this.#flush)
  }

  #flush = (): void => {
    this.#scheduled = false
    const host = this.#host
    if (host.closed) return
    if (this.failed !== null) throw this.failed
    if (this.#started.length > 0) this.#markStarted()
    const stmts = this.#stmts
    const params = this.#params
    const after = this.#after
    const entries = this.#batchEntries
    const threads = this.#batchThreads
    this.#stmts = []
    this.#params = []
    this.#after = []
    const hold = this.#holdNext
    this.#holdNext = false
    this.#batchEntries = 0
    this.#batchThreads = 0
    const obs = host.observer
    const t0 = obs !== null ? performance.now() : 0
    let fsyncMs = 0
    if (stmts.length > 0) {
      try {
        // Inside: a BEGIN that fails (busy past the timeout) fails the batch, as a COMMIT does.
        this.#begin.run()
        // Entries of many threads, a few each, go to the tail (a page or two for all of them).
        // Those of one thread, or many each, go to journal_main (a page per thread is no more
        // than they fill), once the tail has moved there, as it must not keep a thread's older
        // entries than journal_main holds.
        const direct = entries > 0 && (threads === 1 || entries >= DIRECT_PER_THREAD * threads)
        if (direct && (this.#tailRows > 0 || this.#tailUnknown)) this.moveTail()
        const insertEntry = this.#insertEntry
        for (let i = 0; i < stmts.length; i++) {
          const stmt = stmts[i]!
          if (stmt !== insertEntry) stmt.run(...params[i]!)
          else if (direct) this.#insertMainEntry.run(...params[i]!)
          else {
            stmt.run(...params[i]!)
            this.#tailThreads.add(params[i]![0] as string)
          }
        }
        if (!direct) this.#tailRows += entries
        const rows = this.#tailRows
        if (rows >= TAIL_LIMIT && (rows >= TAIL_PER_THREAD * this.#tailThreads.size || rows >= TAIL_MAX)) this.moveTail()
        if (this.#tap !== null) this.#tapWrite(stmts, params)
        if (obs !== null) {
          const t1 = performance.now()
          this.#commit.run()
          fsyncMs = performance.now() - t1
        } else this.#commit.run()
      } catch (e) {
        if (host.db.inTransaction) host.db.exec('ROLLBACK')
        this.#tailUnknown = true
        // The tap may have seen it (published before a failed COMMIT): the rseq is not used again.
        throw (this.failed = new JournalWriteFailed(host.file, e))
      }
    }
    host.epoch++
    if (obs !== null && stmts.length > 0) obs.commit(entries, stmts.length, performance.now() - t0, fsyncMs)
    if (this.#marks.length > 0 && stmts.length > 0) this.#markAfter(after)
    if (this.#tap !== null) this.#tap.release(() => runAll(after), hold)
    else runAll(after)
  }

  /**
   * The batch forming now is released (its callbacks run, the outbox rows it holds published)
   * only once the tap's stream has it, even where the durability releases at the local commit:
   * a thread's move, which must not be out before the stream has it (or a takeover would rebuild
   * the thread here while it runs there), nor taken before the stream has its arrival.
   */
  holdForStream(): void {
    if (this.#tap !== null) this.#holdNext = true
  }

  /** Appends to a batch's callbacks the hand-over of each mark's value read now (just committed). */
  #markAfter(after: Array<() => void>): void {
    for (const m of this.#marks) {
      const v = m.read()
      after.push(() => m.released(v))
    }
  }

  /**
   * Reads `read()` after each commit and calls `released` with it once that batch is released
   * (its callbacks run: at once, or when the tap lets them go; never, fenced), in commit order;
   * and once now, for what is committed already, behind the batches held. The outbox relay reads
   * the last outbox row so: it publishes no row of a batch not released, whatever it reads.
   */
  addMark(read: () => number, released: (v: number) => void): void {
    this.#marks.push({ read, released })
    const v = read()
    if (this.#tap !== null) this.#tap.release(() => released(v))
    else released(v)
  }

  /**
   * Null if the owner may act now (no tap, or its gate open: see JournalTap `gate`); else a
   * promise that resolves once it may, or never (fenced). Commits nothing.
   */
  gated(): Promise<void> | null {
    const tap = this.#tap
    if (tap === null || tap.gate === undefined) return null
    let now = false
    let go: () => void = () => {
      now = true
    }
    tap.gate(() => go())
    return now ? null : new Promise<void>((resolve) => (go = resolve))
  }

  /** Whether writes are queued for the next commit. */
  get queued(): boolean {
    return this.#stmts.length > 0
  }

  /** Commits what is queued now, synchronously. */
  flushNow(): void {
    if (this.#stmts.length > 0 || this.#after.length > 0) this.#flush()
  }

  /**
   * Sets the tap (once, before the first batch it must see): from here on every batch reaches
   * it (see the invariant). Returns the rseq of the last batch it saw, 0 for none.
   */
  setTap(tap: JournalTap): number {
    if (this.#tap !== null) throw new InvalidArgument(`the journal ${this.#host.file} has a tap already`)
    this.flushNow()
    this.#tap = tap
    this.#rseq = Number(this.#host.meta('rseq') ?? '0')
    return this.#rseq
  }

  /** The rseq of the last batch committed through the tap (0 before any). */
  get rseq(): number {
    return this.#rseq
  }

  /** Inside a transaction of the journal's own (not a batch): hands its writes to the tap, if one is set. */
  tapOwn(stmts: Statement[], params: unknown[][]): void {
    if (this.#tap !== null) this.#tapWrite(stmts, params)
  }

  /** Inside a transaction: numbers it, and hands its writes to the tap. */
  #tapWrite(stmts: Statement[], params: unknown[][]): void {
    const rseq = this.#rseq + 1
    const writes: Write[] = new Array<Write>(stmts.length)
    const entry = this.#insertEntry
    for (let i = 0; i < stmts.length; i++) writes[i] = [stmts[i] === entry ? this.#insertMainEntry.source : stmts[i]!.source, params[i]!]
    this.#setMeta.run('rseq', String(rseq))
    this.#tap!.write(rseq, writes)
    this.#rseq = rseq
  }
}

function runAll(fns: Array<() => void>): void {
  for (let i = 0; i < fns.length; i++) fns[i]!()
}

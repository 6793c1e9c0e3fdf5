/**
 * The SQLite journal: schema, migrations, prepared statements and the group commit.
 *
 * Invariants:
 * - Every write goes through `#flush`, one synchronous transaction per batch; a write's
 *   `after` callback runs only once that transaction has committed (durable under the chosen
 *   durability), never before.
 * - A thread's entries are in journal_main, or (the newest) in journal_tail, never both; every
 *   entry of a thread in journal_tail has a higher seq than all of its entries in journal_main.
 *   Entries leave the tail only all at once, in the transaction of a batch (or at open).
 * - A file that is not a Raiment journal, or one written by a newer schema, is refused before
 *   anything is written to it, and before its owner lock is taken (no sidecar file appears).
 * - One owner at a time: a writable journal (unless opened with `own: false`) takes the owner
 *   lock (src/journal-owner.ts) before it writes anything, migrations included, and holds it until
 *   `close`. Its first write then is one IMMEDIATE transaction that records the owner (meta
 *   'owner'): a process that found the journal unowned inside a write transaction of its own
 *   (the CLI's kill and send) has committed before it, so the owner reads what it wrote.
 * - The journal is in WAL mode only while an owner runs, or after one died: a clean close goes
 *   back to rollback mode, so a read-only open creates nothing (src/journal-owner.ts).
 * - With a tap (`setTap`, replication: src/replication/), every write of the owner that a rebuild
 *   needs reaches the tap inside its own transaction, before COMMIT, in commit order, as logical
 *   writes `[sql, params]`, one call per transaction, numbered `rseq` 1, 2, ... (meta 'rseq', in the
 *   same transaction): each batch of `#flush` and each block `nextThreadId` reserves. The writes
 *   that do not reach it need not: the owner record (meta 'owner'), answers to control requests,
 *   moving the tail into journal_main (where an entry lies is not state), and writes made while
 *   no owner ran (those, as everything before the tap, are in the snapshot the tap takes when it
 *   is set). A batch's `after` callbacks then run when the tap releases them (`replicated`: once
 *   the broker confirmed the batch), in commit order, or never (fenced).
 */
import Database from 'better-sqlite3'
import { existsSync, statSync } from 'node:fs'
import { hostname } from 'node:os'
import { basename } from 'node:path'
import { InvalidArgument, JournalOwned, NotARaimentDb, type JournalOwner } from './errors.js'
import { JournalLock, leaveWal, LockHeld, lockPath, openToRead } from './journal-owner.js'
import { checkAndMigrate } from './journal-schema.js'
import type { Observer } from './observer.js'

/** `replicated`: as `sync`, and an outcome is released only once the broker has it too (src/replication/). */
export type Durability = 'sync' | 'batched' | 'memory' | 'replicated'
export const DURABILITIES: readonly Durability[] = ['sync', 'batched', 'memory', 'replicated']

/** A logical write: the SQL of a prepared statement and its parameters. */
export type Write = readonly [sql: string, params: readonly unknown[]]

/** Where replication plugs into the journal (see the invariant on taps above). */
export interface JournalTap {
  /** Inside the transaction of batch `rseq`, before COMMIT (may throw: the batch rolls back). */
  write(rseq: number, writes: Write[]): void
  /** After COMMIT: call `run` (the batch's callbacks) when they may run, in order; or never. */
  release(run: () => void): void
}

export { SCHEMA_VERSION } from './journal-schema.js'

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

/** 'moved': the thread runs on another weave now (see `forwards`); not alive here, never resumed here. */
export type ThreadStatus = 'pending' | 'running' | 'done' | 'failed' | 'killed' | 'moved'

export interface ThreadRow {
  id: string
  type: string
  params: string
  parent: string | null
  status: ThreadStatus
  outcome: string | null
  created: number
  ended: number | null
  calls: number
  /** The trace context of the thread's latest run, when OpenTelemetry was on (src/observer.ts). */
  trace?: string | null
}

/** A journal entry as stored: [seq, key, ord, ok, outcome, started, duration]. */
export type EntryRow = [number, string, number, 0 | 1, string, number, number]

export interface ControlRow {
  n: number
  kind: string
  thread: string | null
  arg: string | null
}

type Statement = Database.Statement<unknown[]>

export interface JournalOptions {
  durability?: Durability
  /**
   * Open read-only and refuse a missing file (for the CLI's inspection commands): no lock is
   * taken and no file is created.
   */
  readonly?: boolean
  /**
   * Take the journal's owner lock and hold it until `close` (default true for a writable
   * journal): whatever runs threads on the journal must. `false`: write beside the owner, if one
   * runs, without the lock (the CLI's spawn, send and kill: rows the owner picks up).
   * @throws JournalOwned (from the constructor) when another owner holds the journal
   */
  own?: boolean
  /** The weave id written into a new journal; defaults to host name and file name. */
  weaveId?: string
}

export class Journal {
  readonly file: string
  readonly weaveId: string
  readonly db: Database.Database
  /** Increments at each commit; lets a thread tell outcomes of one batch from the next. */
  epoch = 0
  #stmts: Statement[] = []
  #params: unknown[][] = []
  #after: Array<() => void> = []
  #scheduled = false
  #closed = false
  #insertEntry: Statement
  #insertMainEntry: Statement
  #insertThread: Statement
  #endThread: Statement
  #endThreadCounted: Statement
  #thread: Statement
  #setStatus: Statement
  #setTrace: Statement | null = null
  /** Told of each group commit (src/observer.ts); null: nobody is. */
  observer: Observer | null = null
  #setMeta: Statement
  #dropEntry: Statement
  #dropTailEntry: Statement
  #mergeTail: Statement
  #clearTail: Statement
  #mainEntries: Statement
  #tailEntries: Statement
  #mainReplay: Statement
  #tailReplay: Statement
  /** Entries added to journal_tail since it was last merged (by this process). */
  #tailRows = 0
  /** The threads those entries are of. */
  readonly #tailThreads = new Set<string>()
  /** Entries queued for the next commit, and how many threads they are of. */
  #batchEntries = 0
  #batchThreads = 0
  /** Prepared once: exec('BEGIN') would parse the SQL again at every commit. */
  #begin: Statement
  #commit: Statement
  #nextThread = 0
  #threadLimit = 0
  #block = 8
  readonly #readonly: boolean
  /** Replication's hook (see the invariant), or null; `#rseq`: the last batch it saw. */
  #tap: JournalTap | null = null
  #rseq = 0
  /** The owner lock, held from before the first write until `close`; null for other openers. */
  #lock: JournalLock | null = null

  /**
   * Opens (creating if needed) a journal file.
   * @throws NotARaimentDb for a file that is not a Raiment journal (left untouched)
   * @throws DbTooNew for a journal of a newer schema (left untouched)
   * @throws JournalOwned when another weave owns the journal (unless `own: false` or read-only)
   */
  constructor(file: string, options: JournalOptions = {}) {
    const durability = options.durability ?? 'sync'
    if (!DURABILITIES.includes(durability)) {
      throw new InvalidArgument(`durability must be one of ${DURABILITIES.join(', ')}, got ${JSON.stringify(durability)}`)
    }
    this.file = file
    const memory = file === ':memory:'
    this.#readonly = options.readonly ?? false
    const own = !this.#readonly && !memory && (options.own ?? true)
    if (options.readonly && !memory && !existsSync(file)) {
      throw new InvalidArgument(`no journal at ${file}; start a weave there first (raiment start --db ${file})`)
    }
    if (!memory && existsSync(file) && statSync(file).isDirectory()) {
      throw new NotARaimentDb(file, 'it is a directory')
    }
    let db: Database.Database
    try {
      db = options.readonly ? openToRead(file) : new Database(file)
    } catch (e) {
      throw new NotARaimentDb(file, (e as Error).message)
    }
    this.db = db
    // First: every statement below, the checks included, waits for another process's lock
    // rather than failing with 'database is locked'.
    db.pragma('busy_timeout = 5000')
    try {
      checkAndMigrate(db, file, options.readonly ?? false, own, () => this.#takeLock())
      if (!options.readonly) {
        // Only an owner turns WAL on: beside one, the journal is in WAL mode already; without
        // one, a short write keeps it in rollback mode, which a read-only open needs no new file for.
        if (own) db.pragma('journal_mode = WAL')
        db.pragma(`synchronous = ${durability === 'sync' || durability === 'replicated' ? 'FULL' : durability === 'batched' ? 'NORMAL' : 'OFF'}`)
      }
    } catch (e) {
      db.close()
      this.#lock?.release()
      throw e
    }
    this.weaveId = this.meta('weave_id') ?? ''
    if (!this.weaveId && !options.readonly) {
      // OR IGNORE: another process opening the new file at the same moment may have named it.
      db.prepare('INSERT OR IGNORE INTO meta (k, v) VALUES (?, ?)').run('weave_id', options.weaveId ?? defaultWeaveId(file))
      this.weaveId = this.meta('weave_id') ?? ''
    }
    const prep = (sql: string): Statement => (options.readonly ? (null as unknown as Statement) : db.prepare(sql))
    this.#insertEntry = prep(
      'INSERT INTO journal_tail (thread, seq, key, ord, ok, outcome, started, duration) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
    )
    this.#insertMainEntry = prep(
      'INSERT INTO journal_main (thread, seq, key, ord, ok, outcome, started, duration) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
    )
    this.#insertThread = prep(
      'INSERT INTO threads (id, type, params, parent, status, created, trace) VALUES (?, ?, ?, ?, ?, ?, ?)',
    )
    this.#endThread = prep(
      'UPDATE threads SET status = ?, outcome = ?, ended = ?, calls = (SELECT count(*) FROM journal WHERE thread = ?) WHERE id = ?',
    )
    // A thread's weft knows how many entries it has; counting them in the commit would read them all.
    this.#endThreadCounted = prep('UPDATE threads SET status = ?, outcome = ?, ended = ?, calls = ? WHERE id = ?')
    this.#thread = db.prepare('SELECT * FROM threads WHERE id = ?')
    this.#setStatus = prep('UPDATE threads SET status = ? WHERE id = ?')
    this.#dropEntry = prep('DELETE FROM journal_main WHERE thread = ? AND seq = ?')
    this.#dropTailEntry = prep('DELETE FROM journal_tail WHERE thread = ? AND seq = ?')
    // In (thread, seq) order: each page of journal_main is written once per merge.
    this.#mergeTail = prep(
      'INSERT INTO journal_main (thread, seq, key, ord, ok, outcome, started, duration) ' +
        'SELECT thread, seq, key, ord, ok, outcome, started, duration FROM journal_tail ORDER BY thread, seq',
    )
    this.#clearTail = prep('DELETE FROM journal_tail')
    const cols = 'seq, key, ord, ok, outcome, started, duration'
    this.#mainEntries = db.prepare(`SELECT ${cols} FROM journal_main WHERE thread = ? ORDER BY seq`).raw(true)
    this.#tailEntries = db.prepare(`SELECT ${cols} FROM journal_tail WHERE thread = ? ORDER BY seq`).raw(true)
    const replayCols = 'seq, key, ord, ok, outcome'
    this.#mainReplay = db.prepare(`SELECT ${replayCols} FROM journal_main WHERE thread = ? ORDER BY seq`).raw(true)
    this.#tailReplay = db.prepare(`SELECT ${replayCols} FROM journal_tail WHERE thread = ? ORDER BY seq`).raw(true)
    this.#setMeta = prep('INSERT INTO meta (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v')
    this.#begin = prep('BEGIN')
    this.#commit = prep('COMMIT')
    if (own) {
      // The owner's first write (see the invariants): who it is, and what an earlier run left in
      // the tail moves now, so resumed threads read journal_main.
      try {
        db.transaction(() => {
          this.#setMeta.run('owner', JSON.stringify({ pid: process.pid, host: hostname(), since: Date.now() } satisfies JournalOwner))
          this.#moveTail()
        }).immediate()
      } catch (e) {
        db.close()
        this.#lock?.release()
        throw e
      }
    }
  }

  /**
   * Takes the owner lock, or throws JournalOwned naming the owner as it recorded itself (read
   * through this connection, which has written nothing).
   */
  #takeLock(): void {
    try {
      this.#lock = JournalLock.take(this.file)
    } catch (e) {
      if (!(e instanceof LockHeld)) {
        throw new InvalidArgument(`could not take the owner lock of ${this.file} (${(e as Error).message}); its sidecar ${lockPath(this.file)} must be an empty file`)
      }
      let owner: JournalOwner | null = null
      try {
        owner = parseOwner(this.meta('owner'))
      } catch {
        // No meta table yet: the owner is creating the journal now.
      }
      throw new JournalOwned(this.file, owner, owner !== null && owner.pid === process.pid && owner.host === hostname())
    }
  }

  /** Moves every entry of journal_tail into journal_main (inside a transaction). */
  #moveTail(): void {
    this.#mergeTail.run()
    this.#clearTail.run()
    this.#tailRows = 0
    this.#tailThreads.clear()
  }

  /**
   * The weave that owns this journal as it recorded itself when it took it, or null. A weave
   * that was killed leaves its record behind: `owned()` tells whether one runs now.
   */
  owner(): JournalOwner | null {
    return parseOwner(this.meta('owner'))
  }

  /**
   * Whether a weave runs on this journal now: its owner lock is held (by this process or
   * another). Reads the lock's sidecar file only; creates no file.
   */
  owned(): boolean {
    return this.file !== ':memory:' && (this.#lock !== null || JournalLock.held(this.file))
  }

  meta(k: string): string | undefined {
    const row = this.db.prepare('SELECT v FROM meta WHERE k = ?').get(k) as { v: string } | undefined
    return row?.v
  }

  /**
   * A new thread id `<weave>/<n>`. Numbers are reserved in blocks in the file (one small
   * transaction per block), so other processes spawning on the same journal never reuse one.
   */
  nextThreadId(block = this.#block): string {
    if (this.#nextThread >= this.#threadLimit) {
      // Blocks grow as a weave spawns more, so a short-lived process leaves small gaps.
      this.#block = Math.min(this.#block * 2, 4096)
      // IMMEDIATE: a read-then-write transaction that began as a reader would fail at once
      // (SQLITE_BUSY_SNAPSHOT, 'database is locked') when another process, such as the weave
      // running on this journal, commits between the read and the write.
      this.#nextThread = this.db
        .transaction(() => {
          const n = Number(this.meta('next_thread') ?? '1')
          this.#setMeta.run('next_thread', String(n + block))
          if (this.#tap !== null) this.#tapWrite([this.#setMeta], [['next_thread', String(n + block)]])
          return n
        })
        .immediate()
      this.#threadLimit = this.#nextThread + block
    }
    return `${this.weaveId}/${this.#nextThread++}`
  }

  /** `trace`: the trace context of the thread's run (src/observer.ts), or null. */
  insertThread(id: string, type: string, params: string, parent: string | null, status: ThreadStatus, after?: () => void, trace: string | null = null): void {
    this.#queue(this.#insertThread, [id, type, params, parent, status, Date.now(), trace], after)
  }

  /** Records the trace context of a thread's latest run (a resumed run, observed). */
  setTrace(id: string, trace: string): void {
    this.#queue((this.#setTrace ??= this.db.prepare('UPDATE threads SET trace = ? WHERE id = ?')), [trace, id])
  }

  /** Deletes a recorded entry (a resume told to continue past a divergence drops what it skips). */
  dropEntry(thread: string, seq: number): void {
    this.#queue(this.#dropEntry, [thread, seq])
    this.#queue(this.#dropTailEntry, [thread, seq])
  }

  /**
   * Records thread `id` as killed at once, in the caller's transaction: for a process that does
   * not own the journal and found it unowned in that same transaction (the CLI's kill while no
   * weave runs).
   */
  killNow(id: string): void {
    this.#endThread.run('killed', null, Date.now(), id, id)
  }

  setStatus(id: string, status: ThreadStatus, after?: () => void): void {
    this.#queue(this.#setStatus, [status, id], after)
  }

  /**
   * Records a thread's end. `calls` is how many journal entries the thread has, where the caller
   * knows it (its weft); otherwise they are counted in the commit.
   */
  endThread(id: string, status: ThreadStatus, outcome: string | null, after?: () => void, calls?: number): void {
    if (calls === undefined) this.#queue(this.#endThread, [status, outcome, Date.now(), id, id], after)
    else this.#queue(this.#endThreadCounted, [status, outcome, Date.now(), calls, id], after)
  }

  /**
   * Queues a journal entry; `after` runs once it is durable. `newThread`: this is the first entry
   * of its thread in this batch (true when the caller does not know).
   */
  addEntry(thread: string, seq: number, key: string, ord: number, ok: 0 | 1, outcome: string, started: number, duration: number, after: () => void, newThread = true): void {
    this.#stmts.push(this.#insertEntry)
    this.#params.push([thread, seq, key, ord, ok, outcome, started, duration])
    this.#after.push(after)
    this.#batchEntries++
    if (newThread) this.#batchThreads++
    if (!this.#scheduled) this.#schedule()
  }

  /** Queues an arbitrary statement into the next batch (used by plug-ins such as mailboxes). */
  queue(sql: Statement, params: unknown[], after?: () => void): void {
    this.#queue(sql, params, after)
  }

  #queue(stmt: Statement, params: unknown[], after?: () => void): void {
    this.#stmts.push(stmt)
    this.#params.push(params)
    if (after) this.#after.push(after)
    if (!this.#scheduled) this.#schedule()
  }

  /** Resolves once everything queued so far is durable. */
  committed(): Promise<void> {
    if (this.#stmts.length === 0) return Promise.resolve()
    return new Promise((resolve) => this.#after.push(resolve))
  }

  #schedule(): void {
    this.#scheduled = true
    setImmediate(this.#flush)
  }

  #flush = (): void => {
    this.#scheduled = false
    if (this.#closed) return
    const stmts = this.#stmts
    const params = this.#params
    const after = this.#after
    const entries = this.#batchEntries
    const threads = this.#batchThreads
    this.#stmts = []
    this.#params = []
    this.#after = []
    this.#batchEntries = 0
    this.#batchThreads = 0
    const obs = this.observer
    const t0 = obs !== null ? performance.now() : 0
    let fsyncMs = 0
    if (stmts.length > 0) {
      this.#begin.run()
      try {
        // Entries of many threads, a few each, go to the tail (a page or two for all of them).
        // Those of one thread, or many each, go to journal_main (a page per thread is no more
        // than they fill), once the tail has moved there, as it must not keep a thread's older
        // entries than journal_main holds.
        const direct = entries > 0 && (threads === 1 || entries >= DIRECT_PER_THREAD * threads)
        if (direct && this.#tailRows > 0) this.#moveTail()
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
        if (rows >= TAIL_LIMIT && (rows >= TAIL_PER_THREAD * this.#tailThreads.size || rows >= TAIL_MAX)) this.#moveTail()
        if (this.#tap !== null) this.#tapWrite(stmts, params)
        if (obs !== null) {
          const t1 = performance.now()
          this.#commit.run()
          fsyncMs = performance.now() - t1
        } else this.#commit.run()
      } catch (e) {
        if (this.db.inTransaction) this.db.exec('ROLLBACK')
        throw e
      }
    }
    this.epoch++
    if (obs !== null && stmts.length > 0) obs.commit(entries, stmts.length, performance.now() - t0, fsyncMs)
    if (this.#tap !== null) this.#tap.release(() => runAll(after))
    else runAll(after)
  }

  /**
   * Sets the tap (once, before the first batch it must see): from here on every batch reaches
   * it (see the invariant). Returns the rseq of the last batch it saw, 0 for none.
   */
  setTap(tap: JournalTap): number {
    if (this.#tap !== null) throw new InvalidArgument(`the journal ${this.file} has a tap already`)
    this.flushNow()
    this.#tap = tap
    this.#rseq = Number(this.meta('rseq') ?? '0')
    return this.#rseq
  }

  /** The rseq of the last batch committed through the tap (0 before any). */
  get rseq(): number {
    return this.#rseq
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

  get closed(): boolean {
    return this.#closed
  }

  /** Commits what is queued now, synchronously (used at shutdown). */
  flushNow(): void {
    if (this.#stmts.length > 0 || this.#after.length > 0) this.#flush()
  }

  threads(where: { status?: ThreadStatus[]; type?: string } = {}): ThreadRow[] {
    const clauses: string[] = []
    const args: unknown[] = []
    if (where.status?.length) {
      clauses.push(`status IN (${where.status.map(() => '?').join(', ')})`)
      args.push(...where.status)
    }
    if (where.type) {
      clauses.push('type = ?')
      args.push(where.type)
    }
    const sql = `SELECT * FROM threads ${clauses.length ? 'WHERE ' + clauses.join(' AND ') : ''} ORDER BY rowid`
    return this.db.prepare(sql).all(...args) as ThreadRow[]
  }

  thread(id: string): ThreadRow | undefined {
    return this.#thread.get(id) as ThreadRow | undefined
  }

  /**
   * A thread's entries in completion order, for replay: `make(seq, key, ord, ok, outcome)` of
   * each, read a row at a time (no array of a million rows to keep at once), without the timing.
   */
  replayEntries<T>(thread: string, make: (seq: number, key: string, ord: number, ok: boolean, outcome: string) => T): T[] {
    const out: T[] = []
    // journal_main, then the tail (whose entries of a thread all come after those in main).
    for (const stmt of [this.#mainReplay, this.#tailReplay]) {
      for (const r of stmt.iterate(thread) as IterableIterator<EntryRow>) out.push(make(r[0], r[1], r[2], r[3] === 1, r[4]))
    }
    return out
  }

  /** A thread's entries in completion order. */
  entries(thread: string): EntryRow[] {
    const main = this.#mainEntries.all(thread) as EntryRow[]
    const tail = this.#tailEntries.all(thread) as EntryRow[]
    return tail.length === 0 ? main : main.concat(tail)
  }

  callCounts(): Map<string, number> {
    const rows = this.db.prepare('SELECT thread, count(*) AS n FROM journal GROUP BY thread').all() as Array<{ thread: string; n: number }>
    return new Map(rows.map((r) => [r.thread, r.n]))
  }

  /** Control requests from other processes that this weave has not handled yet. */
  control(): ControlRow[] {
    return this.db.prepare('SELECT n, kind, thread, arg FROM control WHERE done = 0 ORDER BY n').all() as ControlRow[]
  }

  replyControl(n: number, reply: string): void {
    this.db.prepare('UPDATE control SET done = 1, reply = ? WHERE n = ?').run(reply, n)
  }

  /** PRAGMA data_version: changes when another connection commits. */
  dataVersion(): number {
    return this.db.pragma('data_version', { simple: true }) as number
  }

  setMeta(k: string, v: string | null): void {
    if (v === null) this.db.prepare('DELETE FROM meta WHERE k = ?').run(k)
    else this.db.prepare('INSERT INTO meta (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v').run(k, v)
  }

  /**
   * Commits what is queued and closes the journal. The owner clears its record and releases the
   * lock last; any writer that leaves the journal with no owner takes it out of WAL mode.
   */
  close(): void {
    if (this.#closed) return
    this.flushNow()
    this.#closed = true
    if (this.#lock !== null) this.setMeta('owner', null)
    if (!this.#readonly) leaveWal(this.db, this.file, this.#lock !== null)
    this.db.close()
    this.#lock?.release()
  }
}

function parseOwner(text: string | undefined): JournalOwner | null {
  if (text === undefined) return null
  try {
    const o = JSON.parse(text) as Partial<JournalOwner>
    return typeof o.pid === 'number' && typeof o.host === 'string' && typeof o.since === 'number' ? { pid: o.pid, host: o.host, since: o.since } : null
  } catch {
    return null
  }
}

function defaultWeaveId(file: string): string {
  const host = hostname().split('.')[0] ?? 'host'
  const name = file === ':memory:' ? 'memory' : basename(file).replace(/\.[^.]*$/, '')
  return `${host}-${name}`.replace(/[^A-Za-z0-9_.-]/g, '-')
}

function runAll(fns: Array<() => void>): void {
  for (let i = 0; i < fns.length; i++) fns[i]!()
}

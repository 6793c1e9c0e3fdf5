/**
 * The SQLite journal: opening and closing the file, its owner, the statements that write each
 * kind of row, and the reads. What it queues commits through its group commit
 * (src/group-commit.ts), which states the invariants of batches, of journal_tail and of the tap.
 *
 * Invariants:
 * - A file that is not a Raiment journal, or one written by a newer schema, is refused before
 *   anything is written to it, and before its owner lock is taken (no sidecar file appears).
 * - One owner at a time: a writable journal (unless opened with `own: false`) takes the owner
 *   lock (src/journal-owner.ts) before it writes anything, migrations included, and holds it until
 *   `close`. Its first write then is one IMMEDIATE transaction that records the owner (meta
 *   'owner'): a process that found the journal unowned inside a write transaction of its own
 *   (the CLI's kill and send) has committed before it, so the owner reads what it wrote.
 * - An owner runs on the file its path leads to, not one replaced or deleted between its open and
 *   its lock (src/journal-open.ts, which opens the connection).
 * - A file with two names (a hard link) is opened to read only: every writable open, owner or
 *   not, refuses it before opening it (src/journal-owner.ts `refuseLinked`).
 * - The journal is in WAL mode only while an owner runs, or after one died: a clean close goes
 *   back to rollback mode, so a read-only open creates nothing (src/journal-owner.ts).
 */
import Database from 'better-sqlite3'
import { hostname } from 'node:os'
import { resolve } from 'node:path'
import { InvalidArgument, type JournalOwner } from './errors.js'
import { defaultWeaveId, JournalLock, leaveWal, parseOwner } from './journal-owner.js'
import { openJournal } from './journal-open.js'
import type { InFlight } from './in-flight.js'
import { threadRows, type ThreadsWhere } from './journal-queries.js'
import { GroupCommit, type JournalTap } from './group-commit.js'
import type { Observer } from './observer.js'
import { newScope } from './call-context.js'
import { ThreadIds } from './thread-ids.js'
import { DURABILITIES, type EntryRow, type JournalOptions, type ThreadRow, type ThreadStatus } from './journal-types.js'

export type { JournalTap, Write } from './group-commit.js'
export { SCHEMA_VERSION } from './journal-schema.js'
export { DURABILITIES, type Durability, type EntryRow, type JournalOptions, type ThreadRow, type ThreadStatus } from './journal-types.js'

type Statement = Database.Statement<unknown[]>

/** Early outcomes a batch may carry (see `Journal.earlyRoom`). */
const EARLY_PER_BATCH = 1024

export class Journal {
  readonly file: string
  /** `file` resolved when opened (another connection opens it so whatever the working directory becomes). */
  readonly path: string
  readonly weaveId: string
  /**
   * Set for an owner when failed threads may lack their dump: an owner before it stopped without
   * closing (a crash), and the dumps missing since then (ms since the epoch) are not all written
   * yet. Kept in meta `dumps-due` until they are, so a second crash before they are written does
   * not lose them (src/dump.ts writes them and clears it). Null otherwise, and for other openers.
   */
  dumpsDueSince: number | null = null
  readonly db: Database.Database
  /** Increments at each commit; lets a thread tell outcomes of one batch from the next. */
  epoch = 0
  /**
   * Whether journal-only outcomes may reach their threads before their commit (src/weft-pending.ts):
   * not under `replicated`, whose promise is that whatever a thread has seen exists off-host.
   */
  readonly #early: boolean
  /** Early outcomes in the batch of `#earlyEpoch` (see `earlyRoom`). */
  #earlyCount = 0
  #earlyEpoch = -1
  #closed = false
  /** The batches: every write queued here commits through it. */
  readonly #commits: GroupCommit
  #insertThread: Statement
  #endThread: Statement
  #endThreadCounted: Statement
  #thread: Statement
  #setStatus: Statement
  #setTrace: Statement | null = null
  /** Run as the journal closes, first (a resume's read-ahead stops: src/replay-ahead.ts). */
  readonly beforeClose: Array<() => void> = []
  /** Told of each group commit (src/observer.ts); null: nobody is. */
  observer: Observer | null = null
  #setMeta: Statement
  #deleteMeta: Statement | null = null
  #dropEntry: Statement
  #dropTailEntry: Statement
  #mainEntries: Statement
  #tailEntries: Statement
  #mainReplay: Statement
  #tailReplay: Statement
  readonly #ids: ThreadIds
  readonly #readonly: boolean
  /** The owner lock, held from before the first write until `close`; null for other openers. */
  #lock: JournalLock | null = null

  /**
   * Opens (creating if needed) a journal file.
   * @throws NotARaimentDb for a file that is not a Raiment journal (left untouched)
   * @throws InvalidArgument when the file's directory does not exist
   * @throws DbTooNew for a journal of a newer schema (left untouched)
   * @throws JournalOwned when another weave owns the journal (unless `own: false` or read-only)
   * @throws JournalLinked when the file has another name (a hard link) and this open may write (left untouched)
   * @throws JournalReplaced when another process replaced or deleted the file between each of its opens (5) and the owner lock (nothing written)
   */
  constructor(file: string, options: JournalOptions = {}) {
    const durability = options.durability ?? 'sync'
    if (!DURABILITIES.includes(durability)) {
      throw new InvalidArgument(`durability must be one of ${DURABILITIES.join(', ')}, got ${JSON.stringify(durability)}`)
    }
    this.#early = durability !== 'replicated'
    this.file = file
    this.path = file === ':memory:' ? file : resolve(file)
    const memory = file === ':memory:'
    this.#readonly = options.readonly ?? false
    const own = !this.#readonly && !memory && (options.own ?? true)
    const opened = openJournal(file, this.path, { readonly: this.#readonly, own, memory, durability })
    const db = opened.db
    this.db = db
    this.#lock = opened.lock
    this.weaveId = this.meta('weave_id') ?? ''
    if (!this.weaveId && !options.readonly) {
      // OR IGNORE: another process opening the new file at the same moment may have named it.
      db.prepare('INSERT OR IGNORE INTO meta (k, v) VALUES (?, ?)').run('weave_id', options.weaveId ?? defaultWeaveId(file))
      this.weaveId = this.meta('weave_id') ?? ''
    }
    const prep = (sql: string): Statement => (options.readonly ? (null as unknown as Statement) : db.prepare(sql))
    this.#insertThread = prep(
      'INSERT INTO threads (id, type, params, parent, status, created, trace, scope) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
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
    const cols = 'seq, key, ord, ok, outcome, started, duration'
    this.#mainEntries = db.prepare(`SELECT ${cols} FROM journal_main WHERE thread = ? ORDER BY seq`).raw(true)
    this.#tailEntries = db.prepare(`SELECT ${cols} FROM journal_tail WHERE thread = ? ORDER BY seq`).raw(true)
    const replayCols = 'seq, key, ord, ok, outcome'
    this.#mainReplay = db.prepare(`SELECT ${replayCols} FROM journal_main WHERE thread = ? ORDER BY seq`).raw(true)
    this.#tailReplay = db.prepare(`SELECT ${replayCols} FROM journal_tail WHERE thread = ? ORDER BY seq`).raw(true)
    this.#setMeta = prep('INSERT INTO meta (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v')
    this.#commits = new GroupCommit(this, prep, this.#setMeta)
    this.#ids = new ThreadIds({
      db,
      weaveId: this.weaveId,
      meta: (k) => this.meta(k),
      setNext: (n) => {
        this.#setMeta.run('next_thread', String(n))
        this.#commits.tapOwn([this.#setMeta], [['next_thread', String(n)]])
      },
    })
    if (own) {
      // The owner's first write (see the invariants): who it is, and what an earlier run left in
      // the tail moves now, so resumed threads read journal_main.
      try {
        db.transaction(() => {
          options.beforeOwn?.(this)
          // An owner record left behind: that owner stopped without closing (a crash). An older
          // crash whose dumps are still due keeps its earlier time.
          const crashed = parseOwner(this.meta('owner'))
          if (crashed !== null && this.meta('dumps-due') === undefined) this.#setMeta.run('dumps-due', String(crashed.since))
          const due = this.meta('dumps-due')
          this.dumpsDueSince = due === undefined ? null : Number(due)
          this.#setMeta.run('owner', JSON.stringify({ pid: process.pid, host: hostname(), since: Date.now(), ...(durability === 'replicated' ? { replicated: true } : {}) } satisfies JournalOwner))
          // Replicated with the journal (src/replication/): a weave taken over keeps it.
          this.#setMeta.run('durability', durability)
          this.#commits.moveTail()
        }).immediate()
      } catch (e) {
        db.close()
        this.#lock?.release()
        throw e
      }
    }
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

  /** A new thread id `<weave>/<n>` (src/thread-ids.ts); `block`: how many numbers to reserve if need be. */
  nextThreadId(block?: number): string {
    return this.#ids.next(block)
  }

  /** Thread id `id` was reserved by another process: this journal never hands it out (src/thread-ids.ts). */
  reservedThreadId(id: string): void {
    this.#ids.reserved(id)
  }

  /** Was `id` reserved by `reservedThreadId` and not spawned since? It is then taken off the list. */
  takeReservedThreadId(id: string): boolean {
    return this.#ids.takeReserved(id)
  }

  /**
   * `trace`: the trace context of the thread's run (src/observer.ts), or null; `scope`: its call
   * scope (`newScope()`, made here when not given).
   */
  insertThread(id: string, type: string, params: string, parent: string | null, status: ThreadStatus, after?: () => void, trace: string | null = null, scope: string = newScope()): void {
    this.#commits.queue(this.#insertThread, [id, type, params, parent, status, Date.now(), trace, scope], after)
  }

  /** Records the trace context of a thread's latest run (a resumed run, observed); null (the run has none: no tracer provider) leaves the row's. */
  setTrace(id: string, trace: string | null): void {
    if (trace === null) return
    this.#commits.queue((this.#setTrace ??= this.db.prepare('UPDATE threads SET trace = ? WHERE id = ?')), [trace, id])
  }

  /** Deletes a recorded entry (a resume told to continue past a divergence drops what it skips). */
  dropEntry(thread: string, seq: number): void {
    this.#commits.queue(this.#dropEntry, [thread, seq])
    this.#commits.queue(this.#dropTailEntry, [thread, seq])
  }

  /**
   * Records thread `id` killed now, with no weave running (the CLI's kill, inside its transaction
   * that found none), and leaves the next weave a request to tell its parent, monitors and links
   * and to dead-letter its inbox (src/weave-control.ts, 'killed'), unless it is held for a
   * successor (the caller applies its hold: src/successions.ts `endedOffline`). False, writing
   * nothing, when it has ended meanwhile.
   */
  killNow(id: string): boolean {
    const killed = this.db
      .prepare("UPDATE threads SET status = 'killed', outcome = NULL, ended = ?, calls = (SELECT count(*) FROM journal WHERE thread = ?) WHERE id = ? AND status IN ('pending', 'running')")
      .run(Date.now(), id, id)
    if (killed.changes === 0) return false
    this.db.prepare("INSERT INTO control (kind, thread) VALUES ('killed', ?)").run(id)
    return true
  }

  setStatus(id: string, status: ThreadStatus, after?: () => void): void {
    this.#commits.queue(this.#setStatus, [status, id], after)
  }

  /**
   * Records a thread's end. `calls` is how many journal entries the thread has, where the caller
   * knows it (its weft); otherwise they are counted in the commit.
   */
  endThread(id: string, status: ThreadStatus, outcome: string | null, after?: () => void, calls?: number): void {
    if (calls === undefined) this.#commits.queue(this.#endThread, [status, outcome, Date.now(), id, id], after)
    else this.#commits.queue(this.#endThreadCounted, [status, outcome, Date.now(), calls, id], after)
  }

  /**
   * Queues a journal entry; `after` runs once it is durable. `newThread`: this is the first entry
   * of its thread in this batch (true when the caller does not know).
   */
  addEntry(thread: string, seq: number, key: string, ord: number, ok: 0 | 1, outcome: string, started: number, duration: number, after: () => void, newThread = true): void {
    this.#commits.addEntry(thread, seq, key, ord, ok, outcome, started, duration, after, newThread)
  }

  /** Queues an arbitrary statement into the next batch (used by plug-ins such as mailboxes). */
  queue(sql: Statement, params: unknown[], after?: () => void): void {
    this.#commits.queue(sql, params, after)
  }

  /**
   * Resolves once everything queued so far is durable (src/group-commit.ts); `strict`: rejects
   * when the journal closes before that (else it resolves then).
   */
  committed(strict = false): Promise<void> {
    return this.#commits.committed(strict)
  }

  /** The batch forming now is released only once the journal's stream has it (src/group-commit.ts). */
  holdForStream(): void {
    this.#commits.holdForStream()
  }

  /** Null if the owner may act on the world now; else when it may, or never, fenced (src/group-commit.ts `gated`). */
  gated(): Promise<void> | null {
    return this.#commits.gated()
  }

  /** A value read at each commit, handed over once its batch is released (src/group-commit.ts `addMark`). */
  addMark(read: () => number, released: (v: number) => void): void {
    this.#commits.addMark(read, released)
  }

  /**
   * Sets the tap (once, before the first batch it must see): from here on every batch reaches
   * it (see src/group-commit.ts). Returns the rseq of the last batch it saw, 0 for none.
   */
  /** Whether journal_tail may hold entries of `thread` (false: it holds none; see GroupCommit). */
  mayHaveTail(thread: string): boolean {
    return this.#commits.mayHaveTail(thread)
  }

  setTap(tap: JournalTap): number {
    return this.#commits.setTap(tap)
  }

  /** The rseq of the last batch committed through the tap (0 before any). */
  get rseq(): number {
    return this.#commits.rseq
  }

  /**
   * Whether one more outcome may reach its thread before the commit of the batch being queued
   * (counted if so): at most EARLY_PER_BATCH a batch, so that threads passing messages on among
   * themselves (a ring) give way to the commit, and to I/O, after as many, rather than running
   * on within one turn of the event loop.
   */
  earlyRoom(): boolean {
    if (!this.#early) return false
    if (this.#earlyEpoch !== this.epoch) {
      this.#earlyEpoch = this.epoch
      this.#earlyCount = 0
    }
    return this.#earlyCount++ < EARLY_PER_BATCH
  }

  get closed(): boolean {
    return this.#closed
  }

  /** A live call was started; a thread's are not marked once it has ended (src/in-flight.ts). */
  started(c: InFlight): void {
    this.#commits.started(c)
  }

  notStarted(thread: string): void {
    this.#commits.notStarted(thread)
  }

  /** Queues meta row `k` = `v` into the next batch. */
  queueMeta(k: string, v: string): void {
    this.#commits.queue(this.#setMeta, [k, v])
  }

  /** Queues the deletion of meta row `k` into the next batch. */
  queueMetaDelete(k: string): void {
    this.#commits.queue((this.#deleteMeta ??= this.db.prepare('DELETE FROM meta WHERE k = ?')), [k])
  }

  /** The meta rows whose keys begin with `prefix` (`back:`, `cancel:`), as [the rest of the key, value]. */
  metaWithPrefix(prefix: string): Array<[string, string]> {
    return (this.db.prepare('SELECT substr(k, ?), v FROM meta WHERE substr(k, 1, ?) = ?').raw(true).all(prefix.length + 1, prefix.length, prefix) as Array<[string, string]>)
  }

  /**
   * Whether writes are queued for a next commit (a step may be halfway: see `ownTurn`); false
   * once a batch failed: nothing commits after it.
   */
  get queued(): boolean {
    return this.#commits.queued && this.#commits.failed === null
  }

  /** Commits what is queued now, synchronously (used at shutdown). */
  flushNow(): void {
    this.#commits.flushNow()
  }

  /** The threads of the journal, in the order they were made; of these statuses, of this type. */
  threads(where: ThreadsWhere = {}): ThreadRow[] {
    return threadRows(this.db, where)
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

  /**
   * A thread's entries in completion order, those queued for the next commit included: its record
   * as of now, read without a flush (a flush from an async continuation may split a step).
   */
  entriesNow(thread: string): EntryRow[] {
    const queued = this.#commits.queuedEntries(thread)
    const committed = this.entries(thread)
    return queued.length === 0 ? committed : committed.concat(queued)
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
    for (const f of this.beforeClose.splice(0)) f()
    let error: Error | null = null
    try {
      this.flushNow()
    } catch (e) {
      error = e as Error
    }
    // After a batch failed, nothing more is written: the owner record stays, as after a crash.
    const failed = this.#commits.failed !== null
    this.#closed = true
    this.#commits.closed()
    try {
      if (this.#lock !== null && !failed) this.setMeta('owner', null)
      if (!this.#readonly) leaveWal(this.db, this.file, this.#lock !== null)
    } catch (e) {
      // Busy past the timeout, or the disk full: the owner record stays, as after a crash; the
      // connection and the lock go all the same (a process living on could not open it again).
      error ??= e as Error
    } finally {
      this.db.close()
      this.#lock?.release()
    }
    if (error !== null) throw error
  }
}

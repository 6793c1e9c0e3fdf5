/**
 * Rebuilding a journal file from its stream (a takeover, or `raiment restore`).
 *
 * Reads the current generation (src/replication/records.ts) from its snapshot to its end, drops
 * records of an epoch lower than one already seen and batches already applied (by rseq; one that
 * comes early, before a gap, waits for the gap to fill and is dropped if it never does: nothing
 * after a gap was ever released), and writes a new journal whose live threads replay to the state
 * they had. The file appears only once it is complete (written beside it, then renamed), and is
 * put in place under its owner lock (src/journal-owner.ts), after a last look that it is not there
 * yet: a weave starting on it meanwhile is refused, not left running on a file replaced under it.
 * Renamed, never linked: a second name would be a second owner (`refuseLinked`), were a crash to
 * leave it.
 */
import { existsSync, renameSync, rmSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import type { ChannelModel } from 'amqplib'
import type Database from 'better-sqlite3'
import { BrokerConnection } from '../amqp/connection.js'
import { stopPoint } from '../crash-points.js'
import { InvalidArgument } from '../errors.js'
import { fsyncPath, syncDir } from '../fsync.js'
import { Journal, type Write } from '../journal.js'
import { takeOwnerLock } from '../journal-owner.js'
import { RebuildFailed } from './errors.js'
import { decodeWrites } from './codec.js'
import { genStream, type RecordHeaders } from './records.js'
import { JournalStreamGone, NoJournalStream, queueExists, readHead, readToEnd } from './streams.js'

export interface RebuildOptions {
  /** The broker (amqp://USER:PASSWORD@HOST:PORT); ignored when `conn` is given. */
  url: string
  /** Default 'raiment'. */
  namespace?: string
  /** The journal to rebuild: the weave id whose stream it is. */
  weaveId: string
  /** The new journal file; refused if it exists. */
  file: string
  log?: (line: string) => void
  /** A connection to use instead of opening one on `url` (left open). */
  conn?: ChannelModel
}

export interface RebuildResult {
  /** Records read from the generation (snapshot parts and batches, duplicates included). */
  records: number
  /** Journal entries written. */
  entries: number
  /** The highest epoch in the stream. */
  epoch: number
  /** The last batch the rebuilt journal holds. */
  lastRseq: number
  /** The generation read. */
  generation: number
  ms: number
}

const ENTRY_SQL = 'INSERT INTO journal_main (thread, seq, key, ord, ok, outcome, started, duration) VALUES (?, ?, ?, ?, ?, ?, ?, ?)'
const ATTEMPTS = 3
const WRITE = /^(INSERT|UPDATE|DELETE) /

/**
 * Rebuilds journal `weaveId` from its stream into a new file `file`.
 * @throws InvalidArgument when `file` exists (nothing is touched)
 * @throws JournalOwned when a weave runs on `file` (nothing is touched)
 * @throws NoJournalStream (RAIMENT_NO_JOURNAL_STREAM) when the journal has no stream
 * @throws RebuildFailed RAIMENT_JOURNAL_STREAM_INCOMPLETE when the generation holds no whole snapshot (nor the one before it, where there is one)
 * @throws JournalStreamGone when the generation is deleted under it three times running, or (`missing`) does not exist though the head names it
 * @example
 * const r = await rebuildJournal({ url: 'amqp://guest:guest@127.0.0.1:5672', weaveId: 'orders-1', file: 'orders-1.restored.db' })
 */
export async function rebuildJournal(o: RebuildOptions): Promise<RebuildResult> {
  const t0 = performance.now()
  const ns = o.namespace ?? 'raiment'
  const log = o.log ?? (() => {})
  if (existsSync(o.file)) throw new InvalidArgument(`${o.file} exists; a journal is rebuilt into a new file only: pass another --db, or move that one away`)
  if (!existsSync(dirname(resolve(o.file)))) throw new InvalidArgument(`the directory of ${o.file} does not exist; create it first (mkdir -p ${dirname(o.file)})`)
  const broker = o.conn === undefined ? await BrokerConnection.open(o.url, log) : null
  const conn = o.conn ?? broker!.connection!
  try {
    for (let attempt = 1; ; attempt++) {
      const head = await readHead(conn, ns, o.weaveId)
      if (head === null) throw new NoJournalStream(ns, o.weaveId, 'its head stream is missing or names no generation')
      const tmp = `${o.file}.rebuild-${process.pid}`
      rmSync(tmp, { force: true })
      let gen = head.gen
      try {
        let r: Omit<RebuildResult, 'generation' | 'ms'>
        for (;;) {
          try {
            // The epoch is at least the head's: a takeover picks the one after it.
            r = await rebuildFrom(conn, ns, o.weaveId, gen, tmp, head.epoch)
            break
          } catch (e) {
            // The head names a generation whose snapshot never became whole (its writer, or the
            // node holding it, lost mid-checkpoint): the one before is still whole then, as a
            // generation is deleted only once a later one is current (or incomplete too: on back).
            if (!(e instanceof RebuildFailed && e.code === 'RAIMENT_JOURNAL_STREAM_INCOMPLETE') || gen <= 1) throw e
            if (!(await queueExists(conn, genStream(ns, o.weaveId, gen - 1)))) throw e
            log(`generation ${gen} of '${o.weaveId}' holds no whole snapshot; rebuilding from generation ${gen - 1}`)
            rmSync(tmp, { force: true })
            gen--
          }
        }
        const lock = takeOwnerLock(o.file, () => ownerOf(o.file))
        try {
          if (existsSync(o.file)) throw new InvalidArgument(`${o.file} appeared while the journal was rebuilt; nothing was written: pass another --db, or move that one away`)
          stopPoint('rebuild-checked')
          renameSync(tmp, o.file)
          syncDir(dirname(resolve(o.file)))
        } finally {
          lock.release()
        }
        return { ...r, generation: gen, ms: performance.now() - t0 }
      } catch (e) {
        rmSync(tmp, { force: true })
        if (!(e instanceof JournalStreamGone)) throw e
        // Gone before it was read, not during: the head, read again, still names it (a
        // checkpoint names the next generation before it deletes one). No read finds it.
        const now = e.missing ? null : await readHead(conn, ns, o.weaveId)
        if (now?.gen === head.gen && !(await queueExists(conn, genStream(ns, o.weaveId, gen)))) throw new JournalStreamGone(genStream(ns, o.weaveId, gen), true)
        // A checkpoint deleted the generation while it was read: read the head again.
        if (e.missing || attempt >= ATTEMPTS) throw e
        log(`generation ${gen} of '${o.weaveId}' went while it was read; reading the head again`)
      }
    }
  } finally {
    await broker?.close()
  }
}

/** The owner record of journal `file`, as a weave running on it wrote it. */
function ownerOf(file: string): string | undefined {
  const j = new Journal(file, { readonly: true })
  try {
    return j.meta('owner')
  } finally {
    j.close()
  }
}

/** Generation `gen` rebuilt into `file`; its epoch is at least `atLeast` (the head's). */
async function rebuildFrom(conn: ChannelModel, ns: string, weaveId: string, gen: number, file: string, atLeast: number): Promise<Omit<RebuildResult, 'generation' | 'ms'>> {
  // No fsync while writing (the file is not in place yet: a crash leaves only it); one at the end.
  const journal = new Journal(file, { weaveId, own: false, durability: 'memory' })
  const db = journal.db
  const apply = new Applier(db)
  let epoch = 0
  let last = -1
  let snapshotParts = 0
  const early = new Map<number, Buffer>()
  let records: number
  db.exec('BEGIN')
  try {
    ;({ records } = await readToEnd(conn, genStream(ns, weaveId, gen), (h: RecordHeaders, body: Buffer) => {
      if (h.epoch < epoch) return
      epoch = h.epoch
      if (h.kind === 'snapshot') {
        if (last >= 0 || h.part !== snapshotParts) return
        apply.writes(decode(body))
        snapshotParts++
        if (h.end === 1) last = h.rseq
        return
      }
      if (h.kind !== 'batch' || last < 0 || h.rseq <= last) return
      if (h.rseq > last + 1) {
        early.set(h.rseq, body)
        return
      }
      apply.writes(decode(body))
      last = h.rseq
      for (let b = early.get(last + 1); b !== undefined; b = early.get(last + 1)) {
        early.delete(last + 1)
        apply.writes(decode(b))
        last++
      }
    }))
    if (last < 0) throw new RebuildFailed('RAIMENT_JOURNAL_STREAM_INCOMPLETE', `generation ${gen} of journal '${weaveId}' holds no whole snapshot; nothing was written`)
    skipOutboxNumbers(db)
    skipThreadNumbers(db)
    epoch = Math.max(epoch, atLeast)
    const setMeta = db.prepare('INSERT OR REPLACE INTO meta (k, v) VALUES (?, ?)')
    setMeta.run('rseq', String(last))
    setMeta.run('repl_epoch', String(epoch))
    db.exec('COMMIT')
  } catch (e) {
    if (db.inTransaction) db.exec('ROLLBACK')
    journal.close()
    throw e
  }
  journal.close()
  fsyncPath(file)
  return { records, entries: apply.entries, epoch, lastRseq: last }
}

/** How far a rebuilt journal numbers its next outbox row past the last the stream has. */
export const OUTBOX_GAP = 2 ** 32

/**
 * Under 'sync' the lost weave may have published outbox rows whose batches the stream does not
 * have (the lag). The rebuilt journal would number its next rows as those, and a weave that took
 * them drops a row whose number it took from this journal (same weave and journal id) as a copy
 * (src/received.ts): new messages lost. So new rows are numbered OUTBOX_GAP past the last the
 * stream has. (The receiving weaves' chains follow rows by the number of the row before them,
 * not by counting, so the gap costs nothing there.)
 */
function skipOutboxNumbers(db: Database.Database): void {
  const row = db.prepare("SELECT rowid, seq FROM sqlite_sequence WHERE name = 'outbox'").get() as { rowid: number; seq: number } | undefined
  if (row === undefined) db.prepare("INSERT INTO sqlite_sequence (name, seq) VALUES ('outbox', ?)").run(OUTBOX_GAP)
  else db.prepare('UPDATE sqlite_sequence SET seq = ? WHERE rowid = ?').run(row.seq + OUTBOX_GAP, row.rowid)
}

/** How far a rebuilt journal numbers its next thread past the last reservation the stream has. */
export const THREAD_GAP = 2 ** 24

/**
 * Under 'sync' the stream may lack the lost weave's last reservations of thread numbers and the
 * spawns that used them (a lag of at most `maxLagBytes`: far fewer than THREAD_GAP threads). The
 * rebuilt journal would give those ids again, to other threads, which a watch, a link or a
 * message meant for the lost ones would then reach. So its next numbers start THREAD_GAP on.
 */
function skipThreadNumbers(db: Database.Database): void {
  const next = db.prepare("SELECT v FROM meta WHERE k = 'next_thread'").pluck().get() as string | undefined
  db.prepare('INSERT OR REPLACE INTO meta (k, v) VALUES (?, ?)').run('next_thread', String(Number(next ?? '1') + THREAD_GAP))
}

/** Runs logical writes, each SQL prepared once. */
class Applier {
  readonly #db: Database.Database
  readonly #stmts = new Map<string, Database.Statement<unknown[]>>()
  entries = 0
  constructor(db: Database.Database) {
    this.#db = db
  }
  writes(ws: readonly Write[]): void {
    for (const [sql, params] of ws) {
      let s = this.#stmts.get(sql)
      if (s === undefined) {
        // Only writes to the journal's own tables: never ATTACH, PRAGMA or the like from a stream.
        if (!WRITE.test(sql)) throw new RebuildFailed('RAIMENT_JOURNAL_STREAM_INVALID', `a record of the stream holds a statement that is not a journal write (${sql.slice(0, 60)}); nothing was written`)
        s = this.#db.prepare(sql)
        this.#stmts.set(sql, s)
      }
      s.run(...params)
      if (sql === ENTRY_SQL) this.entries++
    }
  }
}

/** A record's writes. @throws RebuildFailed RAIMENT_JOURNAL_STREAM_INVALID on a body that is not a record's */
function decode(body: Buffer): Write[] {
  try {
    return decodeWrites(body)
  } catch (e) {
    throw new RebuildFailed('RAIMENT_JOURNAL_STREAM_INVALID', `a record of the stream cannot be read (${(e as Error).message}); nothing was written`)
  }
}


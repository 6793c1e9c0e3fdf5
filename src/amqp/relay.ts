/**
 * The outbox relay: publishes committed outbox rows to the broker, in outbox order, on one
 * confirm channel, and deletes each row once the broker has confirmed it.
 *
 * Invariants:
 * - A row is published only once its batch is released (src/group-commit.ts `addMark`): under
 *   `replicated`, once the journal's stream has it. A row committed here and lost with the host
 *   before its batch reached the stream would otherwise be out while the rebuilt journal numbers
 *   its next row the same, and the receiver would drop that one as a copy.
 *   Fenced, nothing more is released, so nothing more is published.
 * - Rows are published in `n` order on a single channel, so what one weave sends another
 *   arrives in the order sent (a row published twice, after a lost connection, is dropped by the
 *   receiver, which keys messages by id and by row number).
 * - A row is deleted only after its confirm; with a new channel every remaining row is published
 *   again from the first.
 * - A channel that closes while its connection lives (the broker nacked a publish: a queue full
 *   or without a leader; or it closed the channel with an error) is opened again after a
 *   back-off, 1 s doubling up to 30 s and reset by the next confirm, and every remaining row is
 *   published again from the first. A channel that closes with its connection is left to the
 *   connection: its 'down' detaches the relay in the same step, and its next 'up' attaches it.
 * - A row the broker returns as unroutable (mandatory: no queue for that weave id, so no such
 *   weave ever joined, or it left) becomes a dead letter here, in the transaction that deletes it; so does a
 *   row it refuses for its size (it closes the channel: src/amqp/refusals.ts), which is never
 *   published again, and the rows after it go on at once on a new channel. A row bigger than
 *   BATCH_BYTES goes alone, and the rows of a batch refused for its size go again each alone
 *   (`#alone`), so the row refused is known by its size and takes no other with it.
 *   A move's record refused for its size, or returned, is no dead letter: its thread comes back to
 *   this weave (`RelayHooks.refusedMove`), with the rows after it that were for it, before the rest
 *   goes on (rows for that weave returned meanwhile wait for it: those it took are not dead letters).
 * - Consecutive rows for one weave may travel in one AMQP message, a batch (src/amqp/wire.ts):
 *   their envelopes in `n` order, each with its own id, so the receiver takes each once and in
 *   order exactly as if they had come one by one; the batch is confirmed, returned or redelivered
 *   as a whole. A move record always travels alone.
 * - Each AMQP message says where its envelopes come from (headers, see src/received.ts): `src`,
 *   this journal; `sn`, each row's number; `prev`, the number of the row before it for the same
 *   weave (null if not known). Rows leave the outbox only once confirmed, so the row before is one
 *   still there and read before it on this channel, or the last one confirmed for that weave
 *   (`#sentTo`, saved in `outbox_sent` in the transaction that deletes it). A row the broker
 *   refused keeps the `prev` it was first published with (in memory, and in its outbox row,
 *   column `prev`, for a restart): the rows after it, confirmed and gone, follow it there. A row
 *   returned (no such weave) is the row before none: the next ones follow the row before it.
 * - An envelope whose `prev` is a row not confirmed yet is marked (`pend`): only such an envelope
 *   can reach its weave ahead of that row (a refused publish), and the receiver parks it until
 *   that row comes (src/amqp/resequence.ts).
 *
 * Cost: the relay is pipelined. One query reads the rows of a commit (up to the window), they are
 * published without waiting, packed per destination weave, and confirms come back while later
 * rows go out; the rows confirmed in one turn of the event loop are deleted by one statement per
 * run of consecutive numbers. Nothing here reads the outbox once per confirm, and the broker
 * handles one message per batch, not one per row.
 *
 * Deletes wait (src/amqp/outbox-deletes.ts): the rows confirmed within DELETE_AFTER_MS are deleted
 * together, not in a commit per confirm.
 */
import type { ConfirmChannel, ChannelModel } from 'amqplib'
import type Database from 'better-sqlite3'
import type { Journal } from '../journal.js'
import type { Topology } from './topology.js'
import { wireMessage, type Row } from './wire.js'
import { OutboxDeletes } from './outbox-deletes.js'
import { deadLetterOf, MOVE_PREFIX, Refusals, sizeRefusal, type RelayHooks, type SizeRefusal } from './refusals.js'

/**
 * At most this many published rows await their confirm at once: two commits' worth of a busy
 * weave (a commit holds up to ~1,000 sends), so one commit's rows go out while the last one's
 * confirms come back.
 */
export const MAX_IN_FLIGHT = 2_000
/** At most this many rows read by one query. */
const READ = 500
/** By default at most this many rows, and about BATCH_BYTES of envelopes, in one AMQP message. */
export const BATCH_ROWS = 250
const BATCH_BYTES = 96 * 1024
/** A channel closed under a live connection is opened again after this, doubling up to REOPEN_MAX_MS. */
const REOPEN_MS = 1_000
const REOPEN_MAX_MS = 30_000
/**
 * Rows confirmed are deleted at most this long after their confirm (see Cost, above): a few round
 * trips' worth between two weaves, about 2,000 rows of a busy relay (src/amqp/outbox-deletes.ts).
 */
export { DELETE_AFTER_MS } from './outbox-deletes.js'

type Stmt = Database.Statement<unknown[]>

/** Rows read for one destination weave, not yet published, and the row before each for that weave. */
interface Pack {
  rows: Row[]
  prevs: Array<number | null>
  bytes: number
}

export class Relay {
  readonly #journal: Journal
  readonly #topology: Topology
  readonly #select: Stmt
  readonly #count: Stmt
  readonly #saveSent: Stmt
  readonly #savePrev: Stmt
  /** This journal, as the receivers know it: `<weave id>#<journal id>`. */
  readonly #src: string
  /** Per destination weave: the highest row number confirmed. */
  readonly #sentTo: Map<string, number>
  /** Entries of #sentTo not yet queued into outbox_sent. */
  readonly #sentDirty = new Map<string, number>()
  /** Per destination weave: the highest row number read on this channel (from #sentTo at attach). */
  #lastTo = new Map<string, number>()
  /** Per row not yet confirmed: the `prev` it was first published with. */
  readonly #prevs = new Map<number, number | null>()
  /** At most this many rows in one AMQP message (1: each alone). */
  readonly #batch: number
  readonly #log: (line: string) => void
  /** The weave, told what the broker took or refused, or null. */
  readonly #hooks: RelayHooks | null
  #ch: ConfirmChannel | null = null
  /** The connection the relay works on; null when detached. */
  #conn: ChannelModel | null = null
  #reopenMs = REOPEN_MS
  /** The broker refused a publish and has confirmed nothing since (logged once, not per retry). */
  #refused = false
  /** Why the current channel is closing, if the broker said (a nack, or the channel's error). */
  #why: string | null = null
  #reopenTimer: NodeJS.Timeout | null = null
  /** The highest row number published on the current channel. */
  #next = 0
  #inFlight = 0
  /**
   * True when rows may be committed and not yet published on this channel: set by `wake` (a
   * commit), and when a pump stopped early (window full, a move waiting for the confirms before
   * it); cleared when a query returns fewer rows than it asked for.
   */
  #more = true
  #pumpQueued = false
  /**
   * The last outbox row of the batches the journal has released: rows after it are committed here
   * but, under `replicated`, perhaps not yet in the journal's stream, and are not published.
   */
  #released = 0
  /** The deletes of the rows confirmed (or dead letters), and those rows until deleted (`done`). */
  readonly #deletes: OutboxDeletes
  /** Message ids the broker returned as unroutable on the current channel. */
  #returned = new Set<string>()
  /** What is published on the current channel and not confirmed: by its first row's number, its rows and bytes. */
  #unconfirmed = new Map<number, { rows: Row[]; bytes: number }>()
  /** The current channel closes as the broker refused a message for its size. */
  #tooLarge: SizeRefusal | null = null
  /** What is refused for its size or returned: dead letters, or a move's thread back here. */
  readonly #refusals: Refusals
  /** Rows of a batch the broker refused for its size, until done: each goes alone. */
  readonly #alone = new Set<number>()
  #idle: Array<() => void> = []

  constructor(journal: Journal, topology: Topology, log: (line: string) => void, batch = BATCH_ROWS, hooks: RelayHooks | null = null) {
    this.#journal = journal
    this.#topology = topology
    this.#log = log
    this.#batch = batch
    this.#hooks = hooks
    this.#refusals = new Refusals(
      {
        dead: (rows, reason) => this.#done(rows, reason),
        taken: (dest, ns) => this.#taken(dest, ns),
        hold: (n, on) => void (on ? this.#deletes.done.add(n) : this.#deletes.done.delete(n)),
        split: (rows) => rows.forEach(([n]) => this.#alone.add(n)),
        closed: () => journal.closed,
      },
      hooks,
      log,
      topology.ns,
    )
    const db = journal.db
    this.#select = db.prepare('SELECT n, msg_id, dest, body, trace, prev FROM outbox WHERE n > ? AND n <= ? ORDER BY n LIMIT ?').raw(true)
    this.#savePrev = db.prepare('UPDATE outbox SET prev = ? WHERE n = ?')
    // Messages waiting for the weave of their name (src/name-sends.ts) go into the outbox later.
    this.#count = db.prepare('SELECT (SELECT count(*) FROM outbox) + (SELECT count(*) FROM outbox_names)').pluck()
    this.#deletes = new OutboxDeletes(journal, { waiting: () => this.#idle.length > 0, before: (hi) => this.#beforeDeletes(hi), after: () => this.#checkIdle() })
    this.#saveSent = db.prepare('INSERT INTO outbox_sent (dest, n) VALUES (?, ?) ON CONFLICT (dest) DO UPDATE SET n = max(n, excluded.n)')
    this.#sentTo = new Map(db.prepare('SELECT dest, n FROM outbox_sent').raw(true).all() as Array<[string, number]>)
    this.#src = `${journal.weaveId}#${journal.meta('journal_id') ?? ''}`
    // The last row of the batches released (see the invariants); rows after it wait.
    const last = db.prepare('SELECT coalesce(max(n), 0) FROM outbox').pluck()
    journal.addMark(
      () => last.get() as number,
      (n) => {
        if (n <= this.#released) return
        this.#released = n
        this.#more = true
        this.#schedulePump()
      },
    )
  }

  /** Rows waiting for the broker, or for the weave that holds their name. */
  pending(): number {
    if (this.#journal.closed) return 0
    return this.#count.get() as number
  }

  /** Resolves once the outbox is empty (every row committed so far confirmed and deleted). */
  empty(): Promise<void> {
    if (this.pending() === 0) return Promise.resolve()
    // Someone waits: the rows confirmed are deleted now, not after DELETE_AFTER_MS.
    if (this.#deletes.timed) this.#deletes.flush()
    return new Promise((resolve) => this.#idle.push(resolve))
  }

  #checkIdle(): void {
    if (this.#idle.length === 0 || this.pending() > 0) return
    const idle = this.#idle
    this.#idle = []
    for (const f of idle) f()
  }

  async attach(conn: ChannelModel): Promise<void> {
    this.#conn = conn
    const ch = await conn.createConfirmChannel()
    ch.on('error', (e: Error) => {
      if (this.#ch !== ch) return
      this.#why ??= `the broker closed the relay's channel (${e.message.replace(/\s+/g, ' ')})`
      this.#tooLarge ??= sizeRefusal(e.message)
    })
    await this.#topology.exchanges(ch)
    const returned = new Set<string>()
    ch.on('return', (m) => returned.add(String(m.properties.messageId)))
    ch.on('close', () => {
      if (this.#ch !== ch) return
      this.#ch = null
      const why = this.#why ?? "the relay's channel closed"
      this.#why = null
      const tooLarge = this.#tooLarge
      this.#tooLarge = null
      // Refused for its size: a dead letter (or a move's thread back here), and the rest goes on
      // at once (no back-off).
      const refused = tooLarge === null ? null : this.#refusals.tooLarge(tooLarge, this.#unconfirmed)
      if (refused !== null) {
        void refused.then(() => {
          if (this.#conn === conn && this.#ch === null) this.attach(conn).catch(() => {})
        })
        return
      }
      // Closed with its connection (the broker closed that, or it dropped), the connection's
      // 'down' has detached the relay by the next tick: it reconnects, and logs why, itself.
      process.nextTick(() => {
        if (this.#conn === conn) this.#reopen(conn, why)
      })
    })
    this.#ch = ch
    this.#why = null
    this.#returned = returned
    this.#unconfirmed = new Map()
    this.#next = 0
    this.#lastTo = new Map(this.#sentTo)
    this.#inFlight = 0
    this.wake()
  }

  /** Opens a channel on `conn` again after the back-off, unless the relay moved on by then. */
  #reopen(conn: ChannelModel, why: string): void {
    if (this.#reopenTimer !== null) return
    const ms = this.#reopenMs
    this.#reopenMs = Math.min(ms * 2, REOPEN_MAX_MS)
    if (!this.#refused) {
      this.#refused = true
      this.#log(`raiment: ${why}; outbound messages stay in the outbox and those not confirmed are published again, first in ${ms / 1000} s`)
    }
    this.#reopenTimer = setTimeout(() => {
      this.#reopenTimer = null
      if (this.#conn !== conn) return
      this.attach(conn).catch(() => {
        // The connection is going too: its 'down' and 'up' bring the relay back.
      })
    }, ms)
    this.#reopenTimer.unref()
  }

  /**
   * Outbox rows were committed: publishes them soon. Called once per row of a commit, so it only
   * schedules one pump, which runs after the commit's other callbacks.
   */
  wake(): void {
    this.#more = true
    this.#schedulePump()
    // Messages waiting for a name may have gone to the dead letters, not through the outbox.
    if (this.#idle.length > 0) process.nextTick(() => this.#checkIdle())
  }

  #schedulePump(): void {
    if (this.#pumpQueued) return
    this.#pumpQueued = true
    process.nextTick(() => {
      this.#pumpQueued = false
      this.#pump()
    })
  }

  /** Publishes what is committed and not yet published on this channel, up to the window. */
  #pump(): void {
    // A pump queued as the weave closed its journal has nothing left to publish from.
    if (this.#journal.closed) return
    while (this.#more) {
      const ch = this.#ch
      if (ch === null || this.#inFlight >= MAX_IN_FLIGHT) return
      const limit = Math.min(READ, MAX_IN_FLIGHT - this.#inFlight)
      const rows = this.#select.all(this.#next, this.#released, limit) as Row[]
      if (rows.length < limit) this.#more = false
      /** Rows read and not yet published, by destination weave, each list in `n` order. */
      const packs = new Map<string, Pack>()
      for (const row of rows) {
        if (row[3].startsWith(MOVE_PREFIX)) {
          // A moving thread's record goes alone, once everything before it is confirmed (in its
          // queue), so what the thread sent from here is ahead of anything it sends from its new
          // weave.
          if (!this.#publishAll(ch, packs)) return
          if (this.#inFlight > 0) {
            this.#more = true
            return
          }
          this.#next = row[0]
          if (!this.#deletes.done.has(row[0]) && !this.#publish(ch, [row], [this.#prevOf(row)])) return
          continue
        }
        this.#next = row[0]
        // Done (confirmed, or no weave takes it) and not yet deleted: not the row before the next
        // one for its weave either (a confirmed one is in #sentTo; one refused must not be waited for).
        if (this.#deletes.done.has(row[0])) continue
        const prev = this.#prevOf(row)
        let pack = packs.get(row[2])
        // A row that would take its pack past BATCH_BYTES goes without it (a big one alone).
        const alone = this.#alone.has(row[0])
        if (pack !== undefined && (alone || pack.bytes + row[3].length > BATCH_BYTES)) {
          packs.delete(row[2])
          if (!this.#publish(ch, pack.rows, pack.prevs)) return
          pack = undefined
        }
        if (pack === undefined) packs.set(row[2], (pack = { rows: [], prevs: [], bytes: 0 }))
        pack.rows.push(row)
        pack.prevs.push(prev)
        pack.bytes += row[3].length
        if (alone || pack.rows.length >= this.#batch || pack.bytes >= BATCH_BYTES) {
          packs.delete(row[2])
          if (!this.#publish(ch, pack.rows, pack.prevs)) return
        }
      }
      if (!this.#publishAll(ch, packs)) return
    }
  }

  #publishAll(ch: ConfirmChannel, packs: Map<string, Pack>): boolean {
    for (const pack of packs.values()) if (!this.#publish(ch, pack.rows, pack.prevs)) return false
    packs.clear()
    return true
  }

  /**
   * The row before `row` in the outbox for its weave, or null; called for each row read, in order.
   * Kept from a row's first read (`#prevs`): read again on a new channel after a later row was
   * confirmed (a nack), it says the same, so the receiver's chain still goes through it.
   */
  #prevOf(row: Row): number | null {
    const n = row[0]
    const last = this.#lastTo.get(row[2])
    if (last === undefined || last < n) this.#lastTo.set(row[2], n)
    const known = this.#prevs.get(n)
    if (known !== undefined) return known
    // Saved when it was refused (by an earlier run); else the last row read for that weave, if before it.
    const prev = row[5] ?? (last !== undefined && last >= n ? null : (last ?? null))
    this.#prevs.set(n, prev)
    return prev
  }

  /**
   * Publishes rows for one weave, alone or as a batch; false if the channel is closing. A row
   * whose id is too long for an AMQP message id goes as a batch of one (its id in the body).
   */
  #publish(ch: ConfirmChannel, rows: Row[], prevs: Array<number | null>): boolean {
    // Marked (`pend`) if the row before the first is not confirmed yet (rows read and not
    // confirmed are those in #prevs): only then can this message reach its weave ahead of it (a
    // refused publish), and only then does the receiver wait for it (src/amqp/resequence.ts). (One
    // confirmed is in the queue ahead of it, or taken; a weave restarted on a fresh journal never
    // had it, and does not wait for it.)
    const prev = prevs[0] ?? null
    const { id, body, headers } = wireMessage(this.#src, rows, prevs, prev !== null && this.#prevs.has(prev))
    this.#inFlight += rows.length
    const bytes = Buffer.from(body)
    this.#unconfirmed.set(rows[0]![0], { rows, bytes: bytes.length })
    try {
      ch.publish(this.#topology.exchange, rows[0]![2], bytes, { persistent: true, mandatory: true, messageId: id, contentType: 'application/json', headers }, (err) =>
        this.#confirm(ch, id, rows, err),
      )
      return true
    } catch {
      // The channel is closing: its 'close' clears it, and the next one publishes from the start.
      return false
    }
  }

  #confirm(ch: ConfirmChannel, id: string, rows: Row[], err: unknown): void {
    if (this.#ch !== ch) return
    this.#inFlight -= rows.length
    if (err) {
      // Published again after later rows were confirmed (and deleted): keeps the row before it,
      // after a restart too (its outbox row), so that its receiver's chain goes through it.
      for (const [n] of rows) {
        const prev = this.#prevs.get(n)
        if (prev !== undefined && prev !== null && !this.#journal.closed) this.#journal.queue(this.#savePrev, [prev, n])
      }
      // Nacked (the queue could not take it): publish everything again on a fresh channel.
      this.#why ??= 'the broker refused a message (nack: a queue full, or without a leader)'
      void ch.close().catch(() => {})
      return
    }
    // (Kept when refused: a channel closed for a message's size fails them all first.)
    this.#unconfirmed.delete(rows[0]![0])
    this.#reopenMs = REOPEN_MS
    if (this.#refused) {
      this.#refused = false
      this.#log('raiment: the broker takes messages again')
    }
    const move = rows[0]![3].startsWith(MOVE_PREFIX)
    if (!this.#returned.delete(id)) {
      if (move) this.#hooks?.sent(id)
      this.#done(rows, null)
    } else this.#refusals.returned(rows, move)
    if (this.#more) this.#schedulePump()
  }

  /**
   * Rows confirmed, or (`dead` says why) that no weave will take: deleted soon, those dead as dead
   * letters in the same transaction (a crash between would make them twice).
   */
  #done(rows: Row[], dead: string | null): void {
    for (const [n, , dest, body] of rows) {
      const prev = this.#prevs.get(n) ?? null
      this.#prevs.delete(n)
      this.#alone.delete(n)
      if (dead !== null) this.#unlink(dest, n, prev)
      else if (n > (this.#sentTo.get(dest) ?? 0)) {
        this.#sentTo.set(dest, n)
        this.#sentDirty.set(dest, n)
      }
      this.#deletes.add(n, dead === null ? null : deadLetterOf(body, dead))
    }
    this.#deletes.schedule()
  }

  /**
   * Rows for weave `dest` a thread coming back took with it (src/amqp/refusals.ts): deleted soon,
   * not dead letters; returns those read and not confirmed.
   */
  #taken(dest: string, ns: number[]): number[] {
    const unconfirmed = ns.filter((m) => this.#prevs.has(m))
    for (const m of ns) {
      const prev = this.#prevs.get(m) ?? null
      this.#prevs.delete(m)
      this.#alone.delete(m)
      this.#unlink(dest, m, prev)
      this.#deletes.add(m, null)
    }
    this.#deletes.schedule()
    return unconfirmed
  }

  /**
   * Row `n` for weave `dest` came back (no such weave): no weave took it, so the rows after it for
   * that weave follow the row before it (`prev`) there, not it (else they would wait for it,
   * src/amqp/resequence.ts).
   */
  #unlink(dest: string, n: number, prev: number | null): void {
    for (const [m, p] of this.#prevs) if (p === n) this.#prevs.set(m, prev)
    if (this.#lastTo.get(dest) !== n) return
    if (prev === null) this.#lastTo.delete(dest)
    else this.#lastTo.set(dest, prev)
  }

  /** Queued in the transaction of the deletes of rows up to `hi` (src/amqp/outbox-deletes.ts). */
  #beforeDeletes(hi: number): void {
    // A row before the next one for its weave is known.
    for (const e of this.#sentDirty) this.#journal.queue(this.#saveSent, e)
    this.#sentDirty.clear()
    // A row not confirmed below one deleted now (refused, its nack yet to come) keeps the row
    // before it for a restart (#prevs is in read order: `n` ascending).
    for (const [n, prev] of this.#prevs) {
      if (n > hi) break
      if (prev !== null) this.#journal.queue(this.#savePrev, [prev, n])
    }
  }

  detach(): void {
    // What was confirmed is deleted in the journal's next commit (at the latest when it closes).
    if (this.#deletes.timed) this.#deletes.flush()
    this.#ch = null
    this.#conn = null
    if (this.#reopenTimer !== null) clearTimeout(this.#reopenTimer)
    this.#reopenTimer = null
  }
}

/**
 * The outbox relay: publishes committed outbox rows to the broker, in outbox order, on one
 * confirm channel, and deletes each row once the broker has confirmed it.
 *
 * Invariants:
 * - Rows are published in `n` order on a single channel, so what one weave sends another
 *   arrives in the order sent (a row published twice, after a lost connection, is dropped by the
 *   receiver, which keys messages by id).
 * - A row is deleted only after its confirm; with a new channel every remaining row is published
 *   again from the first.
 * - A row the broker returns as unroutable (mandatory: no queue for that weave id, so no such
 *   weave ever joined) becomes a dead letter here, in the transaction that deletes it.
 */
import type { ConfirmChannel, ChannelModel } from 'amqplib'
import type Database from 'better-sqlite3'
import type { Journal } from '../journal.js'
import type { Envelope } from '../messages.js'
import type { Topology } from './topology.js'

/** At most this many published rows await their confirm at once. */
const MAX_IN_FLIGHT = 1_000
const BATCH = 250
/** How the outbox body of a move record begins (`JSON.stringify({ k: 'move', … })`). */
const MOVE_PREFIX = '{"k":"move"'

interface Row {
  n: number
  msg_id: string
  dest: string
  body: string
}

type Stmt = Database.Statement<unknown[]>

export class Relay {
  readonly #journal: Journal
  readonly #topology: Topology
  readonly #select: Stmt
  readonly #delete: Stmt
  readonly #dead: Stmt
  #ch: ConfirmChannel | null = null
  /** The highest row number published on the current channel. */
  #next = 0
  #inFlight = 0
  /** Rows confirmed whose delete is queued but not yet committed. */
  readonly #confirmed = new Set<number>()
  /** Message ids the broker returned as unroutable on the current channel. */
  #returned = new Set<string>()
  #pumping = false
  #idle: Array<() => void> = []

  constructor(journal: Journal, topology: Topology) {
    this.#journal = journal
    this.#topology = topology
    const db = journal.db
    this.#select = db.prepare('SELECT n, msg_id, dest, body FROM outbox WHERE n > ? ORDER BY n LIMIT ?')
    this.#delete = db.prepare('DELETE FROM outbox WHERE n = ?')
    this.#dead = db.prepare('INSERT INTO dead_letters (sender, recipient, body, reason, at) VALUES (?, ?, ?, ?, ?)')
  }

  /** Rows waiting for the broker. */
  pending(): number {
    return (this.#journal.db.prepare('SELECT count(*) AS n FROM outbox').get() as { n: number }).n
  }

  /** Resolves once the outbox is empty (every row committed so far confirmed and deleted). */
  empty(): Promise<void> {
    if (this.pending() === 0) return Promise.resolve()
    return new Promise((resolve) => this.#idle.push(resolve))
  }

  #checkIdle(): void {
    if (this.#idle.length === 0 || this.pending() > 0) return
    const idle = this.#idle
    this.#idle = []
    for (const f of idle) f()
  }

  async attach(conn: ChannelModel): Promise<void> {
    const ch = await conn.createConfirmChannel()
    ch.on('error', () => {})
    await this.#topology.exchanges(ch)
    const returned = new Set<string>()
    ch.on('return', (m) => returned.add(String(m.properties.messageId)))
    ch.on('close', () => {
      if (this.#ch === ch) this.#ch = null
    })
    this.#ch = ch
    this.#returned = returned
    this.#next = 0
    this.#inFlight = 0
    this.wake()
  }

  /** Publishes what is committed and not yet published on this channel. */
  wake(): void {
    if (this.#pumping) return
    this.#pumping = true
    try {
      this.#pump()
    } finally {
      this.#pumping = false
    }
  }

  #pump(): void {
    for (;;) {
      const ch = this.#ch
      if (ch === null || this.#inFlight >= MAX_IN_FLIGHT) return
      const rows = this.#select.all(this.#next, Math.min(BATCH, MAX_IN_FLIGHT - this.#inFlight)) as Row[]
      if (rows.length === 0) return
      for (const row of rows) {
        // A moving thread's record goes once everything before it is confirmed (in its queue),
        // so what the thread sent from here is ahead of anything it sends from its new weave.
        if (this.#inFlight > 0 && row.body.startsWith(MOVE_PREFIX)) return
        this.#next = row.n
        if (this.#confirmed.has(row.n)) continue
        this.#inFlight++
        try {
          ch.publish(this.#topology.exchange, row.dest, Buffer.from(row.body), {
            persistent: true,
            mandatory: true,
            messageId: row.msg_id,
            contentType: 'application/json',
          }, (err) => this.#confirm(ch, row, err))
        } catch {
          // The channel is closing: its 'close' clears it, and the next one publishes from the start.
          return
        }
      }
    }
  }

  #confirm(ch: ConfirmChannel, row: Row, err: unknown): void {
    if (this.#ch !== ch) return
    this.#inFlight--
    if (err) {
      // Nacked (the queue could not take it): publish everything again on a fresh channel.
      void ch.close().catch(() => {})
      return
    }
    this.#confirmed.add(row.n)
    if (this.#returned.delete(row.msg_id)) {
      const e = JSON.parse(row.body) as Envelope
      // A moving thread's whole record is kept, so nothing of it is lost.
      const [from, to, body] = e.k === 'msg' ? [e.from, e.to, e.body] : e.k === 'spawn' ? [e.parent, e.id, e.params] : [e.record.from, e.record.thread.id, row.body]
      this.#journal.queue(this.#dead, [from, to, body, `no weave '${row.dest}' has joined namespace '${this.#topology.ns}' of the broker`, Date.now()])
    }
    this.#journal.queue(this.#delete, [row.n], () => {
      this.#confirmed.delete(row.n)
      this.#checkIdle()
    })
    this.wake()
  }

  detach(): void {
    this.#ch = null
  }
}

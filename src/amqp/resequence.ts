/**
 * Order per sender kept when the broker takes a later envelope ahead of an earlier one.
 *
 * A sending weave's relay publishes its outbox rows in order, on one channel, without waiting for
 * each confirm (src/amqp/relay.ts). When the broker refuses one publish (a queue full under
 * `reject-publish`, a quorum queue without a leader) and takes later ones already on the wire,
 * the refused row, published again, arrives here after them. Each envelope says which row came
 * before it for this weave (`prev`, src/received.ts), so the gap shows here:
 *
 * - An envelope whose `prev` is not taken yet is parked (table `parked`), in the batch that
 *   acknowledges its delivery: it leaves the broker's queue, so a full queue drains and the refused
 *   row can come in; the broker's prefetch is never filled by envelopes waiting here. So is one
 *   that comes ahead of its `prev` by a redelivery (the broker gives back, after its heartbeat
 *   times out, what it had sent to a connection of this weave's that died unseen).
 * - But not the first envelope from a sender not heard from before (this weave's journal is new
 *   to it), unless the relay marked it (`pend`: the row before it was not confirmed when it was
 *   sent, src/amqp/relay.ts): the row before it was taken by an earlier journal of this weave, or
 *   is a copy of one taken here, and is not waited for.
 * - When an envelope is taken (its id queued into `received`, src/received.ts `onTaken`), those
 *   parked behind it (their `prev` is its row) are taken right after it (in a microtask: after
 *   what it carries is queued too), in order, and so on down the chain. A parked envelope's row is
 *   deleted once what it carries is committed: a crash between the two takes it again, and the
 *   copy is ignored.
 * - An envelope parked longer than `parking.ms` (90 s: a sender's relay tries a refused publish
 *   again at least every 30 s) is taken all the same, from the first of those parked before it,
 *   and a line says so: its predecessor may never come (a journal put back from a file copy, a
 *   weave that lost what it had taken with its host under 'sync'). The order is given up, not the
 *   message. A restart gives each parked envelope `parking.ms` again from when the weave starts,
 *   so that the predecessor, still in the queue, comes first.
 * - A copy of a row parked is acknowledged and dropped; a copy of a row taken goes on to be ignored
 *   as before (src/received.ts).
 *
 * Cost: an envelope that follows its predecessor (the usual case) is checked against its sender's
 * chain in memory: no query, no allocation. A query is made only for an envelope whose `prev`
 * lies outside the chain. What is parked is indexed in memory (ids and origin, ~300 bytes an
 * envelope); its body only until its row is committed, then read back from it when taken: a sender
 * with large messages, its refused publish tried again for 90 s, does not fill this process.
 */
import type Database from 'better-sqlite3'
import type { Journal } from '../journal.js'
import type { Envelope, WatchEnvelope } from '../messages.js'
import type { Origin, ReceivedIds } from '../received.js'

/** How long an envelope waits here for the one before it at most. (A test may shorten it.) */
export const parking = { ms: 90_000 }

/** Takes an envelope as it would have been taken on delivery; `after` runs once it is committed. */
export type Take = (msgId: string, e: Envelope | WatchEnvelope, after: () => void, from: Origin, trace: string | null) => void

interface Parked {
  msgId: string
  /** The envelope as JSON until its row is committed; then null, and read from the row when taken. */
  body: string | null
  from: Origin & { prev: number }
  trace: string | null
  /** When it is taken even if its predecessor has not come. */
  due: number
}

type Stmt = Database.Statement<unknown[]>

export class Resequencer {
  readonly #journal: Journal
  readonly #received: ReceivedIds
  readonly #take: Take
  readonly #log: (line: string) => void
  readonly #insert: Stmt
  readonly #delete: Stmt
  readonly #body: Stmt
  /** Parked, by `src \n prev`: those waiting for that row (more than one only after a sender was rebuilt). */
  readonly #byPrev = new Map<string, Parked[]>()
  /** Parked, by `src \n sn`. */
  readonly #bySn = new Map<string, Parked>()
  #timer: NodeJS.Timeout | null = null
  /** Released and not taken yet (a watch waiting for its target's end), by `src \n sn`: those behind it wait for it, even past their time. */
  readonly #putOff = new Set<string>()

  /**
   * Picks up what an earlier run parked: rows whose envelope was taken meanwhile are deleted, those
   * whose predecessor was are taken now, the others wait `parking.ms` from now.
   */
  constructor(journal: Journal, received: ReceivedIds, take: Take, log: (line: string) => void) {
    this.#journal = journal
    this.#received = received
    this.#take = take
    this.#log = log
    const db = journal.db
    this.#insert = db.prepare('INSERT OR IGNORE INTO parked (src, sn, prev, msg_id, body, trace, at) VALUES (?, ?, ?, ?, ?, ?, ?)')
    this.#delete = db.prepare('DELETE FROM parked WHERE src = ? AND sn = ?')
    this.#body = db.prepare('SELECT body FROM parked WHERE src = ? AND sn = ?').pluck()
    received.onTaken((o) => this.#onTaken(o))
    const rows = db.prepare('SELECT src, sn, prev, msg_id, trace FROM parked ORDER BY src, sn').raw(true).all() as Array<[string, number, number, string, string | null]>
    const due = Date.now() + parking.ms
    for (const [src, sn, prev, msgId, trace] of rows) {
      if (received.taken(src, sn)) journal.queue(this.#delete, [src, sn])
      else this.#add({ msgId, body: null, from: { src, sn, prev }, trace, due })
    }
    for (const p of [...this.#bySn.values()]) if (this.#bySn.has(key(p.from.src, p.from.sn)) && received.taken(p.from.src, p.from.prev)) this.#releaseFrom(p)
    this.#arm()
  }

  /**
   * An envelope from another weave, as delivered: true if it is parked here (or is a copy of one
   * parked), and `after` runs once that is durable; false if it is to be taken now. `pend`: the
   * row before it was not confirmed when it was sent.
   */
  parks(msgId: string, e: Envelope | WatchEnvelope, from: Origin, trace: string | null, pend: boolean, after: () => void): boolean {
    const { src, sn, prev } = from
    if (prev === null) return false
    if (this.#bySn.size > 0 && this.#bySn.has(key(src, sn))) {
      // A copy of one parked.
      this.#received.copyTaken(after)
      return true
    }
    // Unmarked, from a sender not heard from before: the row before it was confirmed, so it is
    // one an earlier journal of this weave took.
    if (!pend && !this.#received.knows(src) && !this.#bySn.has(key(src, prev))) return false
    if (this.#received.taken(src, prev) || this.#received.taken(src, sn)) return false
    // A thread's record, like its arrival (src/weave-moves.ts), is acknowledged only once the journal's stream has it.
    if (e.k === 'move') this.#journal.holdForStream()
    const p: Parked = { msgId, body: JSON.stringify(e), from: { src, sn, prev }, trace, due: Date.now() + parking.ms }
    this.#journal.queue(this.#insert, [src, sn, prev, msgId, p.body, trace, Date.now()], () => {
      p.body = null
      after()
    })
    this.#add(p)
    this.#arm()
    return true
  }

  /** Stops the timer: the weave closes. What is parked stays for its next run. */
  stop(): void {
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#timer = null
  }

  /** Row `o` is taken: what is parked behind it is taken once what `o` carries is queued too. */
  #onTaken(o: Origin): void {
    if (this.#putOff.size > 0) this.#putOff.delete(key(o.src, o.sn))
    if (this.#byPrev.size === 0 || !this.#byPrev.has(key(o.src, o.sn))) return
    queueMicrotask(() => this.#releaseAfter(o))
  }

  /** Takes `p` and, right after it, those parked behind it, down the chain. */
  #releaseFrom(p: Parked): void {
    if (this.#release(p) && this.#received.taken(p.from.src, p.from.sn)) this.#releaseAfter(p.from)
  }

  /**
   * Takes those parked behind row `from`, depth first (each row's followers in row order), without
   * a stack frame per envelope. Only behind a row taken now: one put off (a watch waiting for its
   * target's end, the weave closing) lets them go once it is taken (`#onTaken`).
   */
  #releaseAfter(from: Origin): void {
    const stack: Parked[] = []
    const push = (f: Origin): void => {
      const next = this.#byPrev.get(key(f.src, f.sn))
      if (next !== undefined) for (let i = next.length - 1; i >= 0; i--) stack.push(next[i]!)
    }
    push(from)
    for (let p = stack.pop(); p !== undefined; p = stack.pop()) {
      if (this.#bySn.get(key(p.from.src, p.from.sn)) !== p) continue
      if (this.#release(p) && this.#received.taken(p.from.src, p.from.sn)) push(p.from)
    }
  }

  #add(p: Parked): void {
    const { src, sn, prev } = p.from
    this.#bySn.set(key(src, sn), p)
    const k = key(src, prev)
    const list = this.#byPrev.get(k)
    if (list === undefined) this.#byPrev.set(k, [p])
    else {
      // In row order (more than one only after a sender was rebuilt from its stream).
      let i = list.length
      while (i > 0 && list[i - 1]!.from.sn > sn) i--
      list.splice(i, 0, p)
    }
  }

  #remove(p: Parked): void {
    const { src, sn, prev } = p.from
    this.#bySn.delete(key(src, sn))
    const k = key(src, prev)
    const list = this.#byPrev.get(k)
    if (list === undefined) return
    const i = list.indexOf(p)
    if (i >= 0) list.splice(i, 1)
    if (list.length === 0) this.#byPrev.delete(k)
  }

  /** Takes a parked envelope now (false: the journal is closed, nothing is taken). */
  #release(p: Parked): boolean {
    if (this.#journal.closed) return false
    this.#remove(p)
    const { src, sn } = p.from
    // Its row goes once what it carries is committed (a crash between: taken again, a copy).
    const after = (): void => {
      if (!this.#journal.closed) this.#journal.queue(this.#delete, [src, sn])
    }
    let e: Envelope | WatchEnvelope | null = null
    try {
      e = JSON.parse(p.body ?? (this.#body.get(src, sn) as string)) as Envelope | WatchEnvelope
    } catch {
      // Written here from a parsed envelope: it parses (and its row is there until it is taken).
    }
    if (e === null) after()
    else {
      this.#take(p.msgId, e, after, p.from, p.trace)
      if (!this.#received.taken(src, sn)) this.#putOff.add(key(src, sn))
    }
    return true
  }

  /** Sets the timer for the parked envelope due first. */
  #arm(): void {
    if (this.#timer !== null || this.#bySn.size === 0) return
    let first = Infinity
    for (const p of this.#bySn.values()) if (p.due < first) first = p.due
    this.#timer = setTimeout(() => this.#expire(), Math.max(0, first - Date.now()))
    this.#timer.unref()
  }

  /**
   * Takes the envelopes whose predecessor has not come within `parking.ms`: each from the first of
   * its sender's parked before it (whose predecessor is not parked here), so that they go in order.
   */
  #expire(): void {
    this.#timer = null
    if (this.#journal.closed) return
    const now = Date.now()
    const due = [...this.#bySn.values()].filter((p) => p.due <= now).sort((a, b) => (a.from.src < b.from.src ? -1 : a.from.src > b.from.src ? 1 : a.from.sn - b.from.sn))
    const senders = new Set<string>()
    for (const d of due) {
      if (!this.#bySn.has(key(d.from.src, d.from.sn))) continue // taken behind another
      let p = d
      for (let before = this.#bySn.get(key(p.from.src, p.from.prev)); before !== undefined; before = this.#bySn.get(key(p.from.src, p.from.prev))) p = before
      if (this.#putOff.has(key(p.from.src, p.from.prev))) {
        // Behind one released and not taken yet: its take lets them go.
        d.due = now + parking.ms
        continue
      }
      senders.add(p.from.src)
      this.#releaseFrom(p)
    }
    for (const src of senders) {
      this.#log(`raiment: messages from ${src} waited ${parking.ms / 1000} s for an earlier one of that sender that has not come; taken without it (that sender's order is not kept for them)`)
    }
    this.#arm()
  }
}

function key(src: string, sn: number): string {
  return `${src}\n${sn}`
}

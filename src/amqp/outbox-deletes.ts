/**
 * The deletes of the outbox rows the relay is done with (src/amqp/relay.ts): confirmed, or dead
 * letters (src/amqp/refusals.ts), deleted together DELETE_AFTER_MS after the first of them, or at
 * once when someone waits for an empty outbox.
 *
 * Deletes wait: the rows confirmed within DELETE_AFTER_MS are deleted together, in one group
 * commit (the one forming then, or one of their own), not in a commit per confirm. Between two
 * weaves passing messages back and forth, a confirm comes while the other weave works, and its
 * delete was an fsync of its own beside the four a round trip waits for (the send, the take, the
 * reply, its take): on one machine it took disk and CPU from the other weave's. A row confirmed
 * and not yet deleted is never published again on the relay's channel (`done`); after a crash it
 * is, and the receiver ignores the copy, as for any confirm lost with a connection. Someone
 * waiting for an empty outbox (the relay's `empty`) has the deletes queued at once.
 *
 * Invariants:
 * - A dead letter is queued in the transaction that deletes its row (a crash between would make
 *   it twice), and so is what the relay saves beside them (`before`).
 * - A row done and not yet deleted is in `done` until the commit that deletes it: the relay does
 *   not publish it again on its channel.
 */
import type Database from 'better-sqlite3'
import type { Journal } from '../journal.js'
import { deadLetterInsert } from '../dead-letters.js'

/** Rows done are deleted at most this long after the first of them. */
export const DELETE_AFTER_MS = 100

type Stmt = Database.Statement<unknown[]>

export class OutboxDeletes {
  readonly #journal: Journal
  readonly #deleteRange: Stmt
  readonly #dead: Stmt
  /** Someone waits for an empty outbox (then the deletes are queued in this tick). */
  readonly #waiting: () => boolean
  /** Queues, in the deletes' transaction, what goes with them; `hi`, the highest row deleted. */
  readonly #before: (hi: number) => void
  /** The deletes are committed. */
  readonly #after: () => void
  /** Rows done whose delete is queued but not yet committed, or not yet queued. */
  readonly done = new Set<number>()
  /** Rows done whose delete is not yet queued. */
  #rows: number[] = []
  /** Dead letters among them, queued with their deletes. */
  #letters: unknown[][] = []
  /** A flush is scheduled: in this tick (someone waits) or by #timer. */
  #queued = false
  #timer: NodeJS.Timeout | null = null

  constructor(journal: Journal, o: { waiting: () => boolean; before: (hi: number) => void; after: () => void }) {
    this.#journal = journal
    this.#deleteRange = journal.db.prepare('DELETE FROM outbox WHERE n >= ? AND n <= ?')
    this.#dead = deadLetterInsert(journal.db)
    this.#waiting = o.waiting
    this.#before = o.before
    this.#after = o.after
  }

  /** Row `n` is done (`letter`: its dead letter, or null): deleted soon. */
  add(n: number, letter: unknown[] | null): void {
    this.done.add(n)
    if (letter !== null) this.#letters.push(letter)
    this.#rows.push(n)
  }

  /** Schedules the flush of the rows added, unless one is. */
  schedule(): void {
    if (this.#queued) return
    this.#queued = true
    // Someone waits for an empty outbox: after the other confirms of this read from the socket.
    if (this.#waiting()) process.nextTick(() => this.flush())
    else {
      this.#timer = setTimeout(() => this.flush(), DELETE_AFTER_MS)
      this.#timer.unref()
    }
  }

  /** A flush waits for its timer: `flush` now to have it at once. */
  get timed(): boolean {
    return this.#timer !== null
  }

  /** Queues the deletes of the rows added since the last call, a statement per run of numbers. */
  flush(): void {
    this.#queued = false
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#timer = null
    // Closed meanwhile (the weave before its link): the rows are published again at the next start.
    if (this.#journal.closed) return
    const ns = this.#rows
    this.#rows = []
    if (ns.length === 0) return
    for (const d of this.#letters) this.#journal.queue(this.#dead, d)
    this.#letters = []
    // Confirms come in publish order, so `ns` is almost always sorted already.
    for (let i = 1; i < ns.length; i++) {
      if (ns[i]! < ns[i - 1]!) {
        ns.sort((a, b) => a - b)
        break
      }
    }
    this.#before(ns[ns.length - 1]!)
    const ranges: Array<[number, number]> = []
    let lo = ns[0]!
    for (let i = 1; i <= ns.length; i++) {
      if (i < ns.length && ns[i] === ns[i - 1]! + 1) continue
      ranges.push([lo, ns[i - 1]!])
      if (i < ns.length) lo = ns[i]!
    }
    const last = ranges.length - 1
    for (let i = 0; i < last; i++) this.#journal.queue(this.#deleteRange, ranges[i]!)
    this.#journal.queue(this.#deleteRange, ranges[last]!, () => {
      for (const n of ns) this.done.delete(n)
      this.#after()
    })
  }
}

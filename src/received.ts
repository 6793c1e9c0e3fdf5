/**
 * The ids of messages taken from other weaves (table `received`), so that a copy that comes again
 * is ignored; and which of them can be deleted without ever letting a copy be taken twice.
 *
 * A copy comes again in two ways: the sending weave publishes an outbox row again (its confirm
 * was lost, so the row is still in its outbox), or the broker delivers again what it delivered
 * here (the acknowledgement was lost with the connection, or the weave stopped between its
 * commit and its acknowledgement). The second can come long after the message was taken: a
 * connection the broker still believes alive keeps its unacknowledged deliveries until the broker
 * notices it is gone. So what the sender can still publish (the oldest row in its outbox) says
 * nothing about what the broker can still deliver here, and a row deleted because the sender's
 * outbox has moved past it would let such a late copy through. Pruning rests instead on what this
 * weave has taken itself:
 *
 * - With each envelope the sender's relay says where it comes from (`Origin`): `src`, the sending
 *   journal (`<weave id>#<journal id>`; the journal id is random per journal file), `sn`, the
 *   envelope's row number in that journal's outbox (AUTOINCREMENT: never reused), and `prev`, the
 *   number of the row before it in that outbox for this same weave (null where the sender does not
 *   know it). The relay knows it: rows leave its outbox only once confirmed, it records the last
 *   row it confirmed for each weave (`outbox_sent`) in the transaction that deletes it, and it
 *   reads the rows still there in order.
 * - Here, each src has a chain [base, upto]: every row of that outbox for this weave numbered from
 *   base to upto has been taken here. It starts at the first row taken from the src ([sn, sn]: one
 *   row, taken), grows up to a row taken whose `prev` is `upto` (no row for this weave lies
 *   between) and down to a row taken that is the `prev` of `base`. A copy of a row in the chain is a copy of a row taken here, so it is ignored by its
 *   number alone, however late and by whichever way it comes; the ids of the chain's rows are no
 *   longer needed and are deleted, in one transaction with the chain (`received_chains`), every
 *   PRUNE_EVERY rows taken.
 * - A row whose `prev` lies inside the chain but before its end extends it too: no row for this
 *   weave lies between them. Only a sender rebuilt from its stream sends so (under 'sync' the lost
 *   weave had sent rows the stream lacked; the rebuilt journal numbers its rows past them,
 *   src/replication/rebuild.ts, and links its first to the last the stream had): the chain then
 *   follows the rebuilt history, whose rows the lost ones are not. (Left stuck, every later row
 *   of that src would be kept by id for good.)
 * - A copy outside the chain is looked up by its id, as before. Rows taken beyond a gap (ahead of
 *   a row before them, as after a redelivery; they join the chain once the gap is taken, by
 *   walking `prev`), rows below a `base` whose `prev` is not known, and ids without an origin
 *   (from weaves of earlier builds, which send none) are kept.
 *
 * Taken stays once per message id, not only once per row: a weave puts an id into its outbox once
 * (a send with the record of its call; a forward only when it takes the id, which it does once),
 * so one id is one row of one weave. A weave sends on what it took for a thread that moved under
 * an id of its own per hop (`<id>><weave>`, src/messages.ts `hopId`): a message chasing a thread
 * that moved away and back comes here again under a new id, and is delivered (under the id it
 * first came with, it would be a copy). A call made again after a divergence
 * (`resume: 'continue'`) sends its message again under the same id from a new row: taken again
 * once the first id's row is gone.
 */
import type Database from 'better-sqlite3'
import type { Journal } from './journal.js'

/** Where an envelope from another weave comes from (see the comment at the top of this file). */
export interface Origin {
  /** The sending journal: `<weave id>#<journal id>`. */
  src: string
  /** The envelope's row number in that journal's outbox. */
  sn: number
  /** The number of the row before it there for this weave, or null if the sender does not know. */
  prev: number | null
}

/** Rows of a chain are deleted each time this many rows with an origin have been taken. */
export const PRUNE_EVERY = 1_000

type Stmt = Database.Statement<unknown[]>

/** Every row for this weave numbered base..upto of a src's outbox has been taken here. */
interface Chain {
  base: number
  /** The row before `base` for this weave (null: not known); the chain grows down to it when it is taken. */
  basePrev: number | null
  upto: number
  /** Changed since saved in received_chains (with its rows deleted). */
  dirty: boolean
}

export class ReceivedIds {
  readonly #journal: Journal
  readonly #insert: Stmt
  readonly #has: Stmt
  readonly #after: Stmt
  readonly #at: Stmt
  readonly #saveChain: Stmt
  readonly #prune: Stmt
  /** Ids queued in the current batch, not yet committed. */
  readonly #receiving = new Set<string>()
  /** Rows queued and not yet committed that are not in their src's chain, by `src \n sn` (see `taken`). */
  readonly #queued = new Set<string>()
  /** Told of each row taken (src/amqp/resequence.ts), once what it carries is queued or about to be. */
  #onTaken: ((o: Origin) => void) | null = null
  /** Per src; ahead of received_chains by what was taken since the last prune. */
  readonly #chains = new Map<string, Chain>()
  /** Rows with an origin taken since the last prune. */
  #taken = 0
  readonly #pruneEvery: number

  constructor(journal: Journal, pruneEvery = PRUNE_EVERY) {
    this.#journal = journal
    this.#pruneEvery = pruneEvery
    const db = journal.db
    this.#insert = db.prepare('INSERT OR IGNORE INTO received (msg_id, at, src, sn, prev) VALUES (?, ?, ?, ?, ?)')
    this.#has = db.prepare('SELECT 1 FROM received WHERE msg_id = ?')
    this.#after = db.prepare('SELECT sn, prev FROM received WHERE src = ? AND sn > ? ORDER BY sn LIMIT 1').raw(true)
    this.#at = db.prepare('SELECT prev FROM received WHERE src = ? AND sn = ?').raw(true)
    this.#saveChain = db.prepare('INSERT OR REPLACE INTO received_chains (src, base, base_prev, upto) VALUES (?, ?, ?, ?)')
    this.#prune = db.prepare('DELETE FROM received WHERE src = ? AND sn >= ? AND sn <= ?')
    for (const r of db.prepare('SELECT src, base, base_prev, upto FROM received_chains').raw(true).all() as Array<[string, number, number | null, number]>) {
      this.#chains.set(r[0], { base: r[1], basePrev: r[2], upto: r[3], dirty: false })
    }
    // A src taken from and not pruned yet: its chain starts at its first row (the next prune walks
    // on). (`prev` is that of the row with the least sn: SQLite's bare column beside min().)
    for (const r of db.prepare('SELECT src, min(sn), prev FROM received WHERE src IS NOT NULL GROUP BY src').raw(true).all() as Array<[string, number, number | null]>) {
      if (!this.#chains.has(r[0])) this.#chains.set(r[0], { base: r[1], basePrev: r[2], upto: r[1], dirty: true })
    }
    // Up to what was taken since the last prune: the next row of each src follows its chain.
    for (const [src, chain] of this.#chains) this.#walk(src, chain)
  }

  /**
   * True the first time an envelope comes: its id (and origin) is queued into `received` (the
   * caller queues what it carries in the same batch) and `after` runs once that is durable. False
   * for a copy: `after` runs once what is queued now is durable (`copyTaken`).
   */
  once(msgId: string, origin: Origin | undefined, after: () => void): boolean {
    if (origin !== undefined && this.#isCopy(origin)) {
      this.copyTaken(after)
      return false
    }
    if (this.#receiving.has(msgId) || this.#has.get(msgId) !== undefined) {
      // A copy by its id. Its row may be one not taken before (a send made again under its id
      // from a new row: after a divergence, or by a journal rebuilt from its stream): the row is
      // taken all the same, so the chain goes on through it (else every later row of that src
      // would be kept by id for good).
      if (origin !== undefined) {
        let key: string | null = null
        this.#journal.queue(this.#insert, [`${msgId}@${origin.src}:${origin.sn}`, Date.now(), origin.src, origin.sn, origin.prev], () => {
          if (key !== null) this.#queued.delete(key)
        })
        key = this.#tookNow(origin)
      }
      this.copyTaken(after)
      return false
    }
    this.#receiving.add(msgId)
    let key: string | null = null
    this.#journal.queue(this.#insert, [msgId, Date.now(), origin?.src ?? null, origin?.sn ?? null, origin?.prev ?? null], () => {
      this.#receiving.delete(msgId)
      if (key !== null) this.#queued.delete(key)
      after()
    })
    if (origin !== undefined) key = this.#tookNow(origin)
    return true
  }

  /**
   * A copy of an envelope taken here (or parked): `after` (its acknowledgement) runs once the
   * batch forming now is released, and so every batch before it: under 'replicated', once the
   * stream has what the first delivery carried. Never if the journal closes first (a batch
   * committed here but not released: under 'replicated' the stream may lack it; its close
   * resolves a plain `committed()`): the broker gives the copy to the next run instead.
   */
  copyTaken(after: () => void): void {
    if (!this.#journal.closed) void this.#journal.committed(true).then(after, () => {})
  }

  /**
   * True if row `sn` of `src`'s outbox has been taken here (or is, in the batch forming): it lies
   * in the chain, or it is queued, or its id is kept.
   */
  taken(src: string, sn: number): boolean {
    const chain = this.#chains.get(src)
    if (chain !== undefined && sn >= chain.base && sn <= chain.upto) return true
    if (this.#queued.size > 0 && this.#queued.has(`${src}\n${sn}`)) return true
    return this.#at.get(src, sn) !== undefined
  }

  /** True if a row of `src`'s outbox has been taken here. */
  knows(src: string): boolean {
    return this.#chains.has(src)
  }

  /** `fn` is told of each row taken from now on (one listener). */
  onTaken(fn: (o: Origin) => void): void {
    this.#onTaken = fn
  }

  /** Row `o`'s id is queued: the chain goes on; returns its key in #queued if it is kept there until committed. */
  #tookNow(o: Origin): string | null {
    this.#took(o)
    let key: string | null = null
    if (!this.#isCopy(o)) this.#queued.add((key = `${o.src}\n${o.sn}`))
    this.#onTaken?.(o)
    return key
  }

  #isCopy(o: Origin): boolean {
    const chain = this.#chains.get(o.src)
    return chain !== undefined && o.sn >= chain.base && o.sn <= chain.upto
  }

  #took(o: Origin): void {
    const chain = this.#chains.get(o.src)
    if (chain === undefined) this.#chains.set(o.src, { base: o.sn, basePrev: o.prev, upto: o.sn, dirty: true })
    else if (o.prev !== null && o.sn > chain.upto && o.prev >= chain.base && o.prev <= chain.upto) {
      chain.upto = o.sn
      chain.dirty = true
    } else if (o.sn === chain.basePrev) {
      chain.base = o.sn
      chain.basePrev = o.prev
      chain.dirty = true
    }
    if (++this.#taken >= this.#pruneEvery) this.#pruneAll()
  }

  /**
   * Extends `chain` over the rows kept that join it: taken beyond a gap, or below its start, whose
   * gap has been taken since, or since it was last saved (only committed rows are seen: the others
   * on the next prune).
   */
  #walk(src: string, chain: Chain): void {
    for (;;) {
      const next = this.#after.get(src, chain.upto) as [number, number | null] | undefined
      if (next === undefined || next[1] === null || next[1] < chain.base || next[1] > chain.upto) break
      chain.upto = next[0]
      chain.dirty = true
    }
    while (chain.basePrev !== null) {
      const below = this.#at.get(src, chain.basePrev) as [number | null] | undefined
      if (below === undefined) break
      chain.base = chain.basePrev
      chain.basePrev = below[0]
      chain.dirty = true
    }
  }

  /** Queues, for each chain that grew, its save and the deletion of its rows, in the current batch. */
  #pruneAll(): void {
    this.#taken = 0
    for (const [src, chain] of this.#chains) {
      this.#walk(src, chain)
      if (!chain.dirty) continue
      this.#journal.queue(this.#saveChain, [src, chain.base, chain.basePrev, chain.upto])
      this.#journal.queue(this.#prune, [src, chain.base, chain.upto])
      chain.dirty = false
    }
  }
}

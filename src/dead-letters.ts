/**
 * Dead letters read, sent again or dropped (`raiment dead-letters`, `--resend N`, `--drop N…`):
 * by the weave running on the journal, as a control request (src/weave-control.ts), or, with none
 * running, by the CLI in its owner-checked transaction (src/cli/dead-letters.ts). One `apply`
 * serves both: the weave queues its writes in its next batch, the CLI runs them at once.
 *
 * Invariants:
 * - A dead letter sent again leaves the dead letters in the batch (or transaction) that sends it:
 *   sent once, however often its request is taken again after a crash (its message id is the
 *   asker's, so a copy of it is one message). One a batch not yet committed sends or drops is
 *   gone already for a later request (`pending`), so two requests for it send it once.
 * - A dead letter's number is never given to another (AUTOINCREMENT, src/journal-schema.ts): a
 *   request made from an older listing cannot reach a newer letter.
 * - A request naming a dead letter that is not there changes nothing (a drop of several drops none).
 */
import type Database from 'better-sqlite3'
import type { Journal } from './journal.js'
import type { SendResult } from './messages.js'

/** A row of table `dead_letters`. */
export interface DeadLetter {
  n: number
  sender: string | null
  recipient: string
  body: string
  reason: string
  at: number
}

/** What `raiment dead-letters` asks of a journal: send dead letter `resend` again (to `to`, by default its recipient), or drop some (or all). */
export type DeadLetterRequest = { resend: number; to?: string } | { drop: number[] | 'all' }

/** The statement that records a dead letter: sender, recipient, body (encoded), reason, at. */
export function deadLetterInsert(db: Database.Database): Database.Statement<unknown[]> {
  return db.prepare('INSERT INTO dead_letters (sender, recipient, body, reason, at) VALUES (?, ?, ?, ?, ?)')
}

/** What a request did: sent (the send's result), dropped (how many), or nothing (the numbers not there). */
export type DeadLetterReply = { sent: SendResult } | { dropped: number } | { missing: number[] }

type Stmt = Database.Statement<unknown[]>

export class DeadLetters {
  readonly #get: Stmt
  readonly #last: Stmt
  readonly #count: Stmt
  readonly #max: Stmt
  readonly #drop: Stmt
  readonly #dropUpTo: Stmt
  /** Numbers a batch not yet committed sends again or drops (the weave's: the CLI's commit at once). */
  readonly #pending = new Set<number>()
  /** A drop of all not yet committed drops those up to this number (0: none). */
  #pendingUpTo = 0

  constructor(db: Database.Database) {
    this.#get = db.prepare('SELECT n, sender, recipient, body, reason, at FROM dead_letters WHERE n = ?')
    this.#last = db.prepare('SELECT n, sender, recipient, body, reason, at FROM dead_letters ORDER BY n DESC LIMIT ?')
    this.#count = db.prepare('SELECT count(*) FROM dead_letters').pluck()
    this.#max = db.prepare('SELECT max(n) FROM dead_letters').pluck()
    this.#drop = db.prepare('DELETE FROM dead_letters WHERE n = ?')
    this.#dropUpTo = db.prepare('DELETE FROM dead_letters WHERE n <= ?')
  }

  /** The last `limit`, newest first. */
  last(limit: number): DeadLetter[] {
    return this.#last.all(limit) as DeadLetter[]
  }

  count(): number {
    return this.#count.get() as number
  }

  /**
   * Does what `req` asks: `send(d, to)` sends dead letter `d` again (in the same batch or
   * transaction as `write`); `write(stmt, params, after)` runs a write, or queues it and calls
   * `after` once it is committed.
   */
  apply(req: DeadLetterRequest, send: (d: DeadLetter, to: string) => SendResult, write: (stmt: Stmt, params: unknown[], after: () => void) => void): DeadLetterReply {
    if ('resend' in req) {
      const d = this.#gone(req.resend) ? undefined : (this.#get.get(req.resend) as DeadLetter | undefined)
      if (d === undefined) return { missing: [req.resend] }
      const sent = send(d, req.to ?? d.recipient)
      this.#dropping(write, d.n)
      return { sent }
    }
    if (req.drop === 'all') {
      // Those there now (a letter made in the same batch, after, stays): counted as they go.
      const max = this.#max.get() as number | null
      if (max === null || max <= this.#pendingUpTo) return { dropped: 0 }
      const dropped = (this.#count.get() as number) - this.#pending.size
      this.#pendingUpTo = max
      write(this.#dropUpTo, [max], () => {
        if (this.#pendingUpTo === max) this.#pendingUpTo = 0
      })
      return { dropped }
    }
    const missing = req.drop.filter((n) => this.#gone(n) || this.#get.get(n) === undefined)
    if (missing.length > 0) return { missing }
    for (const n of req.drop) this.#dropping(write, n)
    return { dropped: req.drop.length }
  }

  /** Sent again or dropped in a batch not yet committed. */
  #gone(n: number): boolean {
    return this.#pending.has(n) || n <= this.#pendingUpTo
  }

  /** Drops dead letter `n` through `write`: gone for later requests at once, and for good once committed. */
  #dropping(write: (stmt: Stmt, params: unknown[], after: () => void) => void, n: number): void {
    this.#pending.add(n)
    write(this.#drop, [n], () => this.#pending.delete(n))
  }
}

/** The dead letters of `journal` (its statements prepared once per journal). */
export function deadLettersOf(journal: Journal): DeadLetters {
  let d = ofJournal.get(journal)
  if (d === undefined) ofJournal.set(journal, (d = new DeadLetters(journal.db)))
  return d
}

const ofJournal = new WeakMap<Journal, DeadLetters>()

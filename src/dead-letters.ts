/**
 * Dead letters sent again or dropped (`raiment dead-letters --resend N` / `--drop N…`): by the
 * weave running on the journal, as a control request (src/weave-control.ts), or, with none
 * running, by the CLI in its owner-checked transaction (src/cli/dead-letters.ts).
 *
 * Invariants:
 * - A dead letter sent again leaves the dead letters in the batch (or transaction) that sends it:
 *   sent once, however often its request is taken again after a crash (its message id is the
 *   asker's, so a copy of it is one message).
 * - A request naming a dead letter that is not there changes nothing (a drop of several drops none).
 */
import type Database from 'better-sqlite3'

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

/** The dead letter `n`, if it is there. */
export function deadLetter(db: Database.Database, n: number): DeadLetter | undefined {
  return db.prepare('SELECT n, sender, recipient, body, reason, at FROM dead_letters WHERE n = ?').get(n) as DeadLetter | undefined
}

/** Which of `ns` are not dead letters of this journal. */
export function missingDeadLetters(db: Database.Database, ns: readonly number[]): number[] {
  const has = db.prepare('SELECT 1 FROM dead_letters WHERE n = ?')
  return ns.filter((n) => has.get(n) === undefined)
}

/** The statement that drops dead letter `n` (`all`: every one). */
export function dropDeadLetters(db: Database.Database, all: boolean): Database.Statement<unknown[]> {
  return db.prepare(all ? 'DELETE FROM dead_letters' : 'DELETE FROM dead_letters WHERE n = ?')
}

/** How many dead letters the journal holds. */
export function deadLetterCount(db: Database.Database): number {
  return db.prepare('SELECT count(*) FROM dead_letters').pluck().get() as number
}

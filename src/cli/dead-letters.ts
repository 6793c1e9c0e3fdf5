/**
 * `raiment dead-letters`: lists the messages that could not be delivered, sends some again
 * (`--resend N… | all [--to ID_OR_NAME]`, one request each, oldest first) or drops some
 * (`--drop N… | all`).
 *
 * Invariant: as for `raiment send` (src/cli/messages.ts), the journal is changed here only in a
 * write transaction that finds no weave owning it; with a weave running, the change is a control
 * request that weave answers in the batch that makes it (src/dead-letters.ts).
 */
import { randomUUID } from 'node:crypto'
import { deadLettersOf, type DeadLetter, type DeadLetterReply, type DeadLetterRequest } from '../dead-letters.js'
import { InvalidArgument, RaimentError } from '../errors.js'
import type { Journal } from '../journal.js'
import { askTimeout, askWeave, busyHint, waitText, type AskOptions } from './ask-weave.js'
import { isoTime, note, openExisting, openReadonly, parseLimit, plural, say, short, table, toText, withOwner, type DbOptions } from './common.js'
import { deliver, notDelivered } from './messages.js'
import { decodeSafe, jsonValue } from './records.js'

export interface DeadLettersOptions extends DbOptions, AskOptions {
  /** Unset: 20, or every one with `json`. */
  limit?: string
  json?: boolean
  resend?: string[]
  to?: string
  drop?: string[]
}


/**
 * `raiment dead-letters`: the last N dead letters, oldest first, each with its number N; `--json`
 * prints them as an array of `{n, at, sender, recipient, reason, message}` (sender null: from
 * outside any thread), every one unless `--limit`. With `--resend` or `--drop`, does that instead.
 */
export async function deadLetters(o: DeadLettersOptions): Promise<number> {
  const req = request(o)
  if (req !== null) return 'resend' in req ? resend(o, req) : change(o, req, askTimeout(o))
  const limit = o.limit !== undefined ? parseLimit(o.limit) : o.json ? Number.MAX_SAFE_INTEGER : 20
  const journal = openReadonly(o.db)
  try {
    const letters = deadLettersOf(journal)
    const total = letters.count()
    const rows: DeadLetter[] = letters.last(limit).reverse()
    if (o.json) {
      say(JSON.stringify(rows.map((r) => ({ n: r.n, at: isoTime(r.at), sender: r.sender, recipient: r.recipient, reason: r.reason, message: jsonValue(decodeSafe(r.body)) }))))
    } else if (total === 0) say(`no dead letters in ${o.db}`)
    else {
      const lines = table(
        ['N', 'AT', 'SENDER', 'RECIPIENT', 'REASON', 'MESSAGE'],
        rows.map((r) => [String(r.n), isoTime(r.at), r.sender ?? '(outside)', r.recipient, r.reason, short(toText(decodeSafe(r.body)), 60)]),
      )
      for (const l of lines) say(l)
    }
    if (total > rows.length) note(`the last ${rows.length} of ${plural(total, 'dead letter')}; --limit N shows more`)
    return 0
  } finally {
    journal.close()
  }
}

/**
 * The change asked for, or null for a listing.
 * @throws InvalidArgument for a number that is not one, both options, or `--to` without `--resend`
 */
function request(o: DeadLettersOptions): Exclude<DeadLetterRequest, { resend: number }> | { resend: number[] | 'all' } | null {
  if (o.resend !== undefined && o.drop !== undefined) throw new InvalidArgument('--resend and --drop cannot be given together: resend some dead letters, or drop some')
  if (o.to !== undefined && o.resend === undefined) throw new InvalidArgument('--to goes with --resend N: it names who the dead letter N is sent to instead of its recipient')
  if (o.to?.trim() === '') throw new InvalidArgument('--to must be a thread id (see raiment ps) or a registered name, got ""')
  if (o.resend !== undefined) {
    if (o.resend.length === 1 && o.resend[0] === 'all') return { resend: 'all' }
    return { resend: [...new Set(o.resend.map((d) => number(d, '--resend')))] }
  }
  if (o.drop === undefined) return null
  if (o.drop.length === 1 && o.drop[0] === 'all') return { drop: 'all' }
  return { drop: [...new Set(o.drop.map((d) => number(d, '--drop')))] }
}

function number(text: string, option: string): number {
  const n = Number(text)
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(n) || n < 1) {
    throw new InvalidArgument(`${option} takes the number N of a dead letter (the first column of raiment dead-letters), got '${text}'; ${option} all takes every one`)
  }
  return n
}

/**
 * Sends dead letters again, each in a request of its own (`change`), oldest first: every one
 * there now for `all`; numbers that are not dead letters are refused first, nothing sent. Exit
 * status 1 when one went to the dead letters again.
 */
async function resend(o: DeadLettersOptions, req: { resend: number[] | 'all' }): Promise<number> {
  const journal = openReadonly(o.db)
  let ns: number[]
  try {
    const there = new Set(deadLettersOf(journal).last(Number.MAX_SAFE_INTEGER).map((d) => d.n))
    const numbers = req.resend === 'all' ? [...there] : req.resend
    const missing = numbers.filter((n) => !there.has(n))
    if (missing.length > 0) throw noDeadLetter(missing, o.db)
    ns = [...numbers].sort((a, b) => a - b)
  } finally {
    journal.close()
  }
  if (ns.length === 0) {
    say(`no dead letters in ${o.db}`)
    return 0
  }
  const waitMs = askTimeout(o)
  let again = 0
  let gone = 0
  for (const [i, n] of ns.entries()) {
    try {
      if ((await change(o, { resend: n, ...(o.to !== undefined ? { to: o.to } : {}) }, waitMs)) !== 0) again++
    } catch (e) {
      // Sent again or dropped meanwhile, by another command: one of several goes on to the next.
      if (ns.length > 1 && e instanceof RaimentError && e.code === 'RAIMENT_NO_DEAD_LETTER') {
        gone++
        continue
      }
      // Another failure (the weave did not answer): what was sent before it stays sent.
      if (i > 0) note(`dead letters ${ns.slice(0, i).join(', ')} were sent again (or found gone); ${ns.slice(i).join(', ')} were not: run raiment dead-letters --resend with those once the weave answers`)
      throw e
    }
  }
  if (ns.length > 1) {
    const sent = ns.length - gone
    note(
      `sent ${plural(sent, 'dead letter')} again: ${sent - again} delivered` +
        `${again > 0 ? `, ${again} ${again === 1 ? 'a dead letter' : 'dead letters'} again (under new numbers)` : ''}${gone > 0 ? `; ${gone} no longer ${gone === 1 ? 'a dead letter' : 'dead letters'} (sent again or dropped meanwhile)` : ''}`,
    )
  }
  return again > 0 ? 1 : 0
}

function noDeadLetter(missing: number[], db: string): RaimentError {
  return new RaimentError('RAIMENT_NO_DEAD_LETTER', `no dead letter ${missing.join(', ')} in ${db}: nothing was changed. raiment dead-letters lists them, each with its number N`)
}

/** Sends one again or drops, by the weave running on the journal or, with none, here. */
async function change(o: DeadLettersOptions, req: DeadLetterRequest, waitMs: number): Promise<number> {
  const journal = openExisting(o.db)
  try {
    const msgId = `cli:${randomUUID()}`
    const here = withOwner(journal, (owner) => (owner === null ? offline(journal, req) : null))
    const reply = here ?? (await asked(journal, req, msgId, waitMs))
    return report(o.db, req, reply)
  } finally {
    journal.close()
  }
}

/** With no weave running: the change, in the caller's transaction. */
function offline(journal: Journal, req: DeadLetterRequest): DeadLetterReply {
  return deadLettersOf(journal).apply(
    req,
    (d, to) => deliver(journal, to, d.body, d.sender).result,
    (stmt, params, after) => {
      stmt.run(...params)
      after()
    },
  )
}

/**
 * The weave running on the journal makes the change.
 * @throws RaimentError `RAIMENT_DEAD_LETTERS_TIMEOUT` when it does not take the request in time (withdrawn: nothing changed)
 */
async function asked(journal: Journal, req: DeadLetterRequest, msgId: string, waitMs: number): Promise<DeadLetterReply> {
  const reply = await askWeave(journal, 'dead-letters', null, JSON.stringify(req), true, { msgId, waitMs })
  if (reply === null) {
    throw new RaimentError('RAIMENT_DEAD_LETTERS_TIMEOUT', `the weave on ${journal.file} did not take the request within ${waitText(waitMs)}; nothing was changed. ${busyHint(waitMs)}`)
  }
  try {
    return JSON.parse(reply) as DeadLetterReply
  } catch {
    throw new RaimentError('RAIMENT_DEAD_LETTERS_FAILED', `the weave on ${journal.file} could not do it: ${reply}`)
  }
}

function report(db: string, req: DeadLetterRequest, reply: DeadLetterReply): number {
  if ('missing' in reply) throw noDeadLetter(reply.missing, db)
  if ('dropped' in reply) {
    say(`dropped ${plural(reply.dropped, 'dead letter')}`)
    return 0
  }
  say(JSON.stringify(reply.sent))
  // Not delivered again: it is a dead letter again, under a new number, with the reason of now.
  if (!reply.sent.delivered) return notDelivered(reply.sent)
  note(`dead letter ${(req as { resend: number }).resend} sent again to ${reply.sent.to}; it is no longer among the dead letters`)
  return 0
}

/**
 * What the CLI asks of the weave running on a journal through its `control` table
 * (src/control-table.ts, src/weave-control.ts), and how it reads the answer: a request not taken
 * within its wait (CONTROL_TIMEOUT_MS, or the command's `--timeout`) may be withdrawn; one the
 * weave took is waited for longer; an answer given and not yet told is the answer, unless the
 * weave replicates under 'replicated'.
 */
import { withdraw as withdrawRequest } from '../control-table.js'
import { InvalidArgument, RaimentError } from '../errors.js'
import type { Journal } from '../journal.js'
import { parseDuration } from '../durations.js'

export const CONTROL_TIMEOUT_MS = 5_000

/** The option of the commands that ask a running weave: how long to wait for it to take the request. */
export interface AskOptions {
  /** `--timeout`: a duration (`500ms`, `30s`, `2m`, or a number of ms). */
  timeout?: string
}

/**
 * The wait `--timeout` asks for, in ms, or `fallback` (the command's default) without one.
 * @throws InvalidArgument for a value that is not a duration, or is 0
 * @example
 * askTimeout({ timeout: '30s' }) // 30000
 */
export function askTimeout(o: AskOptions, fallback = CONTROL_TIMEOUT_MS): number {
  if (o.timeout === undefined) return fallback
  const ms = parseDuration(o.timeout, '--timeout')
  if (ms <= 0) throw new InvalidArgument(`--timeout must be longer than 0 (the weave takes a request within its poll), got '${o.timeout}'`)
  return ms
}

/** `ms` as a timeout's message says it: `5 s`, `300 ms`. */
export function waitText(ms: number): string {
  return ms < 1_000 ? `${ms} ms` : `${ms / 1_000} s`
}

/** What a timeout's message says after what was (not) done: the weave may be busy, and how to wait longer. */
export function busyHint(ms: number): string {
  return `The weave may just be busy (resuming many threads, say): pass --timeout to wait longer than ${waitText(ms)} (--timeout 30s), or look at its log if it stays so`
}

/**
 * Queues a control request for the weave running on the journal and waits for its reply. After
 * `waitMs` (CONTROL_TIMEOUT_MS) without one: null, with the request withdrawn when `withdraw`
 * (unless the weave took it meanwhile), else left queued for the weave's next poll. A request the
 * weave took is waited for `claimedMs` more. `msgId`: the id of a message the request sends
 * (chosen by the asker).
 * @throws RaimentError `RAIMENT_ANSWER_PENDING` when it took it and has not answered by then
 */
export async function askWeave(
  journal: Journal,
  kind: string,
  thread: string | null,
  arg: string | null,
  withdraw: boolean,
  o: { claimedMs?: number; msgId?: string | null; waitMs?: number } = {},
): Promise<string | null> {
  const n = journal.db.prepare('INSERT INTO control (kind, thread, arg, msg_id) VALUES (?, ?, ?, ?)').run(kind, thread, arg, o.msgId ?? null).lastInsertRowid
  return answerOf(journal, n, kind, withdraw, o.claimedMs, o.waitMs)
}

/** The reply to control request `n`, queued already (its asker checked the owner in the same step), as `askWeave` waits for it; `waitMs`: before it withdraws. */
export async function answerOf(journal: Journal, n: number | bigint, kind: string, withdraw: boolean, claimedMs = CLAIMED_TIMEOUT_MS, waitMs = CONTROL_TIMEOUT_MS): Promise<string | null> {
  const ask = journal.db.prepare('SELECT done, reply FROM control WHERE n = ?')
  const deadline = Date.now() + waitMs
  let tryAt = deadline
  for (;;) {
    const r = controlRow(ask, journal, n)
    if (r.done === 1) return r.reply ?? ''
    const now = Date.now()
    if (now >= deadline) {
      // Answered in a batch the weave committed and not yet told (it stopped between, or its
      // journal stream has not confirmed the batch yet): that is its answer.
      if (r.done === 2) return givenAnswer(journal, r.reply)
      if (!withdraw) return null
      // Not taken yet: withdrawn now. Taken (claimed): the weave is acting on it and answers
      // soon; withdrawn only once no weave owns the journal (tried twice a second).
      if (now >= tryAt) {
        if (withdrawRequest(journal, n)) return null
        tryAt = now + 500
      }
      if (now >= deadline + claimedMs) throw new AnswerPending(journal, kind, waitMs + claimedMs)
    }
    await new Promise((res) => setTimeout(res, 20))
  }
}

/**
 * Request `n`'s row as its asker polls it.
 * @throws RaimentError `RAIMENT_ANSWER_GONE` when it is gone: told, and deleted a minute later
 *   (src/control-table.ts), before this asker read it (a process paused that long)
 */
export function controlRow(ask: { get(n: number | bigint): unknown }, journal: Journal, n: number | bigint): { done: number; reply: string | null } {
  const r = ask.get(n) as { done: number; reply: string | null } | undefined
  if (r !== undefined) return r
  throw new RaimentError(
    'RAIMENT_ANSWER_GONE',
    `the weave on ${journal.file} answered request ${n}, and deleted the answer a minute later, before it was read here (was this process paused?); raiment ps and raiment show tell what happened`,
  )
}

/** How long past its wait (CONTROL_TIMEOUT_MS) an asker waits for a weave that took its request. */
const CLAIMED_TIMEOUT_MS = 30_000

/** The weave took a request (it may still act on it) and has not answered. */
class AnswerPending extends RaimentError {
  constructor(journal: Journal, kind: string, ms: number) {
    super(
      'RAIMENT_ANSWER_PENDING',
      `the weave on ${journal.file} took the ${kind} request and has not answered within ${ms / 1000} s; it may still act on it. Look with raiment ps and raiment show before asking again`,
    )
  }
}

/**
 * A control answer the weave gave (committed in its journal) and had not told by the asker's
 * deadline (`done` 2): told once its batch is released. That is the answer, unless the weave
 * replicates under durability 'replicated': then the journal stream has not confirmed it, and a
 * takeover after this host's loss would undo what it says.
 * @throws RaimentError `RAIMENT_ANSWER_NOT_REPLICATED` then, with the answer in its message
 */
export function givenAnswer(journal: Journal, reply: string | null): string {
  const owner = journal.owner()
  if (owner?.replicated === true) {
    throw new RaimentError(
      'RAIMENT_ANSWER_NOT_REPLICATED',
      `the weave (pid ${owner.pid}) on ${journal.file} answered ${JSON.stringify(reply ?? '')}, but its journal stream has not confirmed that yet: it holds on this host only, and is undone if the broker never confirms it (this host lost, or the weave cut off or frozen long enough for another weave to take its journal over). Check the broker and the weave's lag (raiment weaves) and whether it was taken over (raiment show, on the weave that runs it now) before asking again`,
    )
  }
  return reply ?? ''
}

/**
 * Keyed sends: a message sent from outside any thread with an idempotency key (`weave.send(to,
 * message, { key })`, `raiment send --key`) reaches its receiver once per (receiver, key), however
 * often it is sent again and through whichever weave of the namespace (table `send_keys`).
 *
 * Invariants:
 * - The key travels in the message id (`keyedId`: `key:<length>:<key>|<id>`), so every way a
 *   message goes (the outbox, messages waiting for a name, held while a thread catches up, a
 *   forward after a move, a hop's id `<id>><weave>`) carries it without a column of its own.
 * - A row (receiver, key) is queued in the batch that puts the message into the receiver's inbox,
 *   its dead letters or the outbox, never before or after it: a crash keeps both or neither, so a
 *   retry after a crash before the commit is delivered, and one after it is not. The weave that
 *   takes the message from another weave (src/messages.ts `receive`) checks and records it too,
 *   so a retry through another sending weave is dropped where the receiver is. `receiver` is the
 *   thread id the address designates there, or the address itself (a name no thread there holds).
 * - A thread's rows travel with it when it moves (src/migration.ts), so a copy sent on to its
 *   new weave, or sent there straight, is still known.
 * - A thread that succeeds a held one (src/successions.ts) gets a copy of its rows in the batch
 *   that hands it the messages, so a retry by the name, the old id or the new one is a duplicate.
 * - Rows are kept SEND_KEY_RETENTION_MS (24 h) from the first send, whether or not the receiver
 *   has ended since (a retry then still says it is a duplicate), and pruned in the group commit.
 *   A retry after that is a new message: delivered again, or dead-lettered if the thread ended.
 */
import type Database from 'better-sqlite3'
import { InvalidArgument } from './errors.js'
import type { Journal } from './journal.js'
import type { SendResult } from './message-shapes.js'

/** How long a send key is kept: 24 hours from its first send (Stripe's and Restate's idempotency retention). */
export const SEND_KEY_RETENTION_MS = 24 * 60 * 60 * 1000

/** The longest send key, in characters (as a spawn's key). */
export const MAX_SEND_KEY = 200

/** Options of `Weave.send`. */
export interface SendOptions {
  /**
   * An idempotency key (1 to 200 characters): the message reaches its receiver once per
   * (receiver thread, key), however many times it is sent with it, through any weave of the
   * namespace, across crashes and moves, for 24 hours from its first send (SEND_KEY_RETENTION_MS).
   * A send again within that returns the first send's result with `duplicate: true` (where another
   * weave sent the first, the receiver's weave drops the copy and this result cannot say so).
   */
  key?: string
}

/** How often at most the weave queues the deletion of send keys past their retention. */
const PRUNE_EVERY_MS = 60_000

/**
 * Checks a send key at the door and returns it.
 * @throws InvalidArgument (`RAIMENT_INVALID_ARGUMENT`) for a key that is not a string, is empty, or is longer than MAX_SEND_KEY
 * @example
 * checkSendKey('req-7f3a') // 'req-7f3a'; checkSendKey('') throws
 */
export function checkSendKey(key: unknown): string {
  if (typeof key !== 'string') throw new InvalidArgument(`send: the key must be a string (a request's idempotency key, say 'req-7f3a'), got ${typeof key}`)
  if (key === '') throw new InvalidArgument("send: the key is empty; pass a request's idempotency key (say 'req-7f3a'), or no key")
  if (key.length > MAX_SEND_KEY) {
    throw new InvalidArgument(`send: a key may be up to ${MAX_SEND_KEY} characters, got ${key.length} ('${key.slice(0, 40)}…'); pass a shorter key (a hash of a long one, say)`)
  }
  return key
}

/** The message id of a keyed send: `id` with the key before it (see the top of this file). */
export function keyedId(key: string, id: string): string {
  return `key:${key.length}:${key}|${id}`
}

/** The key a message id carries (`keyedId`), or null for an unkeyed message. */
export function keyOf(msgId: string): string | null {
  if (!msgId.startsWith('key:')) return null
  const colon = msgId.indexOf(':', 4)
  const length = Number(msgId.slice(4, colon))
  if (colon < 0 || !Number.isInteger(length) || length <= 0 || msgId[colon + 1 + length] !== '|') return null
  return msgId.slice(colon + 1, colon + 1 + length)
}

type Stmt = Database.Statement<unknown[]>

/** The send keys of one journal. */
export class SendKeys {
  readonly #journal: Journal
  readonly #find: Stmt
  readonly #insert: Stmt
  readonly #prune: Stmt
  readonly #copy: Stmt
  /** Rows queued and not yet committed, by `receiver \n key`: the first send's result, or null. */
  readonly #queued = new Map<string, SendResult | null>()
  #pruned = 0
  readonly #retention: number

  constructor(journal: Journal, retention = SEND_KEY_RETENTION_MS) {
    this.#journal = journal
    this.#retention = retention
    const db = journal.db
    this.#find = db.prepare('SELECT result FROM send_keys WHERE receiver = ? AND key = ? AND at >= ?').pluck()
    // A receiving weave's row has no result; the sender's, of the same weave, adds it. A row past
    // its retention and not pruned yet is the key's first send no more: the new one replaces it.
    this.#insert = db.prepare(
      `INSERT INTO send_keys (receiver, key, at, result) VALUES (?, ?, ?, ?) ON CONFLICT (receiver, key) DO UPDATE SET
         result = CASE WHEN at < ? THEN excluded.result ELSE coalesce(result, excluded.result) END,
         at = CASE WHEN at < ? THEN excluded.at ELSE at END`,
    )
    this.#prune = db.prepare('DELETE FROM send_keys WHERE at < ?')
    this.#copy = db.prepare('INSERT OR IGNORE INTO send_keys (receiver, key, at, result) SELECT ?, key, at, result FROM send_keys WHERE receiver = ?')
  }

  /**
   * Undefined when no message with `key` has been sent to `receiver` within the retention; else
   * the first send's result as this weave returned it, or null when it came from another weave.
   */
  seen(receiver: string, key: string): SendResult | null | undefined {
    const k = `${receiver}\n${key}`
    if (this.#queued.has(k)) return this.#queued.get(k)
    const row = this.#find.get(receiver, key, Date.now() - this.#retention) as string | null | undefined
    return row === undefined ? undefined : row === null ? null : (JSON.parse(row) as SendResult)
  }

  /**
   * A send from this weave: `send()` once per (receiver, the key `msgId` carries), its row queued
   * in the batch of what `send` queues; a send again returns the first result with `duplicate`.
   * An unkeyed `msgId` just sends.
   */
  once(receiver: string, msgId: string, send: () => SendResult): SendResult {
    const key = keyOf(msgId)
    if (key === null) return send()
    const first = this.seen(receiver, key)
    if (first !== undefined) return { ...(first ?? { delivered: true, to: receiver }), duplicate: true }
    const result = send()
    this.record(receiver, key, result)
    return result
  }

  /**
   * Thread `to` succeeds thread `from` (src/successions.ts), taking its messages: `from`'s keys are
   * `to`'s too (copied, in the current batch, so a retry to either id, or to a name now `to`'s, is
   * a duplicate). Rows of `from` queued and not yet committed are copied with the batch's order.
   */
  copy(from: string, to: string): void {
    const prefix = `${from}\n`
    const copied: string[] = []
    for (const [k, result] of [...this.#queued]) {
      const k2 = `${to}\n${k.slice(prefix.length)}`
      if (!k.startsWith(prefix) || this.#queued.has(k2)) continue
      this.#queued.set(k2, result)
      copied.push(k2)
    }
    this.#journal.queue(this.#copy, [to, from], () => {
      for (const k of copied) this.#queued.delete(k)
    })
  }

  /** Queues row (receiver, key) in the current batch, with the send's result if this weave sent it. */
  record(receiver: string, key: string, result: SendResult | null, at = Date.now()): void {
    const k = `${receiver}\n${key}`
    const had = this.#queued.get(k)
    this.#queued.set(k, had ?? result)
    const now = Date.now()
    this.#journal.queue(this.#insert, [receiver, key, at, result === null ? null : JSON.stringify(result), now - this.#retention, now - this.#retention], () => {
      this.#queued.delete(k)
    })
    if (now - this.#pruned >= PRUNE_EVERY_MS) {
      this.#pruned = now
      this.#journal.queue(this.#prune, [now - this.#retention])
    }
  }
}

/**
 * What the relay (src/amqp/relay.ts) makes of an outbox row no weave will take: one the broker
 * returned (no queue for its weave), or one it refused for its size (bigger than its
 * max_message_size: it closes the channel with 406 PRECONDITION_FAILED; a batch of rows refused
 * goes again row by row, and only a row refused alone is one).
 *
 * Invariant: such a row becomes a dead letter, with the reason, in the transaction that deletes
 * it from the outbox (a move's record excepted, refused or returned: its thread comes back,
 * src/weave-moves.ts; `migrate` rejects with UnknownWeave for one returned), and
 * who waits for it is told, in that batch or one before (src/refused-sends.ts); the rows after it go on (a row refused for its size, published again, would
 * be refused again forever, and every later row of the weave would wait behind it).
 */
import type { Envelope, WatchEnvelope } from '../messages.js'
import type { RefusedMove } from '../weave-moves.js'
import type { RefusedRow } from '../refused-sends.js'
import type { Row } from './wire.js'

/** How the outbox body of a move record begins (`JSON.stringify({ k: 'move', … })`). */
export const MOVE_PREFIX = '{"k":"move"'

/** What the relay tells the weave of what the broker took or refused. */
export interface RelayHooks {
  /** The broker took the record of a move, message id `msgId` (src/weave-moves.ts). */
  sent(msgId: string): void
  /**
   * It refused it (`gone`: returned it, as no queue is there for that weave): the thread comes
   * back; resolves to the outbox rows the weave took, or null (closing).
   */
  refusedMove(move: RefusedMove, reason: string, gone: boolean): Promise<number[] | null>
  /** It refused another row for its size: who waits for it is told (src/refused-sends.ts), before it is dead-lettered. */
  refused(row: RefusedRow, reason: string): void
}

/** The broker's limit a channel was closed for: the message's size and its max_message_size. */
export interface SizeRefusal {
  size: number
  max: number
}

/**
 * The size refusal in the text of a channel's close (RabbitMQ: "PRECONDITION_FAILED - message
 * size 2097212 is larger than configured max size 1048576"), or null.
 */
export function sizeRefusal(text: string): SizeRefusal | null {
  const m = /message size (\d+) is larger than configured max size (\d+)/.exec(text)
  return m === null ? null : { size: Number(m[1]), max: Number(m[2]) }
}

/** Why a row refused for its size is a dead letter. */
export function sizeReason(r: SizeRefusal, dest: string): string {
  return (
    `the broker refused it for its size (${r.size} bytes; its max_message_size is ${r.max}), so it cannot reach weave '${dest}': ` +
    `send a reference to the payload stored elsewhere, or raise the broker's max_message_size (and keep maxMessageBytes within it)`
  )
}

/** Why a move's record refused for its size did not go (its thread comes back instead). */
export function moveSizeReason(r: SizeRefusal, dest: string): string {
  return (
    `the broker refused its record for its size (${r.size} bytes; its max_message_size is ${r.max}), so it cannot reach weave '${dest}': ` +
    `raise the broker's max_message_size (and keep maxMessageBytes within it), or make the record smaller (fewer messages waiting in its inbox; continue as new)`
  )
}

/**
 * The dead letter (sender, recipient, body, reason, at) of an outbox row's envelope `body` no
 * weave takes, or null for what is nobody's message: a fence (its thread's catch-up gives up in
 * time, src/catch-up.ts), an unwatch (with the weave gone, so are its watches).
 */
export function deadLetterOf(body: string, reason: string): unknown[] | null {
  if (body.startsWith('{"k":"fence"') || body.startsWith('{"k":"unwatch"')) return null
  const e = JSON.parse(body) as Envelope | WatchEnvelope
  // A moving thread's whole record is kept, so nothing of it is lost.
  const [from, to, what] =
    e.k === 'msg' ? [e.from, e.to, e.body] : e.k === 'spawn' ? [e.parent, e.id, e.params] : e.k === 'move' ? [e.record.from, e.record.thread.id, body] : e.k === 'unwatch' ? [null, e.watcher, body] : [null, e.target, body]
  return [from, to, what, reason, Date.now()]
}

/** What the refusals do to the relay's rows (src/amqp/relay.ts). */
export interface RefusalsRelay {
  /** Rows no weave takes (`reason`: why): dead letters, deleted soon. */
  dead(rows: Row[], reason: string): void
  /** Rows for weave `dest` a thread coming back took with it: deleted soon; returns those read and not confirmed. */
  taken(dest: string, ns: number[]): number[]
  /** Row `n` is not published again (`on`), or may be again. */
  hold(n: number, on: boolean): void
  /** `rows`, a batch, are published again each alone. */
  split(rows: Row[]): void
  closed(): boolean
}

/**
 * The relay's rows the broker refused for their size or returned (no queue for their weave):
 * dead letters, or, for a move's record, its thread back here (`RelayHooks.refusedMove`).
 */
export class Refusals {
  readonly #relay: RefusalsRelay
  readonly #hooks: RelayHooks | null
  readonly #log: (line: string) => void
  readonly #ns: string
  /** Per weave: its returned moves' threads coming back (`returned`); and the rows they took, until returned too. */
  readonly #movingBack = new Map<string, Promise<void>>()
  readonly #takenBack = new Set<number>()

  constructor(relay: RefusalsRelay, hooks: RelayHooks | null, log: (line: string) => void, ns: string) {
    this.#relay = relay
    this.#hooks = hooks
    this.#log = log
    this.#ns = ns
  }

  /**
   * The broker returned `rows` (no queue for their weave): dead letters; a move's record brings
   * its thread back instead, as one refused for its size. Rows returned for that weave while it
   * comes back wait for it: those it took with it are not dead letters too.
   */
  returned(rows: Row[], move: boolean): void {
    const dest = rows[0]![2]
    const reason = `no weave '${dest}' has joined namespace '${this.#ns}' of the broker`
    const before = this.#movingBack.get(dest)
    if (move && this.#hooks !== null) {
      const p = Promise.all([before, this.#moveBack(this.#hooks, rows[0]!, reason, true)]).then(() => {
        if (this.#movingBack.get(dest) === p) this.#movingBack.delete(dest)
      })
      this.#movingBack.set(dest, p)
      return
    }
    // Those a thread coming back took with it are not dead letters too: a copy there, once
    // resent, would reach the thread twice. Their return may come while it comes back, or after
    // (under load, the confirm of a row read after the move's can follow the whole move back).
    const settle = (): void => {
      const left = rows.filter(([n]) => !this.#takenBack.delete(n))
      if (left.length > 0 && !this.#relay.closed()) this.#relay.dead(left, reason)
    }
    if (before === undefined) settle()
    else void before.then(settle)
  }

  /**
   * The channel closed as the broker refused a message for its size: the first one not confirmed
   * (`unconfirmed`, by its first row's number) bigger than its max is dead-lettered, logged, and
   * not published again; a move's thread comes back here instead; a batch goes again, each of
   * its rows alone (only one itself over the limit is a dead letter).
   * Resolves when the next channel may open; null if none is known (then it is published again,
   * after the back-off).
   */
  tooLarge(r: SizeRefusal, unconfirmed: Map<number, { rows: Row[]; bytes: number }>): Promise<void> | null {
    for (const [first, { rows, bytes }] of unconfirmed) {
      if (bytes <= r.max) continue
      unconfirmed.delete(first)
      if (rows.length > 1) {
        this.#relay.split(rows)
        return Promise.resolve()
      }
      const dest = rows[0]![2]
      if (this.#hooks !== null && rows[0]![3].startsWith(MOVE_PREFIX)) return this.#moveBack(this.#hooks, rows[0]!, moveSizeReason(r, dest))
      const reason = sizeReason(r, dest)
      this.#log(`raiment: ${reason}; ${rows.length === 1 ? 'that message is' : `those ${rows.length} messages are`} in the dead letters here (raiment dead-letters), and the messages after it go on`)
      for (const [, msgId, , body] of rows) this.#hooks?.refused({ msgId, dest, body }, reason)
      this.#relay.dead(rows, reason)
      return Promise.resolve()
    }
    return null
  }

  /**
   * The record of a move, `row`, was refused (`reason`; `gone`: returned): its thread comes back
   * here with the rows for it after it, which go (deleted in the weave's batch that brings it
   * back, and done in the relay).
   */
  async #moveBack(hooks: RelayHooks, row: Row, reason: string, gone = false): Promise<void> {
    const [n, msgId, dest, body] = row
    this.#log(`raiment: a thread's move to weave '${dest}': ${reason}; the thread comes back here and runs on`)
    // Not published again meanwhile (on a channel of a new connection, under a limit raised since).
    this.#relay.hold(n, true)
    let ns: number[] | null
    try {
      ns = await hooks.refusedMove({ n, msgId, dest, body }, reason, gone)
    } catch {
      // Not a record this weave reads: a dead letter, as before.
      return this.#relay.dead([row], reason)
    }
    // Closing: the row stays, for the next run.
    if (ns === null) return this.#relay.hold(n, false)
    // One read and not confirmed may come back returned too: not a dead letter then.
    for (const m of this.#relay.taken(dest, ns)) if (gone && m !== n) this.#takenBack.add(m)
  }
}

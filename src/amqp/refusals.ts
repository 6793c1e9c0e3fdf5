/**
 * What the relay (src/amqp/relay.ts) makes of an outbox row no weave will take: one the broker
 * returned (no queue for its weave), or one it refused for its size (bigger than its
 * max_message_size: it closes the channel with 406 PRECONDITION_FAILED).
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

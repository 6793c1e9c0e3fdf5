/**
 * What a weave does when the broker refused one of its messages to another weave for its size
 * (bigger than its max_message_size, lower than maxMessageBytes): the transport dead-letters it
 * (src/amqp/refusals.ts), and here whoever waits for it is told, not left waiting for ever.
 *
 * - An end (an exit message to a parent or a monitor on another weave, a join's answer): a small
 *   one goes in its place, under its id and `:refused`, that says so and why: the exit message
 *   `{ exit, status, refused }` (no result or error), and a join rejects with MessageRefused.
 * - A spawn on another weave (its params): the parent here gets the exit message of a child that
 *   failed at once, with MessageRefused, as for a type that weave does not have.
 * - Anything else (a thread's message, a watch, a kill): the dead letter only, as before; its
 *   sender was told it went.
 *
 * Invariant: queued in a batch no later than the one that dead-letters the message. Refused
 * again (a crash between), it sends the same id again, and the receiver takes it once.
 */
import { decodeValue, encodeValue } from './encoding.js'
import { MessageRefused } from './errors.js'
import type { Envelope, WatchEnvelope } from './message-shapes.js'
import type { Messages } from './messages.js'

/** An outbox row the broker refused: its message id, the weave it was for, its envelope (JSON). */
export interface RefusedRow {
  msgId: string
  dest: string
  body: string
}

/** Tells whoever waits for the message of `row`, refused by the broker (`reason`: why), in the current batch. */
export function refusedSend(messages: Messages, row: RefusedRow, reason: string): void {
  const e = JSON.parse(row.body) as Envelope | WatchEnvelope
  const id = `${row.msgId}:refused`
  if (e.k === 'exit' && e.refused === undefined) {
    messages.outbox(row.dest, id, { ...e, body: encodeValue(refusedExit(e.target, e.status, reason)), outcome: null, refused: reason })
  } else if (e.k === 'msg' && row.msgId.startsWith('exit:') && !row.msgId.endsWith(':refused')) {
    const m = decodeValue(e.body) as { exit?: unknown; status?: unknown } | null
    messages.outbox(row.dest, id, { k: 'msg', from: e.from, to: e.to, body: encodeValue(refusedExit(m?.exit, m?.status, reason)), ...(e.name !== undefined ? { name: e.name } : {}) })
  } else if (e.k === 'spawn' && e.parent !== null) {
    const err = new MessageRefused(`thread ${e.id} was not spawned on weave '${row.dest}'`, reason)
    messages.send(e.id, e.parent, { exit: e.id, status: 'failed', error: { name: err.name, message: err.message, code: err.code } }, `exit:${e.id}:${e.parent}`, null, Infinity)
  }
}

/** The exit message that stands in for one the broker refused. */
function refusedExit(exit: unknown, status: unknown, reason: string): { exit: unknown; status: unknown; refused: string } {
  return { exit, status, refused: `its exit message did not reach this weave: ${reason}` }
}

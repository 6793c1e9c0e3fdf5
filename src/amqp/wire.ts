/**
 * What one AMQP message between weaves carries: sent by src/amqp/relay.ts, taken by
 * src/amqp/inbound.ts.
 *
 * - The body: one envelope (src/messages.ts), or several for one weave (`BatchEnvelope`), each
 *   with its own id, in outbox order.
 * - The message id: the envelope's id, or `batch:<first id>`; its digest when too long.
 * - Headers (see src/received.ts): `src`, the sending journal; `sn`, each row's number; `prev`,
 *   the row before it for the same weave (null if not known); `pend: 1` when that row was not
 *   confirmed at publish (src/amqp/resequence.ts); `traceparent` (W3C) for a row alone, or
 *   `traceparents` (one per envelope, null where none) for a batch.
 */
import { createHash } from 'node:crypto'
import type { Envelope, WatchEnvelope } from '../messages.js'

/**
 * Several envelopes for one weave in one AMQP message: `items[i]` has the id `ids[i]` (the AMQP
 * message id of a row sent alone), in outbox order. Its own AMQP message id is `batch:<ids[0]>`.
 */
export interface BatchEnvelope {
  k: 'batch'
  ids: string[]
  items: Array<Envelope | WatchEnvelope>
}

/**
 * The longest id an AMQP message carries as its message id (a short string: 255 bytes at most; a
 * longer one makes amqplib throw). Ids grow with forwards (src/messages.ts `hopId`) and exit
 * messages hold the ids of their watch and thread: a longer one travels in the body.
 */
const ID_MAX = 200

/**
 * An outbox row as the relay reads it: `prev` is the row before it for its weave saved with it (a
 * refused row's, src/amqp/relay.ts). (The body is read as text and turned into bytes with
 * Buffer.from, from Node's pool: reading it as a BLOB makes better-sqlite3 allocate a Buffer per
 * row, ~1.5x slower.)
 */
export type Row = [n: number, msgId: string, dest: string, body: string, trace: string | null, prev: number | null]

/**
 * The AMQP message that carries `rows` (one weave's, in order) from journal `src`; `prevs[i]` is
 * the row before `rows[i]` for that weave.
 */
export function wireMessage(src: string, rows: Row[], prevs: Array<number | null>, pend: boolean): { id: string; body: string; headers: Record<string, unknown> } {
  const first = rows[0]!
  // A row whose id is too long for an AMQP message id goes as a batch of one (its id in the body).
  const batch = rows.length > 1 || Buffer.byteLength(first[1]) > ID_MAX
  const headers: Record<string, unknown> = batch ? { src, sn: rows.map((r) => r[0]), prev: prevs } : { src, sn: first[0], prev: prevs[0] ?? null }
  if (pend) headers['pend'] = 1
  if (!batch) {
    if (first[4] !== null) headers['traceparent'] = first[4]
    return { id: first[1], body: first[3], headers }
  }
  if (rows.some((r) => r[4] !== null)) headers['traceparents'] = rows.map((r) => r[4])
  // The bodies are envelopes in JSON already: joined as they are, not parsed again.
  const body = `{"k":"batch","ids":${JSON.stringify(rows.map((r) => r[1]))},"items":[${rows.map((r) => r[3]).join(',')}]}`
  return { id: transportId(`batch:${first[1]}`), body, headers }
}

/** The message id of an AMQP message: `id`, or its digest when it is too long. */
function transportId(id: string): string {
  return Buffer.byteLength(id) <= ID_MAX ? id : `sha256:${createHash('sha256').update(id).digest('base64url')}`
}

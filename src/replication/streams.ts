/**
 * Reading a journal's streams over AMQP 0-9-1 (amqplib): a stream has no end-of-stream signal
 * there, so a reader appends a marker record of its own and reads from the first record until it
 * sees it. Consumers use a prefetch and manual acks (auto-ack and basic.get are refused with 540,
 * which closes the connection).
 */
import { randomUUID } from 'node:crypto'
import type { ChannelModel, ConsumeMessage } from 'amqplib'
import { RaimentError } from '../errors.js'
import { genStream, headStream, readHeaders, STREAM_ARGS, type RecordHeaders } from './records.js'

/** No journal stream for this weave in this namespace (never replicated, or deleted). */
export class NoJournalStream extends RaimentError {
  constructor(ns: string, weaveId: string, why: string) {
    super(
      'RAIMENT_NO_JOURNAL_STREAM',
      `no journal stream for weave '${weaveId}' in namespace '${ns}' (${why}); was it started with --replicate, on this broker and namespace (--namespace)?`,
    )
  }
}

/** The generation being read was deleted meanwhile (a checkpoint moved on, or an operator deleted it). */
export class JournalStreamGone extends RaimentError {
  constructor(queue: string) {
    super('RAIMENT_JOURNAL_STREAM_GONE', `the journal stream ${queue} was deleted while it was read; nothing was written from it`)
  }
}

const PREFETCH = 2_000
const ACK_EVERY = 500

/** Whether a queue of that name exists (a failed passive declare closes its channel only). */
export async function queueExists(conn: ChannelModel, queue: string): Promise<boolean> {
  const ch = await conn.createChannel()
  ch.on('error', () => {})
  try {
    await ch.checkQueue(queue)
    await ch.close().catch(() => {})
    return true
  } catch {
    return false
  }
}

/** Declares a journal stream (idempotent). */
export async function declareStream(conn: ChannelModel, queue: string): Promise<void> {
  const ch = await conn.createChannel()
  ch.on('error', () => {})
  try {
    await ch.assertQueue(queue, { durable: true, arguments: STREAM_ARGS })
  } finally {
    await ch.close().catch(() => {})
  }
}

/**
 * Appends a marker to `queue`, then reads it from its first record to the marker, calling
 * `onRecord` with each journal record (markers left out) in stream order. Resolves with the
 * count of journal records, and of all deliveries (markers of other readers included). With
 * `from: 'last'`, it reads from the stream's last chunk (its last records) instead, the marker
 * appended once it reads.
 * @throws JournalStreamGone when the stream is deleted before the marker is read
 * @throws whatever `onRecord` throws (reading stops)
 */
export async function readToEnd(
  conn: ChannelModel,
  queue: string,
  onRecord: (h: RecordHeaders, body: Buffer) => void,
  from: 'first' | 'last' = 'first',
): Promise<{ records: number; deliveries: number }> {
  const id = randomUUID()
  const mark = async (): Promise<void> => {
    const pub = await conn.createConfirmChannel()
    pub.on('error', () => {})
    let returned = false
    pub.on('return', () => (returned = true))
    pub.publish('', queue, Buffer.alloc(0), { mandatory: true, headers: { kind: 'marker', id } })
    await pub.waitForConfirms()
    await pub.close().catch(() => {})
    if (returned) throw new JournalStreamGone(queue)
  }
  if (from === 'first') await mark()
  else if (!(await queueExists(conn, queue))) throw new JournalStreamGone(queue)
  const ch = await conn.createChannel()
  await ch.prefetch(PREFETCH)
  let records = 0
  let n = 0
  return new Promise<{ records: number; deliveries: number }>((resolve, reject) => {
    let done = false
    const finish = (e: Error | null): void => {
      if (done) return
      done = true
      void ch.close().catch(() => {})
      if (e === null) resolve({ records, deliveries: n })
      else reject(e)
    }
    // A stream that does not exist (deleted) closes the channel with 404.
    const gone = (e: unknown): Error => ((e as { code?: unknown }).code === 404 ? new JournalStreamGone(queue) : (e as Error))
    ch.on('error', (e: Error) => finish(gone(e)))
    ch.on('close', () => finish(new JournalStreamGone(queue)))
    const take = (m: ConsumeMessage | null): void => {
      if (done) return
      if (m === null) return finish(new JournalStreamGone(queue))
      if (++n % ACK_EVERY === 0) ch.ack(m, true)
      const h = readHeaders(m.properties.headers)
      if (h === null) return
      if (h.kind === 'marker') {
        if (h.id === id) {
          ch.ack(m, true)
          finish(null)
        }
        return
      }
      records++
      try {
        onRecord(h, m.content)
      } catch (e) {
        finish(e as Error)
      }
    }
    ch.consume(queue, take, { noAck: false, arguments: { 'x-stream-offset': from } })
      .then(() => (from === 'last' ? mark() : undefined))
      .catch((e: unknown) => finish(gone(e)))
  })
}

/**
 * The last batch a journal generation's stream holds (its `rseq`; a snapshot's when it holds no
 * batch yet), read from its last records; from its first when its last chunk holds none (only a
 * reader's marker, appended after them).
 * @throws JournalStreamGone when the stream does not exist, or is deleted meanwhile
 */
export async function lastRseq(conn: ChannelModel, queue: string): Promise<number> {
  let last = -1
  const take = (h: RecordHeaders): void => {
    last = Math.max(last, h.rseq)
  }
  await readToEnd(conn, queue, take, 'last')
  if (last < 0) await readToEnd(conn, queue, take, 'first')
  return Math.max(last, 0)
}

/** The current generation of a journal, as its head says. */
export interface Head {
  gen: number
  epoch: number
  /** The last batch its snapshot holds. */
  rseq: number
  /** Records in the head stream (markers included): what each read of it receives. */
  length: number
  /** The id of the journal it replicates (absent in streams of older Raiments). */
  journal?: string
}

/**
 * The journal's current generation: the last `generation` record of the highest epoch in its
 * head stream; null when the head stream does not exist or names none.
 */
export async function readHead(conn: ChannelModel, ns: string, weaveId: string): Promise<Head | null> {
  const head = headStream(ns, weaveId)
  if (!(await queueExists(conn, head))) return null
  let found: Omit<Head, 'length'> | null = null
  let maxEpoch = 0
  const { deliveries } = await readToEnd(conn, head, (h) => {
    if (h.kind !== 'generation' || h.epoch < maxEpoch) return
    maxEpoch = h.epoch
    found = { gen: h.gen, epoch: h.epoch, rseq: h.rseq, ...(h.journal !== undefined ? { journal: h.journal } : {}) }
  })
  return found === null ? null : { ...(found as Omit<Head, 'length'>), length: deliveries }
}

/** Deletes every stream of a journal (the head and its current generation); for tests and operators. */
export async function deleteJournalStreams(conn: ChannelModel, ns: string, weaveId: string): Promise<void> {
  const head = await readHead(conn, ns, weaveId).catch(() => null)
  const ch = await conn.createChannel()
  ch.on('error', () => {})
  try {
    if (head !== null) await ch.deleteQueue(genStream(ns, weaveId, head.gen))
    await ch.deleteQueue(headStream(ns, weaveId))
  } finally {
    await ch.close().catch(() => {})
  }
}

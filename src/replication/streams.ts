/**
 * Reading a journal's streams over AMQP 0-9-1 (amqplib): a stream has no end-of-stream signal
 * there, so a reader appends a marker record of its own and reads from the first record until it
 * sees it. Consumers use a prefetch and manual acks (auto-ack and basic.get are refused with 540,
 * which closes the connection).
 */
import { randomUUID } from 'node:crypto'
import type { Channel, ChannelModel, ConsumeMessage } from 'amqplib'
import { RaimentError } from '../errors.js'
import { genStream, headStream, readHeaders, STREAM_ARGS, type RecordHeaders } from './records.js'

/** No journal stream for this weave in this namespace (never replicated, or deleted). */
export class NoJournalStream extends RaimentError {
  readonly ns: string
  readonly weaveId: string
  constructor(ns: string, weaveId: string, why: string) {
    super(
      'RAIMENT_NO_JOURNAL_STREAM',
      `no journal stream for weave '${weaveId}' in namespace '${ns}' (${why}); was it started with --replicate, on this broker and namespace (--namespace)?`,
    )
    this.ns = ns
    this.weaveId = weaveId
  }
}

/**
 * The generation being read was deleted meanwhile (a checkpoint moved on, or an operator deleted
 * it), or, `missing`, before the read: the journal's head names it, but it does not exist (an
 * operator deleted it, or it was lost with the broker nodes that held it); no read finds it.
 */
export class JournalStreamGone extends RaimentError {
  readonly queue: string
  readonly missing: boolean
  constructor(queue: string, missing = false) {
    super(
      'RAIMENT_JOURNAL_STREAM_GONE',
      missing
        ? `the journal stream ${queue} does not exist, though the journal's head names it as its current generation (deleted by an operator, or lost with the broker nodes that held it); nothing can be rebuilt from it`
        : `the journal stream ${queue} was deleted while it was read; nothing was written from it`,
    )
    this.queue = queue
    this.missing = missing
  }
}

const PREFETCH = 2_000
const ACK_EVERY = 500

/** Runs `f` on a channel of its own of `conn`, closed after (a failed operation closes it already). */
export async function onChannel<T>(conn: ChannelModel, f: (ch: Channel) => Promise<T>): Promise<T> {
  const ch = await conn.createChannel()
  ch.on('error', () => {})
  try {
    return await f(ch)
  } finally {
    await ch.close().catch(() => {})
  }
}

/**
 * Asks the broker on `conn` whether `queue` exists: true, or the check's error (`code` 404: it
 * does not; a failed check closes its channel, so each check has a channel of its own).
 */
export async function queueCheck(conn: ChannelModel, queue: string): Promise<true | (Error & { code?: unknown })> {
  try {
    const ch = await conn.createChannel()
    ch.on('error', () => {})
    await ch.checkQueue(queue)
    await ch.close().catch(() => {})
    return true
  } catch (e) {
    return e as Error & { code?: unknown }
  }
}

/** Whether a queue of that name exists (a failed passive declare closes its channel only). */
export async function queueExists(conn: ChannelModel, queue: string): Promise<boolean> {
  return onChannel(conn, (ch) => ch.checkQueue(queue)).then(
    () => true,
    () => false,
  )
}

/** Declares a journal stream (idempotent). */
export async function declareStream(conn: ChannelModel, queue: string): Promise<void> {
  await onChannel(conn, (ch) => ch.assertQueue(queue, { durable: true, arguments: STREAM_ARGS }))
}

/** Generation `gen` of a journal's stream declared anew (a leftover of a start that died deleted first), and its head. */
export async function declareGeneration(conn: ChannelModel, ns: string, weaveId: string, gen: number): Promise<void> {
  await onChannel(conn, async (ch) => {
    const queue = genStream(ns, weaveId, gen)
    await ch.deleteQueue(queue)
    await ch.assertQueue(queue, { durable: true, arguments: STREAM_ARGS })
    await ch.assertQueue(headStream(ns, weaveId), { durable: true, arguments: STREAM_ARGS })
  })
}

/** Generations `gens` of a journal's stream deleted. */
export async function deleteGenerations(conn: ChannelModel, ns: string, weaveId: string, gens: readonly number[]): Promise<void> {
  await onChannel(conn, async (ch) => {
    for (const g of gens) await ch.deleteQueue(genStream(ns, weaveId, g))
  })
}

/** What a read to the end of a stream received. */
export interface ReadToEnd {
  /** Journal records (markers left out). */
  records: number
  /** Every delivery, markers of other readers included. */
  deliveries: number
  /** The offset of this reader's marker: the stream's last record when it was read (-1 if unknown). */
  end: number
}

/**
 * Appends a marker to `queue`, then reads it from its first record to the marker, calling
 * `onRecord` with each journal record (markers left out) in stream order. Resolves with the
 * count of journal records, of all deliveries (markers of other readers included), and the
 * offset of the marker (the stream's last record when it was read). With `from: 'last'`, it
 * reads from the stream's last chunk (its last records) instead, the marker appended once it
 * reads; with a number, from that offset on.
 * @throws JournalStreamGone when the stream is deleted before the marker is read
 * @throws whatever `onRecord` throws (reading stops)
 */
export async function readToEnd(
  conn: ChannelModel,
  queue: string,
  onRecord: (h: RecordHeaders, body: Buffer) => void,
  from: 'first' | 'last' | number = 'first',
): Promise<ReadToEnd> {
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
  if (from !== 'last') await mark()
  else if (!(await queueExists(conn, queue))) throw new JournalStreamGone(queue)
  const ch = await conn.createChannel()
  await ch.prefetch(PREFETCH)
  let records = 0
  let n = 0
  let end = -1
  return new Promise<ReadToEnd>((resolve, reject) => {
    let done = false
    const finish = (e: Error | null): void => {
      if (done) return
      done = true
      void ch.close().catch(() => {})
      if (e === null) resolve({ records, deliveries: n, end })
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
          const at: unknown = m.properties.headers?.['x-stream-offset']
          end = typeof at === 'number' && Number.isInteger(at) ? at : -1
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
  /** Records in the head stream (markers included). */
  length: number
  /** Records this read of the head received (markers included). */
  read: number
  /** The id of the journal it replicates (absent in streams of older Raiments). */
  journal?: string
}

/** How many records before its end a read of the head looks first, once its last chunk named no generation. */
const HEAD_WINDOW = 256

/**
 * The journal's current generation: the last `generation` record of the highest epoch in its
 * head stream; null when the head stream does not exist or names none.
 *
 * The head is never trimmed (a generation record is appended at each checkpoint, start and
 * takeover, a marker at each read), so it is read from its end: its last chunk, then from
 * HEAD_WINDOW records before its end, sixteen times further back each time no generation record
 * is found, to its first record. Each read goes on to the end, so the generation found is the
 * head's last. (Only the lease holder appends generation records: a lower epoch's cannot follow a
 * higher one's, see docs/host-loss.md, so the last is also of the highest epoch; a read keeps
 * the rule within what it reads.)
 */
export async function readHead(conn: ChannelModel, ns: string, weaveId: string): Promise<Head | null> {
  const head = headStream(ns, weaveId)
  if (!(await queueExists(conn, head))) return null
  let found: Omit<Head, 'length' | 'read'> | null = null
  let maxEpoch = 0
  const take = (h: RecordHeaders): void => {
    if (h.kind !== 'generation' || h.epoch < maxEpoch) return
    maxEpoch = h.epoch
    found = { gen: h.gen, epoch: h.epoch, rseq: h.rseq, ...(h.journal !== undefined ? { journal: h.journal } : {}) }
  }
  let r = await readToEnd(conn, head, take, 'last')
  let read = r.deliveries
  for (let window = HEAD_WINDOW; found === null && r.end !== 0; window *= 16) {
    // Unknown end (a broker that sent no offset): the whole head.
    const from = r.end < 0 ? 0 : Math.max(0, r.end - window)
    r = await readToEnd(conn, head, take, from === 0 ? 'first' : from)
    read += r.deliveries
    if (from === 0) break
  }
  return found === null ? null : { ...(found as Omit<Head, 'length' | 'read'>), length: r.end >= 0 ? r.end + 1 : r.deliveries, read }
}

/** Deletes every stream of a journal (the head and its current generation); for tests and operators. */
export async function deleteJournalStreams(conn: ChannelModel, ns: string, weaveId: string): Promise<void> {
  const head = await readHead(conn, ns, weaveId).catch(() => null)
  await onChannel(conn, async (ch) => {
    if (head !== null) await ch.deleteQueue(genStream(ns, weaveId, head.gen))
    await ch.deleteQueue(headStream(ns, weaveId))
  })
}

/**
 * The epoch a journal stream is at: the highest `epoch` header of its records. The owner of a
 * journal's lease writes every record with its epoch; a weave that takes a journal over writes
 * with the epoch after the highest it read. So a weave that finds a higher epoch than its own in
 * its stream has been taken over, and must stop (src/replication/fencing.ts).
 *
 * A stream sends no end-of-stream over AMQP 0-9-1: the reader starts at the last chunk
 * (`x-stream-offset: last`: its records are the newest, so the highest epoch is among them),
 * appends a probe record of its own (header `kind: 'probe'`, no epoch, no rseq: readers of the
 * journal skip it) and reads until its probe comes back.
 */
import { randomUUID } from 'node:crypto'
import type { ChannelModel, ConsumeMessage } from 'amqplib'

/** The kind of the records this file appends; journal readers skip them. */
export const PROBE_KIND = 'probe'

/**
 * The highest epoch in `stream` (0 when it holds no record with an epoch, or does not exist).
 * Rejects when the connection fails or `timeoutMs` passes before the probe comes back.
 */
export async function streamEpoch(conn: ChannelModel, stream: string, timeoutMs = 10_000): Promise<number> {
  const ch = await conn.createConfirmChannel()
  ch.on('error', () => {})
  try {
    await ch.checkQueue(stream)
  } catch {
    return 0 // 404 (it closes the channel): no stream yet, a weave that has written nothing
  }
  const read = await conn.createChannel()
  read.on('error', () => {})
  try {
    await read.prefetch(500)
    const probe = randomUUID()
    let highest = 0
    let done: () => void = () => {}
    let fail: (e: Error) => void = () => {}
    const finished = new Promise<void>((resolve, reject) => {
      done = resolve
      fail = reject
    })
    const timer = setTimeout(() => fail(new Error(`the probe of stream ${stream} did not come back within ${timeoutMs} ms`)), timeoutMs)
    read.on('close', () => fail(new Error(`the channel reading stream ${stream} closed`)))
    await read.consume(
      stream,
      (m: ConsumeMessage | null) => {
        if (m === null) return
        const h = m.properties.headers ?? {}
        read.ack(m)
        if (h['kind'] === PROBE_KIND) {
          if (h['probe'] === probe) done()
          return
        }
        const e = Number(h['epoch'])
        if (Number.isFinite(e) && e > highest) highest = e
      },
      { noAck: false, arguments: { 'x-stream-offset': 'last' } },
    )
    ch.sendToQueue(stream, Buffer.alloc(0), { headers: { kind: PROBE_KIND, probe } })
    await ch.waitForConfirms()
    await finished.finally(() => clearTimeout(timer))
    return highest
  } finally {
    await read.close().catch(() => {})
    await ch.close().catch(() => {})
  }
}

/**
 * Sends what a channel has buffered to the socket now, rather than on amqplib's next
 * `setImmediate`: a journal record published inside its batch's transaction is then on the wire
 * while the COMMIT's fsync runs, instead of after it (W1's step latency under 'replicated' is
 * about fsync + confirm otherwise, and max of the two with this).
 *
 * amqplib (2.x) queues each channel's frames in a stream that its connection's `Mux` drains to
 * the socket one event-loop turn later. This reaches into that (`connection.channels[ch].buffer`,
 * `connection.muxer`), checking the shape first: with any other shape it does nothing, and the
 * frames go on amqplib's own turn, as before. Frames are never reordered: the mux writes each
 * channel's stream in order, whoever asks it to.
 */
import type { Channel } from 'amqplib'

interface MuxShape {
  newStreams: unknown[]
  blocked: boolean
  _readIncoming(): void
}

interface ConnectionShape {
  channels?: Array<{ buffer?: unknown } | null>
  muxer?: MuxShape
}

export function sendNow(ch: Channel): void {
  const c = ch as unknown as { connection?: ConnectionShape; ch?: number }
  const conn = c.connection
  const mux = conn?.muxer
  const buffer = typeof c.ch === 'number' ? conn?.channels?.[c.ch]?.buffer : undefined
  if (mux === undefined || buffer === undefined || !Array.isArray(mux.newStreams) || typeof mux._readIncoming !== 'function' || mux.blocked) return
  if (!mux.newStreams.includes(buffer)) mux.newStreams.push(buffer)
  mux._readIncoming()
}

/**
 * The registry of replicated weaves of a namespace: a stream `<ns>.replicated` where each
 * replicated weave appends `up` when it starts (once its stream holds its journal, before any of
 * its threads resumes; again with its thread types once it runs) and `down` when it stops cleanly (a weave taken
 * over, fenced or killed never says `down`). A weave that joins reads it from its first record,
 * so it knows the replicated weaves that should be running even if it never heard them: one that
 * stays silent for the takeover time after it joined is taken over like one it heard stop
 * (src/replication/takeover.ts). Records: empty bodies, headers `kind: 'weave'`, `weave`,
 * `state`, and with `up` the weave's takeover time (`after`, ms) and its thread types (`types`, a
 * JSON list: a weave only the registry named goes to a weave that runs them all); a reader
 * appends a `kind: 'marker'` record of its own and reads until it.
 */
import { randomUUID } from 'node:crypto'
import type { ChannelModel, ConsumeMessage } from 'amqplib'
import { declareStream } from './streams.js'

export function registryStream(ns: string): string {
  return `${ns}.replicated`
}

async function declare(conn: ChannelModel, ns: string): Promise<void> {
  await declareStream(conn, registryStream(ns))
}

/** The longest list of thread types a registry record carries (JSON bytes). */
const TYPES_MAX_BYTES = 32 * 1024

/** What a weave said of itself as it registered `up`. */
export interface Registered {
  /** Its takeover time (ms). */
  afterMs?: number
  /** The thread types it runs. */
  types?: string[]
}

/** Appends `state` for weave `id` (with what it says of itself, `up`) and waits for the broker's confirm. */
export async function register(conn: ChannelModel, ns: string, id: string, state: 'up' | 'down', self: Registered = {}): Promise<void> {
  await declare(conn, ns)
  const ch = await conn.createConfirmChannel()
  ch.on('error', () => {})
  try {
    const headers: Record<string, unknown> = { kind: 'weave', weave: id, state }
    if (self.afterMs !== undefined) headers['after'] = self.afterMs
    // AMQP headers hold 64 KiB in all: a list longer than half of that is left out (its weave's
    // types are then unknown, and a candidate finds them in its journal as it rebuilds it).
    const types = self.types === undefined ? '' : JSON.stringify(self.types)
    if (types !== '' && Buffer.byteLength(types) <= TYPES_MAX_BYTES) headers['types'] = types
    ch.sendToQueue(registryStream(ns), Buffer.alloc(0), { persistent: true, headers })
    await ch.waitForConfirms()
  } finally {
    await ch.close().catch(() => {})
  }
}

/** The weaves whose last record says `up`, each with what it said of itself (older records say less). */
export async function registeredUp(conn: ChannelModel, ns: string): Promise<Map<string, Registered>> {
  await declare(conn, ns)
  const marker = randomUUID()
  const state = new Map<string, { state: string; self: Registered }>()
  const ch = await conn.createChannel()
  ch.on('error', () => {})
  try {
    await ch.prefetch(1_000)
    const read = new Promise<void>((resolve, reject) => {
      ch.on('close', () => reject(new Error(`the channel reading ${registryStream(ns)} closed`)))
      ch.consume(
        registryStream(ns),
        (m: ConsumeMessage | null) => {
          if (m === null) return reject(new Error(`${registryStream(ns)} was deleted`))
          ch.ack(m)
          const h = m.properties.headers ?? {}
          if (h['kind'] === 'marker' && String(h['id']) === marker) resolve()
          else if (h['kind'] === 'weave') state.set(String(h['weave']), { state: String(h['state']), self: registeredSelf(h) })
        },
        { noAck: false, arguments: { 'x-stream-offset': 'first' } },
      ).catch(reject)
    })
    const pub = await conn.createConfirmChannel()
    pub.on('error', () => {})
    pub.sendToQueue(registryStream(ns), Buffer.alloc(0), { headers: { kind: 'marker', id: marker } })
    await pub.waitForConfirms()
    await pub.close().catch(() => {})
    await read
  } finally {
    await ch.close().catch(() => {})
  }
  return new Map([...state].filter(([, s]) => s.state === 'up').map(([id, s]) => [id, s.self]))
}

/** What a record's headers say of its weave; what is missing or not understood is left out. */
function registeredSelf(h: Record<string, unknown>): Registered {
  const self: Registered = {}
  if (typeof h['after'] === 'number') self.afterMs = h['after']
  const types = h['types']
  if (typeof types === 'string' || Buffer.isBuffer(types)) {
    try {
      const list: unknown = JSON.parse(String(types))
      if (Array.isArray(list) && list.every((t) => typeof t === 'string')) self.types = list
    } catch {
      // Not a list: the weave's types stay unknown, as for a record that says none.
    }
  }
  return self
}

/**
 * The roster of a namespace: a stream `<ns>.roster` where every weave joined to the broker,
 * replicated or not, appends `up` as it joins (host, pid, journal file) and `down` as it stops
 * cleanly. A weave killed, frozen or cut off from the broker appends nothing more, so its last
 * record still says `up`. `raiment weaves` reads it to name the weaves that are not live: stopped
 * cleanly, or silent, with the messages waiting in their queues (`absentWeaves`).
 *
 * Retired for good: a weave whose queue (`<ns>.weave.<id>`) no longer exists is not listed
 * (`raiment weaves --forget ID` deletes it); a weave that joins again declares it anew.
 *
 * Records: empty bodies, headers `kind: 'weave'`, `weave`, `state`, `at` (the sender's clock,
 * ms), and with `up` `host`, `pid` and `db`. A reader appends a `kind: 'marker'` record of its
 * own and reads until it (as the registry of replicated weaves does, src/replication/registry.ts,
 * which this stream does not replace: a weave listed here is never taken over for being here).
 *
 * Invariant: reading creates nothing: a namespace whose roster was never declared has none, and
 * its stream is not declared by a reader.
 */
import { randomUUID } from 'node:crypto'
import type { ChannelModel, ConsumeMessage } from 'amqplib'
import { RaimentError } from '../raiment-error.js'
import { declareStream, queueExists } from '../replication/streams.js'
import type { Beat } from './membership.js'
import type { Topology } from './topology.js'

export function rosterStream(ns: string): string {
  return `${ns}.roster`
}

/** What a weave says of itself as it joins. */
export interface Enrolled {
  host: string
  pid: number
  /** Its journal file (absolute). */
  db: string
}

/** A weave's last record in the roster (`up` keeps what its latest `up` said). */
export interface RosterEntry extends Partial<Enrolled> {
  state: 'up' | 'down'
  /** When it wrote the record (its clock, ms). */
  at: number
}

/** Appends `state` for weave `id` (with what it says of itself, `up`) and waits for the broker's confirm. */
export async function enroll(conn: ChannelModel, ns: string, id: string, state: 'up' | 'down', self?: Enrolled): Promise<void> {
  await declareStream(conn, rosterStream(ns))
  const ch = await conn.createConfirmChannel()
  ch.on('error', () => {})
  try {
    const headers: Record<string, unknown> = { kind: 'weave', weave: id, state, at: Date.now(), ...self }
    ch.sendToQueue(rosterStream(ns), Buffer.alloc(0), { persistent: true, headers })
    await ch.waitForConfirms()
  } finally {
    await ch.close().catch(() => {})
  }
}

/** Every weave of namespace `ns` the roster names, with its last record; empty without a roster. */
export async function readRoster(conn: ChannelModel, ns: string): Promise<Map<string, RosterEntry>> {
  const out = new Map<string, RosterEntry>()
  const stream = rosterStream(ns)
  if (!(await queueExists(conn, stream))) return out
  const marker = randomUUID()
  const ch = await conn.createChannel()
  ch.on('error', () => {})
  try {
    await ch.prefetch(1_000)
    const read = new Promise<void>((resolve, reject) => {
      ch.on('close', () => reject(new Error(`the channel reading ${stream} closed`)))
      ch.consume(
        stream,
        (m: ConsumeMessage | null) => {
          if (m === null) return reject(new Error(`${stream} was deleted`))
          ch.ack(m)
          const h = m.properties.headers ?? {}
          if (h['kind'] === 'marker' && String(h['id']) === marker) resolve()
          else if (h['kind'] === 'weave') take(out, h)
        },
        { noAck: false, arguments: { 'x-stream-offset': 'first' } },
      ).catch(reject)
    })
    const pub = await conn.createConfirmChannel()
    pub.on('error', () => {})
    pub.sendToQueue(stream, Buffer.alloc(0), { headers: { kind: 'marker', id: marker } })
    await pub.waitForConfirms()
    await pub.close().catch(() => {})
    await read
  } finally {
    await ch.close().catch(() => {})
  }
  return out
}

/** Takes one `weave` record into `out` (what it does not say of the weave, an earlier `up` may). */
function take(out: Map<string, RosterEntry>, h: Record<string, unknown>): void {
  const id = String(h['weave'])
  const state = h['state'] === 'down' ? 'down' : 'up'
  const at = typeof h['at'] === 'number' ? h['at'] : 0
  const was = out.get(id)
  const e: RosterEntry = { ...(state === 'down' ? pick(was) : {}), state, at }
  if (typeof h['host'] === 'string' || Buffer.isBuffer(h['host'])) e.host = String(h['host'])
  if (typeof h['pid'] === 'number') e.pid = h['pid']
  if (typeof h['db'] === 'string' || Buffer.isBuffer(h['db'])) e.db = String(h['db'])
  out.set(id, e)
}

function pick(e: RosterEntry | undefined): Partial<Enrolled> {
  if (e === undefined) return {}
  return { ...(e.host !== undefined ? { host: e.host } : {}), ...(e.pid !== undefined ? { pid: e.pid } : {}), ...(e.db !== undefined ? { db: e.db } : {}) }
}

/** A weave of the namespace that is not live, and not retired (its queue exists). */
export interface Absent extends Partial<Enrolled> {
  id: string
  /** `clean`: it stopped and said so (SIGINT, SIGTERM, a close); `silent`: killed, frozen or cut off. */
  stopped: 'clean' | 'silent'
  /**
   * When it was last heard of (ms): as it stopped, for a clean stop; for a silent one, its last
   * heartbeat a live weave heard, else when it joined (no live weave heard it since).
   */
  lastHeard: number
  /** Messages waiting for it in its queue. */
  queued: number
}

/**
 * The weaves of `topology`'s namespace the roster names that are not live (given the weaves that
 * answered, `live`, and the journals they host) nor in `skip` (told of otherwise: silent
 * replicated weaves), and whose queue still exists, by id.
 */
export async function absentWeaves(conn: ChannelModel, topology: Topology, live: readonly Beat[], skip: ReadonlySet<string>): Promise<Absent[]> {
  const heard = new Set<string>()
  const lastBeat = new Map<string, number>()
  for (const b of live) {
    heard.add(b.id)
    for (const j of b.journals ?? []) heard.add(j)
    for (const [id, at] of Object.entries(b.gone ?? {})) lastBeat.set(id, Math.max(at, lastBeat.get(id) ?? 0))
  }
  const out: Absent[] = []
  for (const [id, e] of await readRoster(conn, topology.ns)) {
    if (heard.has(id) || skip.has(id)) continue
    const queued = await waiting(conn, topology.queue(id))
    if (queued === null) continue
    const { state, at, ...self } = e
    const beat = lastBeat.get(id)
    const lastHeard = state === 'down' ? at : Math.max(at, beat ?? 0)
    out.push({ id, stopped: state === 'down' ? 'clean' : 'silent', lastHeard, queued, ...self })
  }
  return out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
}

/** The messages in queue `name`, or null when it does not exist. */
export async function waiting(conn: ChannelModel, name: string): Promise<number | null> {
  return (await inQueue(conn, name))?.messageCount ?? null
}

/** The messages in queue `name` and its consumers, or null when it does not exist (a failed check closes its channel: one of its own). */
async function inQueue(conn: ChannelModel, name: string): Promise<{ messageCount: number; consumerCount: number } | null> {
  const ch = await conn.createChannel()
  ch.on('error', () => {})
  try {
    const { messageCount, consumerCount } = await ch.checkQueue(name)
    return { messageCount, consumerCount }
  } catch (e) {
    if ((e as { code?: unknown }).code === 404) return null
    throw e
  } finally {
    await ch.close().catch(() => {})
  }
}

/**
 * `raiment weaves --forget ID` refused: the weave is live (`RAIMENT_WEAVE_LIVE`: it answers, or its
 * queue has a consumer), a silent replicated weave a live one is to take over
 * (`RAIMENT_WEAVE_REPLICATED`), or messages wait in its queue and `--force` was not given
 * (`RAIMENT_MESSAGES_WAITING`). Nothing was deleted.
 */
export class ForgetRefused extends RaimentError {
  constructor(code: 'RAIMENT_WEAVE_LIVE' | 'RAIMENT_WEAVE_REPLICATED' | 'RAIMENT_MESSAGES_WAITING', message: string) {
    super(code, message)
  }
}

/**
 * Retires weave `id` for good: deletes its queue, so `raiment weaves` lists it no more (what the
 * roster says of it stays; started again, it declares its queue anew and is listed again).
 * Only a queue found with no consumer (no weave takes from it: one that started after the probe
 * of `raiment weaves`, or that it did not hear, does) is deleted, and without `force`, only one
 * found empty. The broker cannot make either check with the delete for quorum queues (RabbitMQ
 * 3.10 closes the connection, 540 NOT_IMPLEMENTED, for `if-unused` and `if-empty` on one): a
 * message sent, or a weave started, between the check and the delete goes with its queue.
 * Resolves with the messages deleted with it, or null when it had no queue.
 * @throws ForgetRefused (`RAIMENT_WEAVE_LIVE`) when a consumer takes from its queue
 * @throws ForgetRefused (`RAIMENT_MESSAGES_WAITING`) when messages wait and `force` is not set
 */
export async function forget(conn: ChannelModel, topology: Topology, id: string, force: boolean): Promise<number | null> {
  const queue = topology.queue(id)
  const found = await inQueue(conn, queue)
  if (found === null) return null
  const { messageCount: queued, consumerCount } = found
  if (consumerCount > 0) {
    throw new ForgetRefused(
      'RAIMENT_WEAVE_LIVE',
      `weave ${id} takes from its queue ${queue} (${consumerCount === 1 ? '1 consumer' : `${consumerCount} consumers`}: it has just started, or did not answer the probe): nothing was deleted. --forget is for a weave retired for good: stop it first (SIGTERM), then forget it`,
    )
  }
  if (queued > 0 && !force) {
    throw new ForgetRefused(
      'RAIMENT_MESSAGES_WAITING',
      `${queued === 1 ? '1 message waits' : `${queued} messages wait`} for weave ${id} in its queue ${queue}: forgetting it would delete them. Start the weave to take them (raiment start --db ITS_FILE --id ${id} --amqp URL), or pass --force to delete them with its queue`,
    )
  }
  const ch = await conn.createChannel()
  ch.on('error', () => {})
  try {
    return (await ch.deleteQueue(queue)).messageCount
  } finally {
    await ch.close().catch(() => {})
  }
}

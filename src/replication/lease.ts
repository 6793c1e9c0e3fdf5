/**
 * The lease of journal W: an exclusive queue `<ns>.lease.<W>` declared on the connection that
 * writes W's journal stream. RabbitMQ lets one connection at a time hold an exclusive queue
 * (another's declare fails with 405 RESOURCE_LOCKED) and deletes it when that connection closes:
 * about 50 ms after its process dies or closes it, about 0.3 s after its broker node dies, and,
 * for a process frozen (SIGSTOP) or cut off, once the broker's heartbeat timeout has passed
 * (replicated weaves connect with a 2 s heartbeat: about 5 s).
 *
 * Invariant: while `take` has returned true on a connection and that connection is open, no
 * other connection holds the lease. The broker fences nothing else: a writer that lost its
 * connection must stop by itself (src/replication/fencing.ts).
 */
import type { ChannelModel } from 'amqplib'
import { RaimentError } from '../errors.js'

/** The AMQP heartbeat (s) of a replicated weave's connections: a frozen holder loses its lease ~2.5 heartbeats later. */
export const LEASE_HEARTBEAT_S = 2

export function leaseQueue(ns: string, weaveId: string): string {
  return `${ns}.lease.${weaveId}`
}

/** The lease of a journal is held by another connection: someone else runs (or is taking over) this weave. */
export class LeaseHeld extends RaimentError {
  /** `askedMs`: how long the holder was asked to hand it back (0: it was not asked). */
  constructor(ns: string, weaveId: string, askedMs = 0) {
    super(
      'RAIMENT_LEASE_HELD',
      askedMs > 0
        ? `the lease of weave '${weaveId}' (queue ${leaseQueue(ns, weaveId)}) is held by another connection, which did not hand it back within ${(askedMs / 1000).toFixed(1)} s: ` +
            `another process runs this weave on its own (stop it first), or the weave that took it over is busy or runs an older Raiment (start this one again); 'raiment weaves' shows which`
        : `the lease of weave '${weaveId}' (queue ${leaseQueue(ns, weaveId)}) is held by another connection: another process runs this weave, ` +
            `or has taken it over after this one stopped heartbeating; 'raiment weaves' shows which`,
    )
  }
}

/**
 * Weave id W is run by another process on this broker: it holds W's lease (a weave that is not
 * replicated claims its id so too, `AmqpLink.claim`).
 */
export class WeaveIdInUse extends RaimentError {
  constructor(ns: string, weaveId: string, waitedMs: number) {
    super(
      'RAIMENT_WEAVE_ID_IN_USE',
      `weave id '${weaveId}' is in use on this broker (namespace '${ns}'): another connection has held its lease (queue ${leaseQueue(ns, weaveId)}) for ${(waitedMs / 1000).toFixed(1)} s. ` +
        `A weave runs under that id elsewhere (or another weave hosts it, having taken it over), and two weaves of one id would take each other's messages and run their threads twice. ` +
        `Stop that one first ('raiment weaves' shows where it runs), or give this journal an id of its own if it is another weave's. ` +
        `(A process that died frees it at once; one whose host was lost, once the broker notices: ~5.5 s at the 2 s heartbeat weaves ask for, longer if the URL's ?heartbeat= says so.)`,
    )
  }
}

/**
 * Tries to take the lease of `weaveId` on `conn`. True: this connection holds it (declaring it
 * again on the connection that holds it is a no-op). False: another connection holds it.
 * Rejects only when the connection itself fails.
 */
export async function takeLease(conn: ChannelModel, ns: string, weaveId: string): Promise<boolean> {
  const ch = await conn.createChannel()
  ch.on('error', () => {})
  try {
    await ch.assertQueue(leaseQueue(ns, weaveId), { exclusive: true, durable: false, autoDelete: false })
  } catch (e) {
    // 405 RESOURCE_LOCKED closes the channel, not the connection.
    if (/RESOURCE_LOCKED|405/.test((e as Error).message)) return false
    throw e
  }
  await ch.close().catch(() => {})
  return true
}

/** Is the lease of `weaveId` held by some connection now? (Read-only: for `raiment weaves` and tests.) */
export async function leaseHeld(conn: ChannelModel, ns: string, weaveId: string): Promise<boolean> {
  const ch = await conn.createChannel()
  ch.on('error', () => {})
  try {
    await ch.checkQueue(leaseQueue(ns, weaveId))
    await ch.close().catch(() => {})
    return true
  } catch (e) {
    // 405 RESOURCE_LOCKED: another connection's exclusive queue; 404: nobody holds it.
    return /RESOURCE_LOCKED|405/.test((e as Error).message)
  }
}

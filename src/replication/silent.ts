/**
 * Replicated weaves that are silent (`raiment weaves`): registered `up` in the namespace's
 * registry (src/replication/registry.ts) and not stopped cleanly since, yet neither answering a
 * probe nor hosted by a weave that does: lost (killed, its host gone), frozen, or cut off from the
 * broker, until a live weave takes them over.
 *
 * Invariant: looking creates nothing on the broker. A namespace whose registry stream was never
 * declared has no replicated weave, and its stream is not declared here (`registeredUp` would).
 */
import type { ChannelModel } from 'amqplib'
import type { Beat } from '../amqp/membership.js'
import { registeredUp, registryStream } from './registry.js'

/**
 * A silent replicated weave: its id, its takeover time if it said, the live weave that found its
 * journal stream gone (a takeover cannot rebuild it) if one did, whether no live weave could take
 * it over (none holds a lease of its own: src/replication/host.ts), and whether every one that
 * could declines it (each lacks one of its thread types).
 */
export interface Silent {
  id: string
  takeoverAfterMs?: number
  streamGoneFor?: string
  noCandidate?: true
  declinedByAll?: true
}

/** The replicated weaves of namespace `ns` that are silent, given the weaves that answered (`live`). */
export async function silentReplicated(conn: ChannelModel, ns: string, live: readonly Beat[]): Promise<Silent[]> {
  if (!(await exists(conn, registryStream(ns)))) return []
  const heard = new Set<string>()
  // Told in the heartbeats of the weave that tried to take it over.
  const gone = new Map<string, string>()
  for (const b of live) {
    heard.add(b.id)
    for (const j of b.journals ?? []) heard.add(j)
    for (const j of b.streamGone ?? []) gone.set(j, b.id)
  }
  // As src/replication/takeover.ts chooses among them: leased, replicated, not hosted.
  const could = live.filter((b) => b.leased === true && b.replication !== undefined && b.hostedBy === undefined)
  const out: Silent[] = []
  for (const [id, self] of await registeredUp(conn, ns)) {
    if (heard.has(id)) continue
    const by = gone.get(id)
    const declined = could.length > 0 && could.every((b) => b.declines?.includes(id) === true)
    out.push({
      id,
      ...(self.afterMs !== undefined ? { takeoverAfterMs: self.afterMs } : {}),
      ...(by !== undefined ? { streamGoneFor: by } : {}),
      ...(could.length === 0 ? { noCandidate: true as const } : {}),
      ...(declined ? { declinedByAll: true as const } : {}),
    })
  }
  return out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
}

/** Whether queue `name` exists (a passive declare, on a channel of its own: a 404 closes it). */
async function exists(conn: ChannelModel, name: string): Promise<boolean> {
  const ch = await conn.createChannel()
  ch.on('error', () => {})
  try {
    await ch.checkQueue(name)
    return true
  } catch {
    return false
  } finally {
    await ch.close().catch(() => {})
  }
}

/**
 * What a Replicator (src/replication/replicator.ts) is made with, and what it keeps per record.
 */
import type { ChannelModel } from 'amqplib'
import type { BrokerConnection } from '../amqp/connection.js'
import type { Journal } from '../journal.js'
import type { RecordHeaders } from './records.js'

export interface ReplicatorOptions {
  journal: Journal
  /** The weave's broker connection (kept up by it); the replicator opens its own channels on it. */
  broker: BrokerConnection
  /** Default 'raiment'. */
  namespace?: string
  /** Whose journal this is: the stream's name (default the journal's weave id). */
  weaveId?: string
  /** The lease's epoch (default: the journal's meta 'repl_epoch', else 1). */
  epoch?: number
  /** Hold each batch's callbacks until the broker confirmed it (durability 'replicated'). */
  hold: boolean
  /**
   * A generation past this many bytes is checkpointed into a new one (default 64 MiB), once its
   * batches outweigh its snapshot (a live state larger than this is snapshotted again only after
   * as many bytes of writes).
   */
  checkpointBytes?: number
  /**
   * A generation past this many batch records is checkpointed too, once its batches outweigh its
   * snapshot (default 50,000): a rebuild receives each record as one broker delivery, so a
   * journal of small batches (one thread's steps) is bounded by their count long before 64 MiB.
   * (A read of the head, which is never trimmed, reads from its end: see `readHead`.)
   */
  checkpointRecords?: number
  /** Unconfirmed records past this many bytes are dropped, and a snapshot taken instead (default 64 MiB). */
  maxLagBytes?: number
  log?: (line: string) => void
  /**
   * Awaited on each connection before anything is published on it (the lease is taken there);
   * a rejection fences the replicator with that error.
   */
  onConnection?: (conn: ChannelModel) => Promise<void>
  /** Each batch's callbacks pass it once released (the lease's fencing: src/replication/fencing.ts). */
  gate?: (run: () => void) => void
  /**
   * Called once when the replicator fences itself: its stream moved past it (a higher epoch, or
   * a generation it did not write), found as it starts a new generation. The lease's fencing
   * stops the weave (src/replication/host.ts).
   */
  fenced?: (why: string) => void
}

export interface Lag {
  /** Writes (journal entries and other rows) not yet confirmed. */
  entries: number
  bytes: number
}

/** A record of the stream, published or to publish, until released. */
export interface Item {
  gen: number
  queue: string
  headers: RecordHeaders
  /** null: dropped while the lag was too large; the next snapshot covers it. */
  body: Buffer | null
  entries: number
  bytes: number
  confirmed: boolean
  runs: Array<() => void> | null
}

/** Takes the callbacks of `items` from `from` on, in order: none of them is left to run through the list. */
export function takeRuns(items: readonly Item[], from: number): Array<() => void> {
  const out: Array<() => void> = []
  for (let i = from; i < items.length; i++) {
    const runs = items[i]!.runs
    items[i]!.runs = null
    if (runs !== null) out.push(...runs)
  }
  return out
}

export const MiB = 1024 * 1024

/** What a Replicator checks its generation and lag against, the defaults filled in. */
export interface Limits {
  checkpointBytes: number
  checkpointRecords: number
  maxLagBytes: number
}

export function limitsOf(o: ReplicatorOptions): Limits {
  return { checkpointBytes: o.checkpointBytes ?? 64 * MiB, checkpointRecords: o.checkpointRecords ?? 50_000, maxLagBytes: o.maxLagBytes ?? 64 * MiB }
}

/**
 * Whether a generation of `bytes` (its snapshot's `snapshotBytes` among them) in `records` batch
 * records is due for a checkpoint: past either limit, and its batches outweigh its snapshot (a
 * live state past checkpointBytes is not snapshotted again at every batch).
 */
export function checkpointDue(l: Limits, bytes: number, records: number, snapshotBytes: number): boolean {
  return bytes >= 2 * snapshotBytes && (bytes >= l.checkpointBytes || records >= l.checkpointRecords)
}

/**
 * The latest generation, among records `items[from..]`, whose `generation` record and every part
 * of its snapshot before it are confirmed (-1: none). A record dropped and covered by a later
 * snapshot (its gen re-labelled) is no part of its generation.
 */
export function latestWhole(items: readonly Item[], from: number): number {
  let latest = -1
  let whole = true
  let gen = -1
  for (let i = from; i < items.length; i++) {
    const it = items[i]!
    if (it.headers.gen !== it.gen) continue
    if (it.gen !== gen) {
      gen = it.gen
      whole = true
    }
    if (it.headers.kind === 'batch') continue
    if (!it.confirmed) whole = false
    else if (it.headers.kind === 'generation' && whole && it.gen > latest) latest = it.gen
  }
  return latest
}

/**
 * The epoch of a replicated journal, where it is kept and how a takeover is recorded.
 *
 * - A journal file keeps the epoch it writes in meta 'epoch' (absent: 1, a journal never taken
 *   over). It is set on a journal rebuilt for a takeover, before a weave opens it; it is not a
 *   replicated write (a rebuild reads the epoch from the stream's records).
 * - A takeover appends one record to the stream, headers `kind: 'takeover'`, `weave`, `epoch`
 *   (the new one), `by` (the weave whose process took it over), no rseq (readers of the journal
 *   skip it), confirmed before any thread of the new epoch runs.
 */
import { existsSync } from 'node:fs'
import type { ChannelModel } from 'amqplib'
import { Journal, type Durability } from '../journal.js'

export const TAKEOVER_KIND = 'takeover'

/** The epoch journal `db` writes (1 for a new one). */
export function journalEpoch(db: string): number {
  if (!existsSync(db)) return 1
  const j = new Journal(db, { readonly: true })
  try {
    return Number(j.meta('epoch') ?? '1')
  } finally {
    j.close()
  }
}

/** Sets the epoch of journal `db` (no weave may run on it). */
export function setJournalEpoch(db: string, epoch: number): void {
  const j = new Journal(db)
  try {
    j.setMeta('epoch', String(epoch))
  } finally {
    j.close()
  }
}

/** The weave id of journal `db`, creating the journal if there is none (as Weave.open would). */
export function weaveIdOf(db: string, durability?: Durability): string {
  const j = existsSync(db) ? new Journal(db, { readonly: true }) : new Journal(db, durability !== undefined ? { durability } : {})
  try {
    return j.weaveId
  } finally {
    j.close()
  }
}

/** Appends the takeover record of weave `id` at `epoch` to `stream` and waits for its confirm. */
export async function appendTakeover(conn: ChannelModel, stream: string, id: string, epoch: number, by: string): Promise<void> {
  const ch = await conn.createConfirmChannel()
  ch.on('error', () => {})
  try {
    ch.sendToQueue(stream, Buffer.from(JSON.stringify({ takeover: id, epoch, by })), { headers: { kind: TAKEOVER_KIND, weave: id, epoch, by }, persistent: true })
    await ch.waitForConfirms()
  } finally {
    await ch.close().catch(() => {})
  }
}

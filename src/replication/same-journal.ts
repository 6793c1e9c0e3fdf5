/**
 * Whether a journal file may be replicated over the stream its weave id names: not when the
 * stream holds what the file lacks, which the file's first generation would replace (the old one
 * deleted once it is current). A new file, or an older copy, started under the id of a weave
 * whose disk was lost is refused; `raiment restore` rebuilds the file from the stream instead.
 */
import type { ChannelModel } from 'amqplib'
import type { Journal } from '../journal.js'
import { StreamAhead } from './errors.js'
import { genStream } from './records.js'
import { JournalStreamGone, lastRseq, type Head } from './streams.js'

/**
 * Refuses a stream of another journal file (the id in its head differs from the file's meta
 * 'journal_id'), or one at the file's epoch holding batches past the file's last. A batch is
 * published inside its transaction: a crash before its COMMIT leaves the stream one batch ahead
 * of the file, a batch never released (the new generation drops it), so one is let pass.
 * @throws StreamAhead
 */
export async function checkSameJournal(conn: ChannelModel, head: Head, r: { namespace: string; weaveId: string; epoch: number }, journal: Journal): Promise<void> {
  const id = journal.meta('journal_id')
  if (head.journal !== undefined && id !== undefined && head.journal !== id) {
    throw new StreamAhead(r.namespace, r.weaveId, `replicates another journal file (journal id ${head.journal}; this file's is ${id})`)
  }
  if (head.epoch !== r.epoch) return
  const rseq = Number(journal.meta('rseq') ?? '0')
  const last = Math.max(head.rseq, await lastRseqOrNone(conn, genStream(r.namespace, r.weaveId, head.gen)))
  if (last > rseq + 1) throw new StreamAhead(r.namespace, r.weaveId, `holds batches up to ${last}, this file only up to ${rseq} (an older copy of it)`)
}

/** `lastRseq` of a generation stream; 0 when it is gone (deleted by an operator: nothing to keep). */
async function lastRseqOrNone(conn: ChannelModel, queue: string): Promise<number> {
  try {
    return await lastRseq(conn, queue)
  } catch (e) {
    if (e instanceof JournalStreamGone) return 0
    throw e
  }
}

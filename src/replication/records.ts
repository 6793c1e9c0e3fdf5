/**
 * What a journal's streams hold, and their names.
 *
 * Streams of journal W in namespace NS (RabbitMQ stream queues, `x-queue-type: stream`):
 * - `NS.journal.W`, the head: one `generation` record per generation, published after that
 *   generation's snapshot (confirmed in either order: a rebuild falls back to the generation
 *   before one with no whole snapshot). The current generation is the one named by the last
 *   `generation` record of the highest epoch (a stale writer's record of a lower epoch is ignored).
 * - `NS.journal.W~G`, generation G (1, 2, ...): a snapshot of the journal's live state
 *   (`snapshot` records, parts 0..n, the last marked `end`), then one `batch` record per group
 *   commit, in commit order. A generation is deleted once a later one is current.
 *   ('~' appears in no weave id, so no weave's head is another weave's generation.)
 *
 * Every record carries the headers `weave`, `epoch` (given by the lease: 1 for a journal never
 * taken over), `rseq` (a batch's number; a snapshot's and a generation record's: the last batch
 * the snapshot holds), `kind` and `gen`; a `generation` record also `journal`, the id of the journal
 * file it replicates (a rebuilt file keeps it). Readers drop records of an epoch lower than one already
 * seen, and batches whose rseq they have (a record republished after a reconnect comes twice).
 * A `marker` record (kind 'marker', header `id`) is what a reader appends to know where the
 * stream ends (the broker sends no end-of-stream over AMQP 0-9-1); everyone else ignores it.
 *
 * A `batch` or `snapshot` record's body is its logical writes, encoded by src/replication/codec.ts
 * (a format byte first: streams written in an older format still rebuild).
 */

export type RecordKind = 'batch' | 'snapshot' | 'generation' | 'marker'

export interface RecordHeaders {
  weave: string
  epoch: number
  rseq: number
  kind: RecordKind
  gen: number
  /** snapshot: part number from 0 */
  part?: number
  /** snapshot: 1 on its last part */
  end?: number
  /** marker: the reader's id */
  id?: string
  /** generation: the journal's id (meta 'journal_id'; absent in streams of older Raiments) */
  journal?: string
}

export function headStream(ns: string, weaveId: string): string {
  return `${ns}.journal.${weaveId}`
}

export function genStream(ns: string, weaveId: string, gen: number): string {
  return `${ns}.journal.${weaveId}~${gen}`
}

/** Arguments every journal stream is declared with (a redeclare must use the same). */
export const STREAM_ARGS = { 'x-queue-type': 'stream' } as const

/** The headers of a delivered record, checked; null when they are not a journal record's. */
export function readHeaders(h: Record<string, unknown> | undefined): RecordHeaders | null {
  if (h === undefined) return null
  const kind = h['kind']
  const epoch = Number(h['epoch'])
  const rseq = Number(h['rseq'])
  const gen = Number(h['gen'])
  if (kind !== 'batch' && kind !== 'snapshot' && kind !== 'generation' && kind !== 'marker') return null
  if (kind !== 'marker' && !(Number.isInteger(epoch) && Number.isInteger(rseq) && Number.isInteger(gen))) return null
  const r: RecordHeaders = { weave: text(h['weave']), epoch, rseq, kind, gen }
  if (h['part'] !== undefined) r.part = Number(h['part'])
  if (h['end'] !== undefined) r.end = Number(h['end'])
  if (h['id'] !== undefined) r.id = text(h['id'])
  if (h['journal'] !== undefined) r.journal = text(h['journal'])
  return r
}

/** A header's value as text (amqplib gives strings, or Buffers for long ones). */
function text(v: unknown): string {
  return typeof v === 'string' ? v : Buffer.isBuffer(v) ? v.toString() : typeof v === 'number' ? String(v) : ''
}

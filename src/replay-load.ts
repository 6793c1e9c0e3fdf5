/**
 * The records of the threads a weave resumes when it opens, read for all of them at once: one
 * ordered scan of journal_main over the running threads (by the threads' rowid, then seq), where
 * a query a thread costs a statement's run and two cursors each (10,000 threads: ~10,000 runs).
 *
 * Invariant: the thread rows and their records are read in one read transaction, so a record is
 * that of the row's state (a CLI that ends a thread meanwhile is seen in neither or both).
 */
import type { Journal, ThreadRow } from './journal.js'
import type { Entry } from './replay-record.js'

/** A journal row as the scan reads it: [thread rowid, seq, key, ord, ok, outcome]. */
type Row = [number, number, string, number, 0 | 1, string]
/** A journal_tail row: [thread id, seq, key, ord, ok, outcome]. */
type TailRow = [string, number, string, number, 0 | 1, string]

const MAIN =
  'SELECT t.rowid, j.seq, j.key, j.ord, j.ok, j.outcome FROM threads t JOIN journal_main j ON j.thread = t.id ' +
  "WHERE t.status = 'running' ORDER BY t.rowid, j.seq"
// The tail is empty after an owner's open (it moves into journal_main then); scanned once, not per thread.
const TAIL = 'SELECT thread, seq, key, ord, ok, outcome FROM journal_tail ORDER BY thread, seq'

/**
 * The running and pending threads of `journal`, in rowid order, and the records of the running
 * ones by thread id (a thread with no entries has none there).
 */
export function resumeSet(journal: Journal): { rows: ThreadRow[]; records: Map<string, Entry[]> } {
  const db = journal.db
  return db.transaction(() => {
    const rows = journal.threads({ status: ['running', 'pending'] })
    const ids = new Map<number, string>()
    for (const r of db.prepare("SELECT rowid, id FROM threads WHERE status = 'running'").raw(true).iterate() as IterableIterator<[number, string]>) ids.set(r[0], r[1])
    const records = new Map<string, Entry[]>()
    let rowid = -1
    let entries: Entry[] = []
    for (const r of db.prepare(MAIN).raw(true).iterate() as IterableIterator<Row>) {
      if (r[0] !== rowid) {
        rowid = r[0]
        records.set(ids.get(rowid)!, (entries = []))
      }
      entries.push({ seq: r[1], key: r[2], ord: r[3], ok: r[4] === 1, text: r[5], call: null })
    }
    let running: Set<string> | null = null
    for (const r of db.prepare(TAIL).raw(true).iterate() as IterableIterator<TailRow>) {
      running ??= new Set(ids.values())
      if (!running.has(r[0])) continue
      let e = records.get(r[0])
      if (e === undefined) records.set(r[0], (e = []))
      e.push({ seq: r[1], key: r[2], ord: r[3], ok: r[4] === 1, text: r[5], call: null })
    }
    return { rows, records }
  })()
}

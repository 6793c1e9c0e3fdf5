/**
 * A snapshot of a journal's live state as logical writes, for the first records of a generation.
 *
 * What it holds: every row of every table of the journal (meta without the owner's record and
 * the replication keys; AUTOINCREMENT counters included), except the control requests (local to
 * the file: answered by its owner, never by a weave rebuilt elsewhere) and the journal entries of
 * threads that have ended (their end, result or error stays in `threads`): a rebuilt journal
 * resumes every live thread from its entries, answers joins of ended ones, and no more.
 *
 * Read in one synchronous step (no transaction of the journal's can commit in between), so it is
 * the state after exactly the last batch committed.
 */
import type Database from 'better-sqlite3'
import type { Write } from '../journal.js'

/** Tables whose rows a snapshot does not carry (see above); entries are carried by thread. */
const SKIP = new Set(['control', 'journal_main', 'journal_tail', 'sqlite_sequence'])
/** meta keys local to one file. */
export const LOCAL_META = new Set(['owner', 'rseq', 'repl_epoch', 'replicating', 'dumps-due', 'schedules-blocked'])

const ENTRY_SQL = 'INSERT INTO journal_main (thread, seq, key, ord, ok, outcome, started, duration) VALUES (?, ?, ?, ?, ?, ?, ?, ?)'

/**
 * The journal's live state as writes, in parts of about `partBytes` of parameters each (a rough
 * count: strings by length, others 8 bytes).
 */
export function snapshotWrites(db: Database.Database, partBytes = 512 * 1024): Write[][] {
  const parts: Write[][] = []
  let part: Write[] = []
  let size = 0
  const add = (w: Write): void => {
    part.push(w)
    for (const v of w[1]) size += typeof v === 'string' ? v.length : 8
    if (size >= partBytes) {
      parts.push(part)
      part = []
      size = 0
    }
  }
  const tables = db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name").pluck().all() as string[]
  for (const t of tables) {
    if (SKIP.has(t)) continue
    const stmt = db.prepare(`SELECT * FROM "${t}"`).raw(true)
    const cols = stmt.columns().map((c) => `"${c.name}"`)
    const sql = `INSERT OR REPLACE INTO "${t}" (${cols.join(', ')}) VALUES (${cols.map(() => '?').join(', ')})`
    for (const row of stmt.iterate() as IterableIterator<unknown[]>) {
      if (t === 'meta' && LOCAL_META.has(row[0] as string)) continue
      add([sql, row])
    }
  }
  const entries = db
    .prepare(
      "SELECT thread, seq, key, ord, ok, outcome, started, duration FROM journal WHERE thread IN (SELECT id FROM threads WHERE status IN ('pending', 'running')) ORDER BY thread, seq",
    )
    .raw(true)
  for (const row of entries.iterate() as IterableIterator<unknown[]>) add([ENTRY_SQL, row])
  // Last: the counters, as they are (rows inserted above with their own keys may have raised them).
  for (const row of db.prepare('SELECT name, seq FROM sqlite_sequence').raw(true).iterate() as IterableIterator<unknown[]>) {
    add(['DELETE FROM sqlite_sequence WHERE name = ?', [row[0]]])
    add(['INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)', row])
  }
  if (part.length > 0 || parts.length === 0) parts.push(part)
  return parts
}

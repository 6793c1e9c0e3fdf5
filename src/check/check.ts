/**
 * `raiment check`: does every unfinished thread of a journal still replay under the thread types
 * on disk now? Each record is replayed strictly (src/check/replay-check.ts) with no library
 * called; the journal is opened read-only (nothing is created or changed, and a weave may be
 * running on it).
 */
import { marksIn } from '../in-flight.js'
import type { ThreadRow } from '../journal.js'
import { Journal } from '../journal.js'
import { allLibraryFiles, replayParts, type ReplayParts } from '../libraries.js'
import { supervisor } from '../supervisor.js'
import { checkUses, loadThreadTypes } from '../thread-types.js'
import type { AnyThreadType } from '../thread.js'
import { UnknownThreadType, type RaimentError } from '../errors.js'
import { RecordReader } from '../replay-load.js'
import { checkThread, type Verdict } from './replay-check.js'

export type { Verdict } from './replay-check.js'

export interface CheckOptions {
  /** The journal file. */
  db: string
  /** The directory of thread types (default `threads`). */
  threads?: string
  /** The project's I/O library directory (default `io-libs`; false for none). */
  ioLibs?: string | false
  /** Also check the N threads that ended last (done, failed, killed). */
  ended?: number
  /** Told of each thread checked (progress). */
  onVerdict?: (v: Verdict) => void
}

/** Per thread type: how many threads are compatible, diverge, or cannot load. */
export interface TypeSummary {
  type: string
  compatible: number
  diverges: number
  doesNotLoad: number
}

/** Per change id (a marker such as `patch.patched`): the unfinished threads that still take its old path. */
export interface ChangeSummary {
  change: string
  /** Unfinished threads whose record lacks the marker where they reach it (they take the old path), each once. */
  oldPath: string[]
  /**
   * Threads whose replay reached the marker on the new path (recorded, or past their record). Each
   * thread is counted once, however often it meets the marker; one that met it on both paths (a
   * loop that reached past its record) is in `oldPath` too.
   */
  newPath: number
}

export interface CheckReport {
  db: string
  threads: Verdict[]
  types: TypeSummary[]
  changes: ChangeSummary[]
  /** Thread-type modules that do not load now (whether or not a thread of theirs is in the journal). */
  unavailable: Array<{ type: string; code: string; message: string }>
  /** True when no thread diverges or fails to load, and every thread-type module loads. */
  ok: boolean
}

const UNFINISHED = ['running', 'pending'] as const

/**
 * Checks the journal `o.db` against the thread types of `o.threads`.
 * @throws NotARaimentDb / DbTooNew / InvalidArgument for a journal it cannot read (left untouched)
 */
export async function checkJournal(o: CheckOptions): Promise<CheckReport> {
  const journal = new Journal(o.db, { readonly: true })
  // One read transaction: every record is read as of one moment, also while a weave runs on the
  // journal (a thread continuing as new or a tail move meanwhile would otherwise mix two states).
  journal.db.exec('BEGIN')
  try {
    const rows = journal.threads({ status: [...UNFINISHED] })
    if (o.ended !== undefined && o.ended > 0) {
      rows.push(...(journal.db.prepare("SELECT * FROM threads WHERE status IN ('done', 'failed', 'killed') ORDER BY ended DESC, rowid DESC LIMIT ?").all(o.ended) as ThreadRow[]))
    }
    const loaded = await loadThreadTypes(o.threads ?? 'threads')
    if (!loaded.types.has('raiment/supervisor')) loaded.types.set('raiment/supervisor', supervisor as AnyThreadType)
    checkUses(loaded.types, [...allLibraryFiles(o.ioLibs ?? 'io-libs').keys()], loaded.unavailable, loaded.files)
    const parts = await replayParts(o.ioLibs ?? 'io-libs')
    // A thread's entries at once (in blocks), and journal_tail once for all threads.
    const records = new RecordReader(journal.db, true)
    const verdicts: Verdict[] = []
    const changes = new Map<string, ChangeSummary>()
    for (const row of rows) {
      const v = await checkRow(records, row, loaded.types, loaded.unavailable, loaded.files, parts, changes, marksIn(journal, row.id))
      verdicts.push(v)
      o.onVerdict?.(v)
    }
    const broken = [...loaded.unavailable].map(([type, e]) => ({ type, code: e.code, message: e.message }))
    return report(o.db, verdicts, changes, broken)
  } finally {
    if (journal.db.inTransaction) journal.db.exec('COMMIT')
    journal.close()
  }
}

async function checkRow(
  records: RecordReader,
  row: ThreadRow,
  types: ReadonlyMap<string, AnyThreadType>,
  unavailable: ReadonlyMap<string, RaimentError>,
  files: ReadonlyMap<string, string>,
  parts: ReadonlyMap<string, ReplayParts>,
  changes: Map<string, ChangeSummary>,
  inFlight: ReadonlySet<string>,
): Promise<Verdict> {
  const base = { id: row.id, type: row.type, status: row.status }
  const type = types.get(row.type)
  if (type === undefined) {
    const why = unavailable.get(row.type) ?? new UnknownThreadType(row.type, [...types.keys()])
    return { ...base, verdict: 'does-not-load', code: why.code, message: why.message }
  }
  const { verdict, markers } = await checkThread(
    type,
    {
      ...base,
      params: row.params,
      outcome: row.outcome,
      entries: () => records.entries(row.id),
      inFlight,
    },
    parts,
    files.get(row.type),
  )
  // Counted per thread, not per marker call: a patched() in a loop meets its change many times.
  const paths = new Map<string, { old: boolean; new: boolean }>()
  for (const m of markers) {
    const p = paths.get(m.change) ?? { old: false, new: false }
    if (m.old) p.old = true
    else p.new = true
    paths.set(m.change, p)
  }
  for (const [change, p] of paths) {
    let c = changes.get(change)
    if (c === undefined) changes.set(change, (c = { change, oldPath: [], newPath: 0 }))
    if (p.new) c.newPath++
    if (p.old && (row.status === 'running' || row.status === 'pending')) c.oldPath.push(row.id)
  }
  return verdict
}

function report(db: string, verdicts: Verdict[], changes: Map<string, ChangeSummary>, unavailable: CheckReport['unavailable']): CheckReport {
  const types = new Map<string, TypeSummary>()
  for (const v of verdicts) {
    let s = types.get(v.type)
    if (s === undefined) types.set(v.type, (s = { type: v.type, compatible: 0, diverges: 0, doesNotLoad: 0 }))
    if (v.verdict === 'compatible') s.compatible++
    else if (v.verdict === 'diverges') s.diverges++
    else s.doesNotLoad++
  }
  return {
    db,
    threads: verdicts,
    types: [...types.values()].sort((a, b) => a.type.localeCompare(b.type)),
    changes: [...changes.values()].sort((a, b) => a.change.localeCompare(b.change)),
    unavailable,
    ok: unavailable.length === 0 && verdicts.every((v) => v.verdict === 'compatible'),
  }
}

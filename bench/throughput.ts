// Journaled calls per second through a weave, and the same rows through a bare better-sqlite3
// loop: same schema and pragmas (the journal file is created by `Journal` itself), the same rows,
// committed in batches of the same sizes as the weave's group commit made them.
import type Database from 'better-sqlite3'
import { Weave, type Durability } from '../src/index.js'
import { Journal } from '../src/journal.js'
import { concurrent, expectedSum, noop, nowMs, sequential, tempDir } from './common.js'

export type Row = [string, number, string, number, 0 | 1, string, number, number]

/** What one weave run did: its rate, and the rows it committed, batch by batch. */
export interface WeaveRun {
  callsPerSec: number
  batches: Row[][]
}

export interface Workload {
  /** `sequential` or `concurrent`. */
  type: 'sequential' | 'concurrent'
  threads: number
  calls: number
}

export const SEQUENTIAL: Workload = { type: 'sequential', threads: 1, calls: 10_000 }
export const CONCURRENT: Workload = { type: 'concurrent', threads: 100, calls: 1_000 }

/** Runs `w` on a fresh weave; times from the first spawn to the last thread's end. */
export async function weaveRun(w: Workload, durability: Durability): Promise<WeaveRun> {
  const tmp = tempDir()
  const weave = await Weave.open({
    db: tmp.file('weave.db'),
    durability,
    threads: { sequential, concurrent },
    ioLibs: false,
    dumps: false,
    libraries: { noop },
  })
  // Count the entries of each commit (entries queued at epoch e commit as epoch e + 1), so the
  // bare loop can commit the same rows in batches of the same sizes. Counting only: keeping
  // the rows here would add allocation to the run being measured.
  const perCommit: number[] = []
  const journal = weave.journal
  const addEntry = journal.addEntry.bind(journal)
  journal.addEntry = (thread, seq, key, ord, ok, outcome, started, duration, after, newThread) => {
    const e = journal.epoch
    perCommit[e] = (perCommit[e] ?? 0) + 1
    addEntry(thread, seq, key, ord, ok, outcome, started, duration, after, newThread)
  }
  try {
    const t0 = nowMs()
    const ids: string[] = []
    for (let i = 0; i < w.threads; i++) ids.push(weave.spawn(w.type, { n: w.calls }))
    const ends = await Promise.all(ids.map((id) => weave.join(id)))
    const ms = nowMs() - t0
    for (const end of ends) {
      if (end.status !== 'done' || end.result !== expectedSum(w.calls)) {
        throw new Error(`bench thread ${end.id} ended ${end.status}: ${end.status === 'failed' ? String(end.error) : JSON.stringify(end)}`)
      }
    }
    // The rows as recorded, by thread and seq (within a batch the weave inserted them in
    // completion order; sorted inserts are, if anything, kinder to the bare loop).
    const rows = journal.db
      .prepare('SELECT thread, seq, key, ord, ok, outcome, started, duration FROM journal ORDER BY thread, seq')
      .raw(true)
      .all() as Row[]
    const batches: Row[][] = []
    let at = 0
    for (const n of perCommit) {
      if (n === undefined) continue
      batches.push(rows.slice(at, at + n))
      at += n
    }
    if (at !== rows.length) throw new Error(`the bench counted ${at} entries but the journal holds ${rows.length}`)
    return { callsPerSec: (w.threads * w.calls) / (ms / 1000), batches }
  } finally {
    await weave.close()
    tmp.done()
  }
}

/**
 * Inserts and commits `batches` with better-sqlite3 alone; rows per second. `warmUp` batches are
 * committed first, untimed (so that the WAL file has grown as a journal in use has: appending to
 * it costs more per fsync than writing over it).
 */
export function bareRun(batches: Row[][], durability: Durability, warmUp: Row[][] = []): number {
  const tmp = tempDir()
  const file = tmp.file('bare.db')
  const journal = new Journal(file, { durability }) // the same schema and pragmas
  const db: Database.Database = journal.db
  try {
    // The table the weave writes these batches to: one thread, or many entries per thread, per
    // commit go straight to journal_main (see GroupCommit's #flush, src/group-commit.ts).
    const insert = db.prepare(
      'INSERT INTO journal_main (thread, seq, key, ord, ok, outcome, started, duration) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
    )
    // better-sqlite3's own transaction wrapper: prepared BEGIN and COMMIT, the fastest way.
    const commit = db.transaction((batch: Row[]) => {
      for (const r of batch) insert.run(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7])
    })
    for (const batch of warmUp) commit(batch)
    let rows = 0
    const t0 = nowMs()
    for (const batch of batches) {
      commit(batch)
      rows += batch.length
    }
    return rows / ((nowMs() - t0) / 1000)
  } finally {
    journal.close()
    tmp.done()
  }
}

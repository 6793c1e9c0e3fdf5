// Replay speed: a thread whose journal holds 1,000,000 entries is resumed by `Weave.open` and
// re-run from its record to its end. The record is written straight into the journal, with the
// keys and outcomes encoded exactly as the weft encodes them (a mismatch would end the thread
// with a ReplayDivergence, which fails the bench).
import { Weave } from '../src/index.js'
import { encodeArgs, encodeValue } from '../src/encoding.js'
import { Journal } from '../src/journal.js'
import { copyJournal, expectedSum, noop, nowMs, sequential, tempDir } from './common.js'

export interface Recorded {
  file: string
  threadId: string
  entries: number
  done(): void
}

/**
 * Writes into the journal file `file` `threads` running threads of type `type` and params
 * `params`, each having made `entries` calls `noop.step(i)` answered `i`: keys and outcomes
 * encoded exactly as the weft encodes them (a mismatch would end a resumed thread with a
 * ReplayDivergence, which fails the bench). Returns the thread ids.
 */
export function writeStepRecords(file: string, o: { type: string; threads: number; entries: number; params: unknown; id?: (t: number) => string }): string[] {
  const journal = new Journal(file, { durability: 'memory' })
  const insertThread = journal.db.prepare("INSERT INTO threads (id, type, params, parent, status, created) VALUES (?, ?, ?, NULL, 'running', ?)")
  // Where a weave's commits leave a thread's entries (the view `journal` would run a trigger a row).
  const insert = journal.db.prepare('INSERT INTO journal_main (thread, seq, key, ord, ok, outcome, started, duration) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
  const keys = Array.from({ length: o.entries }, (_, i) => 'noop.step:' + encodeArgs([i]))
  const outcomes = Array.from({ length: o.entries }, (_, i) => encodeValue(i))
  const params = encodeValue(o.params, 'params')
  const now = Date.now()
  const ids: string[] = []
  journal.db.transaction(() => {
    for (let t = 0; t < o.threads; t++) {
      const id = o.id?.(t) ?? journal.nextThreadId()
      ids.push(id)
      insertThread.run(id, o.type, params, now)
      for (let i = 0; i < o.entries; i++) insert.run(id, i, keys[i], 0, 1, outcomes[i], now, 0.001)
    }
  })()
  journal.close()
  return ids
}

/** A journal holding one running `sequential` thread that has made `n` calls. */
export function buildRecord(n: number): Recorded {
  const tmp = tempDir()
  const file = tmp.file('record.db')
  const [threadId] = writeStepRecords(file, { type: 'sequential', threads: 1, entries: n, params: { n } })
  return { file, threadId: threadId!, entries: n, done: tmp.done }
}

export interface ReplayRun {
  entriesPerSec: number
  /** Time spent in Weave.open (loading the record and starting the thread), ms. */
  openMs: number
  /** From Weave.open's return to the thread's end, ms. */
  runMs: number
}

/** Resumes a copy of `record` and times it until the thread ends. */
export async function replayRun(record: Recorded): Promise<ReplayRun> {
  const tmp = tempDir()
  const file = tmp.file('replay.db')
  copyJournal(record.file, file)
  try {
    const t0 = nowMs()
    const weave = await Weave.open({ db: file, threads: { sequential }, ioLibs: false, dumps: false, libraries: { noop } })
    const t1 = nowMs()
    try {
      const end = await weave.join(record.threadId)
      const t2 = nowMs()
      if (weave.resumed !== 1 || end.status !== 'done' || end.result !== expectedSum(record.entries)) {
        throw new Error(`the replayed thread ended ${end.status}: ${end.status === 'failed' ? String(end.error) : JSON.stringify(end)}`)
      }
      return { entriesPerSec: record.entries / ((t2 - t0) / 1000), openMs: t1 - t0, runMs: t2 - t1 }
    } finally {
      await weave.close()
    }
  } finally {
    tmp.done()
  }
}

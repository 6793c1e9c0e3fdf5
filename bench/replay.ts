// Replay speed: a thread whose journal holds 1,000,000 entries is resumed by `Weave.open` and
// re-run from its record to its end. The record is written straight into the journal, with the
// keys and outcomes encoded exactly as the weft encodes them (a mismatch would end the thread
// with a ReplayDivergence, which fails the bench).
import { copyFileSync } from 'node:fs'
import { Weave } from '../src/index.js'
import { encodeArgs, encodeValue } from '../src/encoding.js'
import { Journal } from '../src/journal.js'
import { expectedSum, noop, nowMs, sequential, tempDir } from './common.js'

export interface Recorded {
  file: string
  threadId: string
  entries: number
  done(): void
}

/** A journal holding one running `sequential` thread that has made `n` calls. */
export function buildRecord(n: number): Recorded {
  const tmp = tempDir()
  const file = tmp.file('record.db')
  const journal = new Journal(file, { durability: 'memory' })
  const threadId = journal.nextThreadId()
  journal.insertThread(threadId, 'sequential', encodeValue({ n }, 'params'), null, 'running')
  journal.flushNow()
  // Where a weave's commits leave a thread's entries (the view `journal` would run a trigger a row).
  const insert = journal.db.prepare(
    'INSERT INTO journal_main (thread, seq, key, ord, ok, outcome, started, duration) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
  )
  const started = Date.now()
  journal.db.transaction(() => {
    for (let i = 0; i < n; i++) insert.run(threadId, i, 'noop.step:' + encodeArgs([i]), 0, 1, encodeValue(i), started, 0.001)
  })()
  journal.close()
  return { file, threadId, entries: n, done: tmp.done }
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
  copyFileSync(record.file, file)
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

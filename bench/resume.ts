// Resume speed (issue 17): a journal of 10,000 running threads x 100 entries each, written straight
// into the journal with the weft's encoding (as bench/replay.ts writes its record), is opened by
// `Weave.open`; the figure is the time from the open to every thread running live: each has
// replayed its record and made its next call, a live `clock.sleep`, which the clock now holds.
// A thread whose replay diverged would end failed instead, which fails the bench.
import { Weave, thread } from '../src/index.js'
import { pendingSleeps } from '../io-libs/clock.js'
import { copyJournal, noop, nowMs, tempDir } from './common.js'
import { writeStepRecords } from './replay.js'

export const RESUME = { threads: 10_000, entries: 100 }

/** A thread that makes `n` calls to the no-op library, then sleeps for an hour. */
export const resumable = thread({
  uses: ['noop', 'clock'],
  async does(params: { n: number }) {
    let sum = 0
    for (let i = 0; i < params.n; i++) sum += await this.noop.step(i)
    await this.clock.sleep(3_600_000)
    return sum
  },
})

export interface Journaled {
  file: string
  threads: number
  entries: number
  done(): void
}

/** A journal of `threads` running `resumable` threads, each having made its `entries` calls. */
export function buildJournal(threads: number, entries: number): Journaled {
  const tmp = tempDir()
  const file = tmp.file('resume.db')
  writeStepRecords(file, { type: 'resumable', threads, entries, params: { n: entries } })
  return { file, threads, entries, done: tmp.done }
}

export interface ResumeRun {
  /** From Weave.open to every thread asleep in its live clock.sleep, ms. */
  liveMs: number
  /** Of which Weave.open (loading the records, starting the threads), ms. */
  openMs: number
  /** From Weave.open to every thread having replayed its record, ms. */
  replayedMs: number
}

const yieldTurn = (): Promise<void> => new Promise((r) => setImmediate(r))

/** Resumes a copy of `journaled` and times it until every thread runs live. */
export async function resumeRun(journaled: Journaled): Promise<ResumeRun> {
  const tmp = tempDir()
  const file = tmp.file('resume.db')
  copyJournal(journaled.file, file)
  const asleep = pendingSleeps()
  try {
    const t0 = nowMs()
    const weave = await Weave.open({ db: file, threads: { resumable }, ioLibs: false, dumps: false, libraries: { noop } })
    const t1 = nowMs()
    try {
      const failed: string[] = []
      weave.on('thread-end', (end) => failed.push(end.status === 'failed' ? String(end.error) : `${end.id} ended ${end.status}`))
      let replayedMs = 0
      while (pendingSleeps() - asleep < journaled.threads) {
        if (failed.length > 0) throw new Error(`a resumed thread ended: ${failed[0]}`)
        if (replayedMs === 0 && weave.resumeProgress().done === journaled.threads) replayedMs = nowMs() - t0
        await yieldTurn()
      }
      const t2 = nowMs()
      if (replayedMs === 0) replayedMs = t2 - t0
      if (weave.resumed !== journaled.threads) throw new Error(`expected ${journaled.threads} threads resumed, got ${weave.resumed}`)
      return { liveMs: t2 - t0, openMs: t1 - t0, replayedMs }
    } finally {
      await weave.close()
    }
  } finally {
    tmp.done()
  }
}

// What every part of `npm run bench` shares: the no-op library and the thread types that call
// it, fresh journal files in temp dirs, and the summary line each figure is printed as.
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fsyncPath } from '../src/fsync.js'
import { thread, type LibraryApi, type Weave } from '../src/index.js'

/** The no-op I/O library every workload calls: `step(i)` returns `i` at once. */
export const noop = {
  async step(i: number): Promise<number> {
    return i
  },
}

declare module '../src/index.js' {
  interface Libraries {
    noop: LibraryApi<typeof noop>
  }
}

/** One thread making `n` weft calls one after another. */
export const sequential = thread({
  uses: ['noop'],
  async does(params: { n: number }) {
    let sum = 0
    for (let i = 0; i < params.n; i++) sum += await this.noop.step(i)
    return sum
  },
})

/** A workload of `threads` sequential threads of `steps` calls each, all spawned at once. */
export interface StepsWorkload {
  threads: number
  steps: number
}

/** W2 of the comparison (bench/compare): 100 threads x 100 steps, all at once. */
export const W2: StepsWorkload = { threads: 100, steps: 100 }

/**
 * Runs `w` on `weave` (which knows `sequential` and `noop`) and returns the milliseconds from the
 * first spawn to the last end; a thread that does not end done fails the bench.
 */
export async function runSteps(weave: Weave, w: StepsWorkload): Promise<number> {
  const t0 = nowMs()
  const ids = Array.from({ length: w.threads }, () => weave.spawn('sequential', { n: w.steps }))
  for (const id of ids) {
    const end = await weave.join(id)
    if (end.status !== 'done') throw new Error(`bench thread ${id} ended ${end.status}`)
  }
  return nowMs() - t0
}

/** One thread making `n` weft calls at once (`Promise.all`). */
export const concurrent = thread({
  uses: ['noop'],
  async does(params: { n: number }) {
    const calls: Array<Promise<number>> = []
    for (let i = 0; i < params.n; i++) calls.push(this.noop.step(i))
    let sum = 0
    for (const v of await Promise.all(calls)) sum += v
    return sum
  },
})

/** One thread blocked in a durable sleep of an hour. */
export const idle = thread({
  uses: ['clock'],
  async does() {
    await this.clock.sleep(3_600_000)
  },
})

/** One thread that reads the clock once and ends (warms a weave up). */
export const brief = thread({
  uses: ['clock'],
  async does() {
    return this.clock.now()
  },
})

/** Sum of 0..n-1: what `sequential` and `concurrent` return. */
export const expectedSum = (n: number): number => (n * (n - 1)) / 2

/** A fresh temp dir; `done()` removes it. */
export function tempDir(): { dir: string; file: (name: string) => string; done: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'raiment-bench-'))
  return {
    dir,
    file: (name) => join(dir, name),
    done: () => rmSync(dir, { recursive: true, force: true }),
  }
}

/**
 * Copies journal `from` to `to` and writes the copy's pages to disk before a timed open: else the
 * journal's first fsync (turning WAL on) flushes the bench's own copy inside the timed open, 50 to
 * 60 ms for a million entries, which a weave reopening a journal it crashed on, or closed under
 * `sync` or `batched`, does not pay.
 */
export function copyJournal(from: string, to: string): void {
  copyFileSync(from, to)
  fsyncPath(to)
}

/** Milliseconds, with sub-millisecond resolution. */
export const nowMs = (): number => performance.now()

/** A figure measured several times. */
export interface Summary {
  median: number
  min: number
  max: number
  runs: number[]
}

export function summarize(values: number[]): Summary {
  if (values.length === 0) throw new RangeError('Expected at least one measurement, got none')
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  const median = sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
  return { median, min: sorted[0]!, max: sorted[sorted.length - 1]!, runs: values }
}

/** A number as people read it: 12,345 / 123 / 12.3 / 1.23. */
export function fmt(x: number): string {
  if (!Number.isFinite(x)) return String(x)
  if (Math.abs(x) >= 100) return Math.round(x).toLocaleString('en-US')
  if (Math.abs(x) >= 10) return x.toFixed(1)
  return x.toFixed(2)
}

/** `<figure>: median <v> <unit> (min-max a-b; runs r1, r2, r3)`, as the anchors print it. */
export function line(figure: string, s: Summary, unit: string): string {
  const spread = s.runs.length > 1 ? ` (min-max ${fmt(s.min)}-${fmt(s.max)}; runs ${s.runs.map(fmt).join(', ')})` : ''
  return `${figure}: median ${fmt(s.median)} ${unit}${spread}`
}

/** A target: `at least` or `at most` a value; printed as `[target >= 50,000 calls/s: met]`. */
export interface Target {
  atLeast?: number
  atMost?: number
  text: string
}

/** Every verdict given so far, for the summary at the end of the run. */
export const verdicts: Array<{ figure: string; target: string; met: boolean }> = []

export function verdict(value: number, t: Target, figure = ''): string {
  const met = (t.atLeast === undefined || value >= t.atLeast) && (t.atMost === undefined || value <= t.atMost)
  verdicts.push({ figure, target: t.text, met })
  return `[target ${t.text}: ${met ? 'MET' : 'MISSED'}]`
}

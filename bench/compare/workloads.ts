// The three workloads, identical for every engine. Each returns one figure per run, in the
// workload's unit (higher is better), and checks every result so a broken engine can't look fast.
import type { Engine } from './engine.js'
import { nowMs } from './stats.js'

/** One workload: what it does and how its figure is read. */
export interface Workload {
  id: 'W1' | 'W2' | 'W3'
  /** Short enough for a table row and a chart label. */
  title: string
  unit: string
  /** The ratio Raiment/anchor this workload should reach (issue 5), against each anchor. */
  target: number
  /** Runs the workload once and returns its figure in `unit`. */
  measure(engine: Engine): Promise<number>
}

const sumBelow = (n: number): number => (n * (n - 1)) / 2

function expect(results: number[], want: number, what: string): void {
  const bad = results.findIndex((r) => r !== want)
  if (bad >= 0) throw new Error(`${what}: thread ${bad} returned ${String(results[bad])}, expected ${want}`)
}

/** Waits for every `finish`, at most `limit` at a time (Restate's anchor attaches 100 at a time). */
async function finishAll(finishers: (() => Promise<number>)[], limit: number): Promise<number[]> {
  const results = new Array<number>(finishers.length)
  let next = 0
  const lane = async (): Promise<void> => {
    while (next < finishers.length) {
      const i = next++
      results[i] = await finishers[i]!()
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, finishers.length) }, lane))
  return results
}

export const W1_STEPS = 1000
export const W2_THREADS = 100
export const W2_STEPS = 100
export const W3_THREADS = 1000
/**
 * W3 against the floor (issue 17): each start of W3 is one durable commit, as each step of the
 * floor is, so W3's threads/s should reach this share of the floor's steps/s.
 */
export const W3_OF_FLOOR = 0.9

export const WORKLOADS: readonly Workload[] = [
  {
    id: 'W1',
    title: `1 thread × ${W1_STEPS.toLocaleString('en-US')} sequential steps`,
    unit: 'steps/s',
    target: 10,
    async measure(engine) {
      const t0 = nowMs()
      const result = await engine.run(W1_STEPS)
      const ms = nowMs() - t0
      expect([result], sumBelow(W1_STEPS), 'W1')
      return W1_STEPS / (ms / 1000)
    },
  },
  {
    id: 'W2',
    title: `${W2_THREADS} concurrent threads × ${W2_STEPS} steps`,
    unit: 'steps/s',
    target: 15,
    async measure(engine) {
      const t0 = nowMs()
      const results = await Promise.all(Array.from({ length: W2_THREADS }, () => engine.run(W2_STEPS)))
      const ms = nowMs() - t0
      expect(results, sumBelow(W2_STEPS), 'W2')
      return (W2_THREADS * W2_STEPS) / (ms / 1000)
    },
  },
  {
    id: 'W3',
    title: `${W3_THREADS.toLocaleString('en-US')} one-step threads, each start durable`,
    unit: 'threads/s',
    target: 10,
    async measure(engine) {
      const t0 = nowMs()
      const finishers: (() => Promise<number>)[] = []
      for (let i = 0; i < W3_THREADS; i++) finishers.push(await engine.start(1))
      const results = await finishAll(finishers, 100)
      const ms = nowMs() - t0
      expect(results, 0, 'W3')
      return W3_THREADS / (ms / 1000)
    },
  },
]

/** W1's figure as mean milliseconds per step. */
export const msPerStep = (stepsPerSecond: number): number => 1000 / stepsPerSecond

/**
 * A property of the test clock (src/time/test-clock.ts): threads that sleep and wait on receive
 * timeouts for random times, on a weave whose test clock the test advances in random steps (with
 * passivation at once or never), wake each at its own due time, in the order of those times
 * overall; each ends with the times it saw, and its dump replays to the same result.
 * Reproduce a failure with FC_SEED=<seed>.
 */
import fc from 'fast-check'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { makeDump, thread, Weave } from 'raiment'
import { replay, testClock } from 'raiment/testing'
import { tempDir } from './support/tmp.js'

declare module 'raiment' {
  interface Libraries {
    seen: { woke(tag: string): Promise<void> }
  }
}

const seed = process.env['FC_SEED'] !== undefined ? Number(process.env['FC_SEED']) : Date.now() % 2 ** 31
const RUNS = Number(process.env['TIME_SKIP_RUNS'] ?? (process.env['CI'] ? 30 : 100))
console.log(`time-skip: fast-check seed ${seed}, ${RUNS} runs (FC_SEED=${seed} to reproduce)`)

interface Nap {
  how: 'sleep' | 'receive'
  ms: number
}

const HOUR = 3_600_000
const START = Date.UTC(2030, 0, 1)

const napper = thread({
  uses: ['clock', 'mailbox', 'seen'],
  async does(p: { tag: string; naps: Nap[] }) {
    const times: number[] = []
    for (const n of p.naps) {
      if (n.how === 'sleep') await this.clock.sleep(n.ms)
      else await this.mailbox.receive({ timeout: n.ms })
      times.push(await this.clock.now())
      await this.seen.woke(p.tag)
    }
    return times
  },
})

// Times from a few values, so that wakes often fall at the same time.
const msArb = fc.oneof(fc.constantFrom(0, 1, HOUR, 2 * HOUR, 24 * HOUR), fc.integer({ min: 0, max: 3 * 24 * HOUR }))
const napArb: fc.Arbitrary<Nap> = fc.record({ how: fc.constantFrom<Nap['how']>('sleep', 'receive'), ms: msArb })
const scenarioArb = fc.record({
  threads: fc.array(fc.array(napArb, { maxLength: 4 }), { minLength: 1, maxLength: 4 }),
  steps: fc.array(msArb, { maxLength: 4 }),
  passivateAfter: fc.constantFrom<0 | false>(0, false),
})

describe('test clock', () => {
  it(`wakes every wait at its due time, in the order of the times, and each dump replays (${RUNS} runs, seed ${seed})`, async () => {
    await fc.assert(
      fc.asyncProperty(scenarioArb, async (s) => {
        const clock = testClock(START)
        const woke: Array<{ tag: string; at: number }> = []
        const seen = {
          async woke(tag: string): Promise<void> {
            woke.push({ tag, at: clock.now() })
          },
        }
        const weave = await Weave.open({ db: join(tempDir('raiment-time-'), 'w.db'), clock, durability: 'memory', threads: { napper }, libraries: { seen }, ioLibs: false, dumps: false, passivateAfter: s.passivateAfter })
        try {
          const ids = s.threads.map((naps, i) => weave.spawn('napper', { tag: `t${i}`, naps }))
          for (const step of s.steps) await clock.advance(step)
          const longest = Math.max(...s.threads.map((naps) => naps.reduce((a, n) => a + n.ms, 0)))
          await clock.advance(Math.max(0, START + longest - clock.now()))
          const expected = s.threads.map((naps) => {
            let t = START
            return naps.map((n) => (t += n.ms))
          })
          for (const [i, id] of ids.entries()) {
            const end = await weave.join(id)
            expect(end).toMatchObject({ status: 'done', result: expected[i] })
            const run = await replay(napper, makeDump(weave.journal, id), { libraries: { seen } })
            expect(run.result).toEqual(expected[i])
          }
          // The wakes in the order they came: each at its thread's due time, the times never going back.
          expect(woke.map((w) => w.at)).toEqual(expected.flat().sort((a, b) => a - b))
          for (const [i, times] of expected.entries()) expect(woke.filter((w) => w.tag === `t${i}`).map((w) => w.at)).toEqual(times)
        } finally {
          await weave.close()
        }
      }),
      { numRuns: RUNS, seed },
    )
  })
})

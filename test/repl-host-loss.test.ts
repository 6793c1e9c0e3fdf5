/**
 * Host loss: three replicated weave processes run a storm of messages (by id and by name) and
 * sagas whose effects go to a local HTTP service that does each Idempotency-Key once. At instants
 * chosen by fast-check, a weave process is SIGKILLed and its journal directory deleted, twice per
 * run (the second victim may be the process that took the first over): the survivors take the
 * lost weaves over. Every thread ends with the result of an uninterrupted run: every message
 * exactly once and in order per pair, each saga's answers in order, each effect once per call id
 * (no call of a lost weave ran again under a new call id).
 *
 * Synchronisation is on the children's output lines. Reproduce a failure with FC_SEED=<seed>.
 */
import { rmSync } from 'node:fs'
import { fc } from '@fast-check/vitest'
import { beforeAll, describe, expect, it } from 'vitest'
import { AMQP_URL, brokerUp, CI, requireBroker } from './support/broker.js'
import { deadline, freshRun, Ends, lineFrom, startReplWeave, tearDown, type WeaveProc } from './support/repl-cluster.js'
import { tempDir } from './support/tmp.js'

const seed = process.env['FC_SEED'] !== undefined ? Number(process.env['FC_SEED']) : Date.now() % 2 ** 31
const RUNS = Number(process.env['HOST_LOSS_RUNS'] ?? 10)
const COUNT = 40
const STEPS = 6
const IDS = ['a', 'b', 'c']

interface Loss {
  /** The first victim, and the send of its storm at which it dies. */
  first: number
  firstAt: number
  /** The second victim among the two left, and how many output lines after the first takeover it dies. */
  second: number
  secondAfter: number
}

const losses = fc.record({
  first: fc.integer({ min: 0, max: 2 }),
  firstAt: fc.integer({ min: 0, max: Math.floor((COUNT - 1) / 10) }).map((i) => i * 10),
  second: fc.integer({ min: 0, max: 1 }),
  secondAfter: fc.integer({ min: 0, max: 40 }),
})

describe.skipIf(!brokerUp && !CI)('host loss: replicated weaves taken over', () => {
  beforeAll(async () => {
    requireBroker()
    console.log(`repl-host-loss: fast-check seed ${seed} (FC_SEED=${seed} to reproduce)`)
  })

  it(`every thread of a lost weave ends as if uninterrupted (${2 * RUNS} losses)`, async () => {
    let lost = 0
    await fc.assert(
      fc.asyncProperty(losses, async (loss) => {
        lost += await oneRun(loss)
      }),
      { seed, numRuns: RUNS, endOnFailure: true },
    )
    expect(lost).toBe(2 * RUNS)
  }, 180_000)
})

async function oneRun(loss: Loss): Promise<number> {
  const { ns, effects } = await freshRun(IDS)
  const procs: WeaveProc[] = []
  const ends = new Ends(3 * IDS.length)
  let tookFirst: () => void = () => {}
  const firstTaken = new Promise<void>((r) => (tookFirst = r))
  const victim1 = IDS[loss.first]!
  const victim2 = IDS.filter((x) => x !== victim1)[loss.second]!
  let killed = 0
  const ready = new Set<string>()
  /** The furthest send of the first victim's storms. */
  let reached = -1
  let afterTake = -1
  const kill = (p: WeaveProc): void => {
    p.proc.kill('SIGKILL')
    killed++
    // The host's disk is gone with it.
    void p.exited.then(() => rmSync(p.dir, { recursive: true, force: true }))
  }
  const onLine = (p: WeaveProc, line: string): void => {
    ends.line(line)
    if (line.startsWith('ready ')) ready.add(p.id)
    // A weave is taken over by those that heard it (docs/host-loss.md, limits): all have joined first.
    if (p.id === victim1 && line.startsWith(`progress ${victim1} `)) reached = Math.max(reached, Number(line.split(' ')[2]))
    if (killed === 0 && ready.size === IDS.length && reached >= loss.firstAt) kill(procs.find((q) => q.id === victim1)!)
    if (line === `took ${victim1}` && afterTake === -1) {
      afterTake = 0
      tookFirst()
    }
    if (afterTake >= 0 && killed === 1 && afterTake++ >= loss.secondAfter) kill(procs.find((q) => q.id === victim2)!)
  }
  try {
    for (const id of IDS) {
      // The shortest takeover time (1 s) keeps 20 losses within the file's time.
      procs.push(startReplWeave({ dir: tempDir(`raiment-loss-${id}-`), id, ns, url: AMQP_URL, peers: IDS.filter((x) => x !== id), count: COUNT, steps: STEPS, effects: effects.url, env: { REPL_TAKEOVER_MS: '1000' } }, onLine))
    }
    const bound = deadline(60_000, procs, `the run ${JSON.stringify(loss)}`)
    try {
      await Promise.race([firstTaken.then(() => ends.all), bound.promise])
      // The second loss may come after the storm ended: it still has to be taken over.
      if (killed < 2) kill(procs.find((q) => q.id === victim2)!)
      const last = procs.find((q) => q.id !== victim1 && q.id !== victim2)!
      await Promise.race([lineFrom(last, `took ${victim2}`), bound.promise])
    } finally {
      bound.clear()
    }
    if (process.env['HOST_LOSS_DEBUG']) console.log(JSON.stringify(loss), procs.map((p) => `${p.id}:\n  ${p.lines.filter((l) => !l.startsWith('progress')).join('\n  ')}`).join('\n'))
    ends.expectUninterrupted(IDS, COUNT, STEPS)
    // Each saga step did its effect under one call id, whatever ran again after a loss.
    expect(effects.done.size).toBe(IDS.length * STEPS)
    return killed
  } finally {
    await tearDown(procs, AMQP_URL, ns, IDS, effects)
  }
}

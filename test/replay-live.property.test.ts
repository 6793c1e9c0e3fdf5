/**
 * Replay equals live: random thread programs (sequences, nested Promise.all, Promise.race,
 * results appended as they arrive, worker pools, identical calls in parallel branches, random
 * delays, thrown and caught errors, uncaught errors) run live in a weave; the dump of each,
 * replayed strictly, gives the same result (or error) and the same sequence of requests.
 *
 * Also with `ops` declared journal-only: outcomes then reach a thread early, before their commit
 * (src/weft-pending.ts), once its microtasks drain, and the replay must still read the same.
 *
 * The same programs also run on a virtual clock (completion order a function of the program), once
 * live and once with `alwaysReplay` (each thread re-run from its journal after every durable
 * outcome); the two must agree result for result.
 *
 * Reproduce a failure with FC_SEED=<seed> (printed below and in the failure message).
 */
import fc from 'fast-check'
import { join } from 'node:path'
import { expect, it } from 'vitest'
import { makeDump, thread, Weave, type ThreadEnd } from 'raiment'
import { replay } from 'raiment/testing'
import { interpreter, realOps, topArb, VirtualOps, type Json, type Prog, type Req } from './support/program.js'
import { tempDir } from './support/tmp.js'

const seed = process.env['FC_SEED'] !== undefined ? Number(process.env['FC_SEED']) : Date.now() % 2 ** 31
const RUNS = Number(process.env['FC_RUNS'] ?? 25)
/** Programs per run, run concurrently in one weave. */
const PER_RUN = 8
/** Generous: a failing property shrinks, running programs again. */
const TIMEOUT = 120_000 + RUNS * 4_000
console.log(`replay-live: fast-check seed ${seed}, ${RUNS} runs of ${PER_RUN} programs (FC_SEED=${seed} to reproduce)`)

interface Outcome {
  status: string
  value?: Json
  error?: { name: string; message: string; code: unknown }
  trace: Req[]
}

/** What a thread's end says, in a comparable form. */
function fromEnd(end: ThreadEnd): Outcome {
  if (end.status === 'done') {
    const r = end.result as { value: Json; trace: Req[] }
    return { status: 'done', value: r.value, trace: r.trace }
  }
  if (end.status === 'failed') {
    const e = end.error as Error & { code?: unknown; trace?: Req[] }
    return { status: 'failed', error: { name: e.name, message: e.message, code: e.code }, trace: e.trace ?? [] }
  }
  return { status: end.status, trace: [] }
}

/** An end the program can produce: a result, or one of its own errors (never Raiment's). */
function expectProgramEnd(o: Outcome, prog: Prog): void {
  if (o.status === 'failed') {
    const ok = o.error!.name === 'OpFailed' || (o.error!.name === 'Error' && o.error!.message.startsWith('thrown '))
    if (!ok) throw new Error(`program failed with an error of Raiment's: ${JSON.stringify(o.error)}\nprogram: ${JSON.stringify(prog)}`)
  } else expect(o.status).toBe('done')
}

async function expectReplayEquals(weave: Weave, id: string, live: Outcome, prog: Prog): Promise<void> {
  const run = await replay(interpreter, makeDump(weave.journal, id), { ioLibs: false })
  const replayed: Outcome =
    run.status === 'done'
      ? fromEnd({ id, type: 'interp', status: 'done', result: run.result })
      : fromEnd({ id, type: 'interp', status: 'failed', error: run.error! })
  const calls = run.calls.map((c) => c.args)
  if (JSON.stringify(replayed) !== JSON.stringify(live) || JSON.stringify(calls) !== JSON.stringify(live.trace)) {
    expect({ outcome: replayed, calls }, `replay differs from the live run of ${JSON.stringify(prog)}`).toEqual({ outcome: live, calls: live.trace })
  }
}

/** `early`: `ops.run` declared journal-only, so its outcomes may reach the threads before their commit. */
async function openWeave(ops: object, alwaysReplay = false, early = false): Promise<Weave> {
  return Weave.open({
    db: join(tempDir('raiment-prop-'), 'w.db'),
    durability: 'memory',
    threads: { interp: interpreter },
    libraries: { ops: early ? { default: ops, journalOnly: ['run'] } : ops },
    ioLibs: false,
    dumps: false,
    alwaysReplay,
  })
}

it(`replays ${RUNS * PER_RUN} random programs exactly as they ran live, and always-replayed (seed ${seed})`, async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(topArb(), { minLength: PER_RUN, maxLength: PER_RUN }), async (progs) => {
      // Live, then with every thread re-run from its journal after each durable outcome (calls in
      // flight then run again, as after a crash, so their timing and the order differ).
      for (const alwaysReplay of [false, true]) {
        const real = realOps()
        const weave = await openWeave(real.lib, alwaysReplay)
        try {
          const ids = progs.map((prog) => weave.spawn('interp', { prog }))
          const ends = (await Promise.all(ids.map((id) => weave.join(id)))).map(fromEnd)
          let requests = 0
          for (const [i, id] of ids.entries()) {
            const live = ends[i]!
            expectProgramEnd(live, progs[i]!)
            requests += live.trace.length
            // Every request was answered and recorded, once.
            expect(weave.journal.entries(id)).toHaveLength(live.trace.length)
            await expectReplayEquals(weave, id, live, progs[i]!)
          }
          if (alwaysReplay) expect(real.calls()).toBeGreaterThanOrEqual(requests)
          else expect(real.calls()).toBe(requests)
        } finally {
          await weave.close()
        }
      }
    }),
    { numRuns: RUNS, seed },
  )
}, TIMEOUT)

it(`agrees with an always-replay run on a virtual clock for ${RUNS * PER_RUN} programs (seed ${seed})`, async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(topArb(), { minLength: PER_RUN, maxLength: PER_RUN }), async (progs) => {
      const results: Outcome[][] = []
      for (const alwaysReplay of [false, true]) {
        const ops = new VirtualOps()
        const weave = await openWeave(ops.lib, alwaysReplay)
        try {
          const ids = progs.map((prog) => weave.spawn('interp', { prog }))
          const ends: Array<ThreadEnd | undefined> = []
          ids.forEach((id, i) => void weave.join(id).then((e) => (ends[i] = e)))
          await ops.drive(weave, () => ends.filter(Boolean).length === ids.length)
          const outcomes = ends.map((e) => fromEnd(e!))
          for (const [i, id] of ids.entries()) {
            expectProgramEnd(outcomes[i]!, progs[i]!)
            expect(weave.journal.entries(id)).toHaveLength(outcomes[i]!.trace.length)
            await expectReplayEquals(weave, id, outcomes[i]!, progs[i]!)
          }
          results.push(outcomes)
        } finally {
          await weave.close()
        }
      }
      const [live, always] = results as [Outcome[], Outcome[]]
      for (let i = 0; i < progs.length; i++) {
        if (JSON.stringify(always[i]) !== JSON.stringify(live[i])) {
          expect(always[i], `always-replay differs from live for ${JSON.stringify(progs[i])}`).toEqual(live[i])
        }
      }
    }),
    { numRuns: RUNS, seed },
  )
}, TIMEOUT)

declare module 'raiment' {
  interface Libraries {
    cache: { get(key: string): Promise<{ key: string; hits: number; at: Date }> }
  }
}

it('a value the library hands out twice (one object it keeps) and the thread changes: live as replay', async () => {
  // A library that returns the object it keeps, not a copy: live, the thread must still get the
  // outcome as recorded (as replay will give it), not an alias of the library's object.
  const kept = { key: 'k', hits: 0, at: new Date(0) }
  const cache = { async get() { return kept } }
  const t = thread({
    uses: ['cache'],
    async does() {
      const a = await this.cache.get('k')
      a.hits += 10
      a.at.setTime(5)
      const b = await this.cache.get('k')
      b.hits += 1
      return { a: a.hits, b: b.hits, at: b.at.getTime() }
    },
  })
  const weave = await Weave.open({ db: join(tempDir(), 'w.db'), durability: 'memory', threads: { t }, libraries: { cache }, ioLibs: false, dumps: false })
  try {
    const id = weave.spawn('t')
    const end = await weave.join(id)
    const run = await replay(t, makeDump(weave.journal, id), { ioLibs: false })
    expect(end).toEqual({ id, type: 't', status: 'done', result: run.result })
    expect(run.result).toEqual({ a: 10, b: 1, at: 0 })
    expect(kept).toEqual({ key: 'k', hits: 0, at: new Date(0) })
  } finally {
    await weave.close()
  }
})

it(`replays random programs exactly as they ran live with early outcomes (ops journal-only; seed ${seed})`, async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(topArb(), { minLength: PER_RUN, maxLength: PER_RUN }), async (progs) => {
      const real = realOps()
      const weave = await openWeave(real.lib, false, true)
      try {
        const ids = progs.map((prog) => weave.spawn('interp', { prog }))
        const ends = (await Promise.all(ids.map((id) => weave.join(id)))).map(fromEnd)
        for (const [i, id] of ids.entries()) {
          expectProgramEnd(ends[i]!, progs[i]!)
          expect(weave.journal.entries(id)).toHaveLength(ends[i]!.trace.length)
          await expectReplayEquals(weave, id, ends[i]!, progs[i]!)
        }
      } finally {
        await weave.close()
      }
    }),
    { numRuns: Math.ceil(RUNS / 2), seed },
  )
}, TIMEOUT)

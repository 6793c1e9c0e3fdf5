/**
 * Cancel with clean-up (src/cancel.ts), on random programs: a thread of steps — a library call
 * with an idempotency key, a short sleep, a receive that times out, a wait (a receive, with or
 * without an hour's timeout, of a message the test sends; a sleep; a gate: a library call that
 * settles when the test opens it), a nested try/catch that catches ThreadCancelled, makes
 * compensating calls and may rethrow; at the top, a continue-as-new with the steps left — is
 * cancelled at random moments (as spawned, at one of its waits, there twice in a row, again at a
 * later wait), its weave maybe closed and reopened on the same file (as spawned, or at a wait
 * before or after the cancel), with or without `passivateAfter: 0`.
 *
 * A model runs the same program: the cancel interrupts exactly one call — the sleep or receive it
 * waits on; in a gate (which cannot be aborted), the next call it makes; before it starts, its
 * first call; after a close with the cancel not yet applied, the first call made live once
 * replayed; across a continue-as-new, the new run's first call. The thread must end as the model
 * says, each key made once (again, with the same key, only across a close), its dump replay to
 * the same end, no `cancel:` meta left, nothing dead-lettered.
 *
 * Reproduce a failure with FC_SEED=<seed>.
 */
import fc from 'fast-check'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { thread, ThreadCancelled, Weave, type AnyThreadType, type ThreadEnd } from 'raiment'
import { replay } from 'raiment/testing'
import { makeDump } from '../src/dump.js'
import { pendingSleeps } from '../io-libs/clock.js'
import { tempDir } from './support/tmp.js'
import { until } from './support/until.js'

const seed = process.env['FC_SEED'] !== undefined ? Number(process.env['FC_SEED']) : Date.now() % 2 ** 31
const RUNS = Number(process.env['CANCEL_RUNS'] ?? (process.env['CI'] !== undefined ? 150 : 400))
console.log(`cancel: fast-check seed ${seed}, ${RUNS} runs (FC_SEED=${seed} to reproduce)`)

type Step =
  | { k: 'call'; id: string }
  | { k: 'nap'; id: string; ms: number }
  | { k: 'poll'; id: string; ms: number }
  | { k: 'wait'; id: string; how: 'sleep' | 'receive' | 'timed' | 'gate'; ms: number }
  | { k: 'try'; id: string; body: Step[]; comp: number; rethrow: boolean }
  /** At the top only: the thread continues as new with the steps after this one. */
  | { k: 'renew'; id: string }

interface Program { steps: Step[] }

interface Fx { effect(key: string): Promise<string> }
interface Gate { open(key: string): Promise<void> }
interface Self { fx: Fx; gate: Gate; mailbox: { receive(o?: { timeout: number }): Promise<unknown> }; clock: { sleep(ms: number): Promise<void> } }


async function exec(t: Self, steps: Step[]): Promise<void> {
  for (const s of steps) {
    if (s.k === 'call') await t.fx.effect(s.id)
    else if (s.k === 'nap') await t.clock.sleep(s.ms)
    else if (s.k === 'poll') await t.mailbox.receive({ timeout: s.ms })
    else if (s.k === 'wait') {
      await t.fx.effect(`a${s.id}`)
      if (s.how === 'sleep') await t.clock.sleep(s.ms)
      else if (s.how === 'receive') await t.mailbox.receive()
      else if (s.how === 'timed') await t.mailbox.receive({ timeout: 3_600_000 })
      else await t.gate.open(s.id)
    } else if (s.k === 'try') {
      try {
        await exec(t, s.body)
      } catch (e) {
        if (!(e instanceof ThreadCancelled)) throw e
        for (let j = 0; j < s.comp; j++) await t.fx.effect(`x${s.id}.${j}`)
        if (s.rethrow) throw e
      }
    }
  }
}

const prog = thread({
  uses: ['fx' as 'clock', 'gate' as 'clock', 'mailbox', 'clock', 'threads'],
  async does(p: Program): Promise<unknown> {
    for (let i = 0; i < p.steps.length; i++) {
      if (p.steps[i]!.k === 'renew') return this.threads.continueAsNew({ steps: p.steps.slice(i + 1) })
      await exec(this as unknown as Self, [p.steps[i]!])
    }
    return 'ok'
  },
})

// --- programs ---------------------------------------------------------------------------------

type Shape = { k: 'renew' } | { k: 'call' } | { k: 'nap'; ms: number } | { k: 'poll'; ms: number } | { k: 'wait'; how: 'sleep' | 'receive' | 'timed' | 'gate' } | { k: 'try'; body: Shape[]; comp: number; rethrow: boolean }

const leaf: fc.Arbitrary<Shape> = fc.oneof(
  { weight: 3, arbitrary: fc.constant({ k: 'call' as const }) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 5 }).map((ms) => ({ k: 'nap' as const, ms })) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 5 }).map((ms) => ({ k: 'poll' as const, ms })) },
  { weight: 3, arbitrary: fc.constantFrom('sleep' as const, 'receive' as const, 'timed' as const, 'gate' as const).map((how) => ({ k: 'wait' as const, how })) },
)
const shapes: fc.Arbitrary<Shape[]> = fc.letrec<{ steps: Shape[]; step: Shape }>((tie) => ({
  step: fc.oneof({ depthSize: 'small', withCrossShrink: true }, leaf, leaf, fc.record({ k: fc.constant('try' as const), body: tie('steps'), comp: fc.integer({ min: 0, max: 2 }), rethrow: fc.boolean() })),
  steps: fc.array(tie('step'), { minLength: 1, maxLength: 4 }),
})).steps
/** A program: steps, and at the top a continue-as-new now and then. */
const programs: fc.Arbitrary<Shape[]> = fc.array(fc.oneof({ weight: 1, arbitrary: fc.constant<Shape>({ k: 'renew' }) }, { weight: 4, arbitrary: shapes.map((ss) => ss[0]!) }), { minLength: 1, maxLength: 5 })

/** Ids by path (keys of the effects); sleeps of waits: an hour for the one cancelled, else a few ms. */
function label(ss: Shape[], targets: Array<string | null>, prefix = ''): Step[] {
  return ss.map((s, i): Step => {
    const id = `${prefix}${i}`
    if (s.k === 'try') return { ...s, id, body: label(s.body, targets, `${id}.`) }
    if (s.k === 'wait') return { ...s, id, ms: targets.includes(id) ? 3_600_000 : 1 + (i % 7) }
    return { ...s, id }
  })
}

interface Plan {
  /** 'start': cancelled as spawned; a wait's id; null: never. */
  cancel: 'start' | string | null
  /** Cancelled again at another wait (a new request: it interrupts again), if reached. */
  again: string | null
  twice: boolean
  /** Closed and reopened as spawned ('start') or at a wait (id), after the cancel if at a cancelled one and `afterCancel`. */
  close: { at: string; afterCancel: boolean } | null
  passivate: boolean
  /** At a sleep or receive cancelled: first wait till it waits there (passivated, or sleeping). */
  settle: boolean
}

interface Model { made: string[]; reached: Step[]; end: 'ok' | 'cancelled' }

class Cancelled extends Error {}

/** What the program does, under the plan. */
function model(steps: Step[], plan: Plan): Model {
  const made: string[] = []
  const reached: Step[] = []
  let pending = plan.cancel === 'start'
  const take = (): void => {
    if (pending) {
      pending = false
      throw new Cancelled()
    }
  }
  const run = (ss: Step[]): void => {
    for (const s of ss) {
      if (s.k === 'call') {
        take()
        made.push(s.id)
      } else if (s.k === 'nap' || s.k === 'poll') take()
      else if (s.k === 'wait') {
        take()
        made.push(`a${s.id}`)
        reached.push(s)
        if (s.id === plan.cancel || s.id === plan.again) {
          // A sleep or receive is aborted; a gate is not, unless the weave closed with the cancel
          // queued: then the gate, made live again once replayed, is the first call and throws.
          if (s.how !== 'gate' || (plan.close?.at === s.id && plan.close.afterCancel)) throw new Cancelled()
          pending = true
        }
      } else if (s.k === 'try') {
        try {
          run(s.body)
        } catch (e) {
          if (!(e instanceof Cancelled)) throw e
          for (let j = 0; j < s.comp; j++) {
            take()
            made.push(`x${s.id}.${j}`)
          }
          if (s.rethrow) throw e
        }
      }
    }
  }
  try {
    run(steps)
    return { made, reached, end: 'ok' }
  } catch (e) {
    if (!(e instanceof Cancelled)) throw e
    return { made, reached, end: 'cancelled' }
  }
}

const cases = programs.chain((ss) => {
  const waits = model(label(ss, []), { cancel: null, again: null, twice: false, close: null, passivate: false, settle: false }).reached.map((s) => s.id)
  const at = waits.length === 0 ? fc.constant(null) : fc.option(fc.constantFrom(...waits), { freq: 2 })
  return fc.record({
    cancel: fc.oneof(at, fc.constant('start'), fc.constant(null)),
    again: at,
    twice: fc.boolean(),
    close: fc.option(fc.record({ at: fc.constantFrom('start', ...waits), afterCancel: fc.boolean() }), { freq: 2 }),
    passivate: fc.boolean(),
    settle: fc.boolean(),
  }).map((plan: Plan) => ({ shapes: ss, plan, steps: label(ss, [plan.cancel, plan.again]) }))
})

// --- the libraries, in this process -------------------------------------------------------------

let generation = 0
const counts = new Map<string, number>()
/** Keys in the order first made. */
const order: string[] = []
/** Passivations seen in this process, and how many there were as each arrival was made. */
let passivations = 0
const passivationsAt = new Map<string, number>()
const gates = new Map<string, { gen: number; open: () => void }>()
let watchers: Array<() => void> = []
const changed = (): void => {
  const w = watchers
  watchers = []
  for (const f of w) f()
}
/** Resolves once `cond` holds (looked at after each library call: an event, no polling). */
function when(cond: () => boolean): Promise<void> {
  return new Promise((resolve) => {
    const look = (): void => (cond() ? resolve() : void watchers.push(look))
    look()
  })
}

const fx: Fx = {
  async effect(key: string) {
    const n = counts.get(key) ?? 0
    if (n === 0) order.push(key)
    passivationsAt.set(key, passivations)
    counts.set(key, n + 1)
    changed()
    return key
  },
}
const gate: Gate = {
  open(key: string) {
    return new Promise<void>((resolve) => {
      gates.set(key, { gen: generation, open: resolve })
      changed()
    })
  },
}

async function open(db: string, passivate: boolean): Promise<Weave> {
  generation++
  const weave = await Weave.open({ db, threads: { prog: prog as AnyThreadType }, libraries: { fx, gate }, dumps: false, durability: 'memory', passivateAfter: passivate ? 0 : false })
  weave.on('thread-passivated', () => (passivations++, changed()))
  return weave
}

async function check(steps: Step[], plan: Plan): Promise<{ closes: number; end: ThreadEnd }> {
  counts.clear()
  passivationsAt.clear()
  order.length = 0
  gates.clear()
  watchers = []
  const m = model(steps, plan)
  const db = join(tempDir('raiment-cancel-prop-'), 'w.db')
  let weave = await open(db, plan.passivate)
  let closes = 0
  // A thread that goes on where the model says it stops (or stops where it goes on) fails the case in 5 s, not the test's timeout.
  let timer: NodeJS.Timeout | undefined
  const stuck = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`stuck: ${JSON.stringify({ plan, order, model: m })}`)), 5_000)))
  stuck.catch(() => {})
  const bounded = <T>(p: Promise<T>): Promise<T> => Promise.race([p, stuck])
  try {
    const id = weave.spawn('prog', { steps })
    const cancel = (): void => {
      expect(weave.cancel(id, 'asked')).toBe(true)
      if (plan.twice) expect(weave.cancel(id, 'asked')).toBe(true)
    }
    const reopen = async (): Promise<void> => {
      await weave.committed()
      await weave.close()
      closes++
      weave = await open(db, plan.passivate)
    }
    const gateHere = (s: Step): Promise<void> => bounded(when(() => gates.get(s.id)?.gen === generation))
    if (plan.cancel === 'start') cancel()
    // Closed as spawned (its start, and the cancel, committed or not): the next weave starts it.
    if (plan.close?.at === 'start') await reopen()
    for (const s of m.reached) {
      if (s.k !== 'wait') continue
      await bounded(when(() => counts.has(`a${s.id}`)))
      const target = s.id === plan.cancel || s.id === plan.again
      const closing = plan.close?.at === s.id
      if (closing && !(target && plan.close!.afterCancel)) await reopen()
      if (target) {
        if (s.how === 'gate') await gateHere(s)
        else if (plan.settle && plan.passivate) await bounded(when(() => passivations > passivationsAt.get(`a${s.id}`)!))
        else if (plan.settle && s.how === 'sleep') await until('the thread sleeping', () => pendingSleeps() > 0)
        cancel()
        if (closing && plan.close!.afterCancel) await reopen()
      }
      if ((s.how === 'receive' || s.how === 'timed') && !target) weave.send(id, { for: s.id })
      if (s.how === 'gate' && !(target && closing && plan.close!.afterCancel)) {
        await gateHere(s)
        gates.get(s.id)!.open()
      }
    }
    const end = await bounded(weave.join(id))
    await weave.committed()
    const why = JSON.stringify({ plan, end, order, model: m })
    if (m.end === 'ok') expect(end, why).toMatchObject({ status: 'done', result: 'ok' })
    else {
      expect(end.status, why).toBe('failed')
      expect((end as { error: Error }).error, why).toBeInstanceOf(ThreadCancelled)
    }
    expect(order, why).toEqual(m.made)
    for (const [k, n] of counts) expect(n, `${k} made ${n} times; ${why}`).toBeLessThanOrEqual(1 + closes)
    const dump = makeDump(weave.journal, id)
    const replayed = await replay(prog, dump, { libraries: { fx: { effect: () => Promise.reject(new Error('made in a replay')) }, gate: { open: () => Promise.reject(new Error('made in a replay')) } } })
    expect(replayed.status, why).toBe(end.status)
    if (end.status === 'done') expect(replayed).toMatchObject({ result: 'ok' })
    else expect((replayed as { error: Error }).error, why).toBeInstanceOf(ThreadCancelled)
    const q = (sql: string): unknown => weave.journal.db.prepare(sql).pluck().get()
    expect(q("SELECT count(*) FROM meta WHERE k LIKE 'cancel:%'"), `cancel meta left; ${why}`).toBe(0)
    expect(q('SELECT count(*) FROM dead_letters'), why).toBe(0)
    return { closes, end }
  } finally {
    clearTimeout(timer)
    await weave.close()
  }
}

describe('cancel with clean-up', () => {
  it(`random programs, cancels and closes: the thread ends as the model says, each key made once, its dump replays to that end, no cancel left (${RUNS} runs, seed ${seed})`, async () => {
    let cancelled = 0
    let closed = 0
    await fc.assert(
      fc.asyncProperty(cases, async ({ steps, plan }) => {
        const r = await check(steps, plan)
        if (r.end.status === 'failed') cancelled++
        closed += r.closes
      }),
      { numRuns: RUNS, seed },
    )
    console.log(`cancel: ${cancelled} of ${RUNS} threads ended cancelled; ${closed} closes; ${passivations} passivations`)
  }, 120_000)
})

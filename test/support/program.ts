/**
 * Random thread programs for the replay-equals-live property test: a small AST, its fast-check
 * arbitrary, an interpreter thread type whose params are the program, and two implementations
 * of the one I/O library it uses (`ops.run`):
 *
 * - `realOps()` sleeps `delay` ms (plus a little, by ordinal, so identical calls issued in
 *   parallel do not always finish in issue order) with real timers;
 * - `VirtualOps` completes calls on a virtual clock that a driver advances only when the weave is
 *   idle, so a program's completion order is a function of the program alone. Calls with the same
 *   call id join the one already in flight (an idempotent library), so a thread re-run from its
 *   journal does not restart them. That is what lets an always-replay run be compared with a
 *   live run result for result.
 *
 * The interpreter returns the requests it issued, in issue order, with its value, so a replay's
 * `run.calls` can be checked against the live sequence; an uncaught error carries them as its
 * own `trace` field.
 */
import fc from 'fast-check'
import { callContext, thread, type Weave } from 'raiment'

export type Prog =
  | { k: 'call'; name: string; delay: number; fail: boolean; usePrev: boolean }
  | { k: 'seq'; items: Prog[] }
  | { k: 'all'; items: Prog[] }
  | { k: 'race'; items: Prog[] }
  /** Runs items in parallel and appends each result as it arrives. */
  | { k: 'arrive'; items: Prog[] }
  /** `width` workers take the next item as soon as they finish one. */
  | { k: 'pool'; width: number; items: Prog[] }
  | { k: 'try'; body: Prog; handler: Prog }
  | { k: 'throw'; msg: string }

/** The arguments of one `ops.run` request. */
export type Req = [name: string, delay: number, fail: boolean, tag: string]

export type Json = null | string | number | boolean | Json[] | { [k: string]: Json }

export interface OpsApi {
  run(name: string, delay: number, fail: boolean, tag: string): Promise<string>
}

declare module 'raiment' {
  interface Libraries {
    ops: OpsApi
  }
}

export class OpFailed extends Error {
  readonly code: string
  constructor(name: string, ord: string) {
    super(`op ${name} failed (#${ord})`)
    this.name = 'OpFailed'
    this.code = `E_${name.toUpperCase()}`
  }
}

// ---- the arbitrary --------------------------------------------------------------------------

export function progArb(maxDepth = 4): fc.Arbitrary<Prog> {
  const call = fc.record({
    k: fc.constant('call' as const),
    name: fc.constantFrom('a', 'b', 'c', 'd'),
    delay: fc.integer({ min: 0, max: 5 }),
    fail: fc.integer({ min: 0, max: 6 }).map((n) => n === 0),
    usePrev: fc.integer({ min: 0, max: 3 }).map((n) => n === 0),
  })
  const { prog } = fc.letrec<{ prog: Prog; items: Prog[] }>((tie) => ({
    prog: fc.oneof(
      { maxDepth, depthSize: 'small', withCrossShrink: true },
      { arbitrary: call, weight: 6 },
      { arbitrary: fc.record({ k: fc.constant('seq' as const), items: tie('items') }), weight: 2 },
      { arbitrary: fc.record({ k: fc.constant('all' as const), items: tie('items') }), weight: 2 },
      { arbitrary: fc.record({ k: fc.constant('race' as const), items: tie('items') }), weight: 1 },
      { arbitrary: fc.record({ k: fc.constant('arrive' as const), items: tie('items') }), weight: 2 },
      { arbitrary: fc.record({ k: fc.constant('pool' as const), width: fc.integer({ min: 1, max: 3 }), items: tie('items') }), weight: 1 },
      { arbitrary: fc.record({ k: fc.constant('try' as const), body: tie('prog'), handler: tie('prog') }), weight: 2 },
      { arbitrary: fc.record({ k: fc.constant('throw' as const), msg: fc.constantFrom('x', 'y') }), weight: 1 },
    ),
    items: fc.array(tie('prog'), { minLength: 1, maxLength: 4 }),
  }))
  return prog
}

/** A program: a sequence at the top, so there is usually more than one call. */
export function topArb(): fc.Arbitrary<Prog> {
  return fc.array(progArb(), { minLength: 1, maxLength: 5 }).map((items) => ({ k: 'seq' as const, items }))
}

// ---- the interpreter ------------------------------------------------------------------------

function errInfo(e: unknown): Json {
  const err = e as { name?: unknown; message?: unknown; code?: unknown }
  return { caught: String(err.name), message: String(err.message), code: typeof err.code === 'string' ? err.code : null }
}

const noop = (): void => {}

/**
 * Runs a program. Every branch started is awaited before the thread ends (after an uncaught error
 * too), so the requests a thread makes are all made while it runs.
 */
export const interpreter = thread({
  uses: ['ops'],
  async does(p: { prog: Prog }) {
    const trace: Req[] = []
    const started: Array<Promise<unknown>> = []
    const ops = this.ops
    const branch = <T>(pr: Promise<T>): Promise<T> => {
      started.push(pr.then(noop, noop))
      return pr
    }
    const ev = async (e: Prog, prev: Json): Promise<Json> => {
      switch (e.k) {
        case 'call': {
          const req: Req = [e.name, e.delay, e.fail, e.usePrev ? JSON.stringify(prev).slice(0, 16) : '']
          trace.push(req)
          return ops.run(...req)
        }
        case 'seq': {
          const out: Json[] = []
          let last: Json = prev
          for (const item of e.items) out.push((last = await ev(item, last)))
          return out
        }
        case 'all':
          return Promise.all(e.items.map((item) => branch(ev(item, prev))))
        case 'race':
          return Promise.race(e.items.map((item) => branch(ev(item, prev))))
        case 'arrive': {
          const out: Json[] = []
          await Promise.all(
            e.items.map((item, i) =>
              branch(
                ev(item, prev).then(
                  (v) => void out.push([i, v]),
                  (err: unknown) => void out.push([i, errInfo(err)]),
                ),
              ),
            ),
          )
          return out
        }
        case 'pool': {
          const out: Json[] = []
          let next = 0
          const worker = async (w: number): Promise<void> => {
            while (next < e.items.length) {
              const j = next++
              out.push([w, j, await ev(e.items[j]!, prev)])
            }
          }
          await Promise.all(Array.from({ length: e.width }, (_, w) => branch(worker(w))))
          return out
        }
        case 'try':
          try {
            return { ok: await ev(e.body, prev) }
          } catch (err) {
            return { err: errInfo(err), then: await ev(e.handler, errInfo(err)) }
          }
        case 'throw':
          throw new Error(`thrown ${e.msg}`)
      }
    }
    let value: Json = null
    let failure: unknown = undefined
    let failed = false
    try {
      value = await ev(p.prog, null)
    } catch (e) {
      failed = true
      failure = e
    }
    // Join the stragglers (losers of a race, branches of a failed Promise.all), new ones included.
    for (let n = 0; n < started.length; ) {
      const batch = started.slice(n)
      n = started.length
      await Promise.all(batch)
    }
    if (failed) {
      ;(failure as { trace?: Req[] }).trace = trace
      throw failure
    }
    return { value, trace }
  },
})

// ---- the libraries --------------------------------------------------------------------------

/** The ordinal of the current call (the last part of its call id). */
function ordinal(callId: string): string {
  return callId.slice(callId.lastIndexOf(':') + 1)
}

/** How long a call takes: its delay, plus 0–2 by ordinal so identical calls finish out of order. */
function duration(delay: number, ord: string): number {
  return delay + ([2, 0, 1][Number(ord) % 3] ?? 0)
}

function outcome(name: string, fail: boolean, ord: string, tag: string): string {
  if (fail) throw new OpFailed(name, ord)
  return `${name}${ord}${tag ? '<' + tag.length : ''}`
}

/** `ops` with real timers. `calls()` counts live invocations. */
export function realOps(): { lib: OpsApi; calls: () => number } {
  let n = 0
  return {
    calls: () => n,
    lib: {
      run(name, delay, fail, tag) {
        const ord = ordinal(callContext().callId)
        n++
        return new Promise((resolve, reject) => {
          setTimeout(() => {
            try {
              resolve(outcome(name, fail, ord, tag))
            } catch (e) {
              reject(e)
            }
          }, duration(delay, ord))
        })
      },
    },
  }
}

interface Pending {
  readonly callId: string
  readonly due: number
  readonly promise: Promise<string>
  readonly settle: () => void
}

/**
 * `ops` on a virtual clock. `step()` completes every pending call due at the earliest time, in
 * call-id order, all at once (so their outcomes share a commit); `drive()` alternates waiting for
 * the weave to be idle with a step, until the given threads have ended.
 */
export class VirtualOps {
  now = 0
  invocations = 0
  readonly #pending = new Map<string, Pending>()
  readonly lib: OpsApi = {
    run: (name, delay, fail, tag) => {
      const { callId } = callContext()
      this.invocations++
      const joined = this.#pending.get(callId)
      if (joined !== undefined) return joined.promise
      const ord = ordinal(callId)
      let settle!: () => void
      const promise = new Promise<string>((resolve, reject) => {
        settle = () => {
          try {
            resolve(outcome(name, fail, ord, tag))
          } catch (e) {
            reject(e)
          }
        }
      })
      this.#pending.set(callId, { callId, due: this.now + duration(delay, ord), promise, settle })
      return promise
    },
  }

  get pending(): number {
    return this.#pending.size
  }

  step(): boolean {
    if (this.#pending.size === 0) return false
    let due = Infinity
    for (const p of this.#pending.values()) due = Math.min(due, p.due)
    this.now = due
    const ready = [...this.#pending.values()].filter((p) => p.due === due).sort((a, b) => (a.callId < b.callId ? -1 : 1))
    for (const p of ready) {
      this.#pending.delete(p.callId)
      p.settle()
    }
    return true
  }

  /** Steps the clock until `ended()` holds; throws if nothing is pending and it does not. */
  async drive(weave: Weave, ended: () => boolean): Promise<void> {
    for (let guard = 0; guard < 100_000; guard++) {
      await idle(weave, this)
      if (ended()) return
      if (!this.step()) throw new Error('virtual ops: threads are still running but no call is pending')
    }
    throw new Error('virtual ops: too many steps')
  }
}

const immediate = (): Promise<void> => new Promise((r) => setImmediate(r))

/**
 * Waits until the weave has nothing left to do but wait for `ops`: no commit queued, no outcome
 * waiting to be released, no call about to be made. Progress is what the journal holds and what
 * the library was asked; two rounds of (commit, macrotask) that change neither mean idle.
 */
async function idle(weave: Weave, ops: VirtualOps): Promise<void> {
  const count = weave.journal.db.prepare("SELECT (SELECT count(*) FROM journal) + (SELECT count(*) FROM threads WHERE status != 'running') AS n").pluck()
  let last = ''
  let same = 0
  while (same < 2) {
    await weave.committed()
    await immediate()
    const sig = `${count.get() as number}/${ops.invocations}/${ops.pending}`
    if (sig === last) same++
    else same = 0
    last = sig
  }
}

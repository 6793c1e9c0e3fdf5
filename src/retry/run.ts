/**
 * The retry runner: makes the attempts of one live call under its policy, records each failed
 * attempt that is retried, and waits out the back-off as a durable timer. The weft (weft.ts)
 * hands it the calls that have a policy and records the final outcome it settles with.
 *
 * Invariants:
 * - Every attempt of a call is the same call (same key, ordinal, and so call id): a library that
 *   passes the call id on as an idempotency key does the effect once, however many attempts.
 * - Attempt n's row (its error and the time the next attempt is due: the policy's back-off, or
 *   the `retryAfterMs` the error carries, at most maximumInterval) is durable before the wait
 *   starts, and the next attempt starts no earlier than that time. After a crash the call runs
 *   again from here: it reads its rows, waits only what is left until the last one's due time,
 *   and numbers its next attempt after them.
 * - Only the final outcome (success, an error that does not retry, or the last attempt's) leaves
 *   here; a replayed call never comes here (its outcome is in the record), so replay neither
 *   retries nor waits.
 * - A thread killed, or a weave shutting down, during a wait ends the wait (the call's onAbort
 *   hook, as for a sleep); no attempt starts and nothing is recorded after the weft let go.
 * - An attempt is made only past the journal's gate (`Journal.gated`: a replicated weave's
 *   fencing, src/replication/fencing.ts), checked as it leaves the library's queue: no release
 *   precedes it after a back-off, so a weave frozen or cut off meanwhile, whose journal another
 *   weave took over, would make it beside the one that runs the thread now. It waits while the
 *   gate is closed and never starts once fenced; an open gate, or none, costs nothing.
 */
import { callIdOfCall, type WeaveConfig } from '../call-context.js'
import { warnOnce } from '../continue/long-record.js'
import type { ScheduleClock } from '../schedules/clock.js'
import { clockOf, timerAt } from '../time/timers.js'
import { RetryOnThrew } from '../errors.js'
import { encodeError } from '../error-records.js'
import type { Journal } from '../journal.js'
import { AttemptLog } from './attempts.js'
import { delay, retries, type Policy, type RetryCallInfo } from './policy.js'
import type { RetryingLibrary } from './resolve.js'

/** What an attempt resolves to when the weft let go of the thread before it could be made. */
export const GONE: unique symbol = Symbol('raiment.retry.gone')

/** What the runner needs of a call. */
export interface RetryingCall {
  readonly threadId: string
  readonly lib: RetryingLibrary
  readonly method: string
  readonly args: unknown[]
  readonly key: string
  readonly ord: number
  readonly config: WeaveConfig
  /** Its thread's call scope (src/call-context.ts `scopeNumber`), -1 for none. */
  readonly scope: number
  /** When the current attempt started (set by the host's `attempt`). */
  readonly started: number
  abortHook: ((reason: Error) => void) | null
}

/** What the runner needs of the weft. */
export interface RetryHost {
  /** Asks the library once (through its concurrency limit); GONE when the weft let go first. */
  attempt(call: RetryingCall): Promise<unknown>
  /** The thread still takes outcomes (not killed, ended or detached). */
  active(): boolean
  /** The call now waits between attempts: a thread about to move need not wait for it. */
  waiting(): void
}

/**
 * A weft's host: each attempt goes through the library's concurrency queue (`queueOf`), then
 * past the journal's gate (`gated`, see the invariants); `once` asks the library, or, the weft
 * having let go of the thread, makes nothing (null): `notMade` and `waiting` are told, and the
 * retry ends with GONE.
 */
export function weftRetryHost(o: {
  queueOf(call: RetryingCall): { add(fn: () => Promise<unknown>): Promise<unknown> } | null
  gated(): Promise<void> | null
  once(call: RetryingCall): Promise<unknown> | null
  notMade(call: RetryingCall): void
  active(): boolean
  waiting(): void
}): RetryHost {
  return {
    attempt: (c) => {
      const once = (): Promise<unknown> => {
        const p = o.once(c)
        if (p !== null) return p
        o.notMade(c)
        o.waiting()
        return Promise.resolve(GONE)
      }
      const gated = (): Promise<unknown> => {
        const gate = o.gated()
        return gate === null ? once() : gate.then(once)
      }
      const q = o.queueOf(c)
      return q !== null ? q.add(gated) : gated()
    },
    active: () => o.active(),
    waiting: () => o.waiting(),
  }
}

const noop = (): void => {}
const never = (): Promise<never> => new Promise<never>(noop)

let waits = 0

/** How many calls of this process wait between two attempts (for tests). */
export function pendingRetryWaits(): number {
  return waits
}

/** The final outcome of `call` under `policy`: its value, or its error thrown. */
export async function retryCall(call: RetryingCall, policy: Policy, journal: Journal, host: RetryHost): Promise<unknown> {
  const log = AttemptLog.of(journal)
  const id = callIdOfCall(call)
  const name = `${call.lib.name}.${call.method}`
  const failure = call.lib.retry?.failure
  const past = log.ofCall(id)
  const clock = clockOf(call.config)
  let n = past.length
  // Resumed in the middle of a back-off: only the rest of it.
  if (n > 0) await until(call, past[n - 1]!.due, host, clock)
  for (;;) {
    const answer = host.attempt(call)
    let ok = true
    let value: unknown
    try {
      value = await answer
    } catch (e) {
      ok = false
      value = e
    }
    if (value === GONE) return never()
    n++
    const failed = ok ? (failure?.(value, call.args) ?? null) : value
    if (failed === null || n >= policy.attempts || !host.active() || !asks(call, policy, failed, { call: name, args: call.args, attempt: n })) {
      // Its outcome is what the thread records next (unless it was let go of: then it is made
      // again, and asks for its attempts): this weave never asks for them again.
      if (n > 1 && host.active()) log.settled(id)
      if (ok) return value
      throw value
    }
    const ended = clock.now()
    const row = { call: id, n, name, error: encodeError(failed), started: call.started, ended, due: ended + wait(policy, n, failed) }
    await new Promise<void>((resolve) => log.add(call.threadId, row, resolve))
    if (!host.active()) return never()
    await until(call, row.due, host, clock)
  }
}

/**
 * Does `failed` retry? A `retryOn` predicate that throws says no: the call ends with what the
 * attempt gave (the library's error, its class and code kept, or its answer), that error carries
 * a RetryOnThrew as its `retryOnError` field (recorded with it), and the weave warns of it.
 */
function asks(call: RetryingCall, policy: Policy, failed: unknown, info: RetryCallInfo): boolean {
  try {
    return retries(policy, failed, info)
  } catch (e) {
    const why = new RetryOnThrew(info.call, info.attempt, e)
    if (typeof failed === 'object' && failed !== null && Object.isExtensible(failed)) {
      Object.defineProperty(failed, 'retryOnError', { value: why, enumerable: true, writable: true, configurable: true })
    }
    warnOnce(call.config, call.threadId, why)
    return false
  }
}

/**
 * The wait (ms) after failed attempt n: the `retryAfterMs` its error carries (a server's
 * `Retry-After`, as undici's retry handler reads it), at most the policy's maximumInterval; else
 * the policy's back-off.
 */
function wait(policy: Policy, n: number, failed: unknown): number {
  const after = (failed as { retryAfterMs?: unknown } | null)?.retryAfterMs
  if (typeof after === 'number' && Number.isFinite(after) && after >= 0) return Math.min(Math.round(after), policy.maximumInterval)
  return delay(policy, n, Math.random())
}

/**
 * Waits until time `due` of the weave's clock, as a wait the call can be aborted out of (a timer
 * that fires early is armed again: src/time/timers.ts).
 */
function until(call: RetryingCall, due: number, host: RetryHost, clock: ScheduleClock): Promise<void> {
  if (due <= clock.now()) return Promise.resolve()
  return new Promise<void>((resolve, reject) => {
    waits++
    const cancel = timerAt(clock, due, () => {
      waits--
      call.abortHook = null
      resolve()
    })
    call.abortHook = (reason) => {
      cancel()
      waits--
      reject(reason)
    }
    host.waiting()
  })
}

/**
 * Retry policies: what a library, a thread type and a call declare, checked at the door, merged
 * (call over thread type over library, field by field) into one policy per call, and the two
 * questions the retry runner (run.ts) asks of it: does this failure retry, and how long to wait.
 *
 * Invariants:
 * - The wait after failed attempt n (n = 1, 2, …) is `delay(p, n, u)` for a uniform u in [0, 1):
 *   the interval min(initialInterval × backoffCoefficient^(n−1), maximumInterval), lessened by up
 *   to `jitter` of itself, in whole ms. So it is never more than the interval, never more than
 *   maximumInterval, and never less than (1 − jitter) of the interval (see `delayBounds`).
 * - A policy here is plain data and functions: none of it is recorded or becomes part of a call's
 *   key, so changing a policy never makes a record diverge.
 */
import { InvalidArgument, RaimentError } from '../errors.js'
import { valueText } from '../value-text.js'

/** One way to say which errors retry: a `code`, an error class, or a predicate. */
export type RetryOn = string | (abstract new (...args: never[]) => Error) | ((error: unknown, call: RetryCallInfo) => boolean)

/** What a `retryOn` predicate is told of the call besides the error. */
export interface RetryCallInfo {
  /** `lib.method` */
  readonly call: string
  /** The call's arguments (without a per-call `retry` option). */
  readonly args: readonly unknown[]
  /** The attempt that failed, from 1. */
  readonly attempt: number
}

/**
 * How a call is retried. Every field is optional: what a call leaves out comes from its thread
 * type, then from its library, then from the defaults below.
 */
export interface RetryPolicy {
  /** How many attempts in all, the first included (default 3); `Infinity` for no limit; 1 for none. */
  attempts?: number
  /** The wait (ms) after the first failed attempt (default 1000). */
  initialInterval?: number
  /** Each wait is this many times the one before (default 2; 1 for a constant wait). */
  backoffCoefficient?: number
  /** No wait is longer than this (ms, default 60000). */
  maximumInterval?: number
  /** Each wait is lessened by a random share of it, up to this fraction (0 to 1, default 0.2). */
  jitter?: number
  /**
   * Which errors retry: a `code` (`'ECONNRESET'`, `'RAIMENT_FETCH_STATUS'`), an error class
   * (`instanceof`), a predicate `(error, { call, args, attempt }) => boolean`, or a list of these
   * (any one matching). Default: the library's own (for `fetch`: network errors, timeouts and
   * HTTP 5xx and 429 of a request that is safe to repeat), or, where the library has none, every
   * error but an InvalidArgument.
   */
  retryOn?: RetryOn | readonly RetryOn[]
}

/** What an I/O library module exports as `retry` (src/libraries.ts). */
export interface LibraryRetry {
  /** The policy of the library's calls, unless the thread type or the call says otherwise. */
  policy?: RetryPolicy
  /**
   * Where a call passes a policy of its own: by method, the index of the argument that is an
   * options object; its `retry` field (a policy, or `false`) is taken off before the call is
   * keyed, recorded or made. (`fetch`: `{ request: 1 }`.)
   */
  callOption?: Readonly<Record<string, number>>
  /**
   * An answer that is a value and yet a failure worth retrying (an HTTP 503): the error that
   * stands for it in the journal and in `retryOn`, or null. When no attempt is left, the thread
   * gets the value itself.
   */
  failure?: (value: unknown, args: readonly unknown[]) => Error | null
}

/** A thread type's policies: by library (`fetch`) or by method (`fetch.request`); false: none. */
export type ThreadRetry = Readonly<Record<string, RetryPolicy | false>>

/** A policy with every field set, as the runner uses it. */
export interface Policy {
  readonly attempts: number
  readonly initialInterval: number
  readonly backoffCoefficient: number
  readonly maximumInterval: number
  readonly jitter: number
  readonly retryOn: readonly RetryOn[] | null
}

export const DEFAULTS: Omit<Policy, 'retryOn'> = Object.freeze({
  attempts: 3,
  initialInterval: 1000,
  backoffCoefficient: 2,
  maximumInterval: 60_000,
  jitter: 0.2,
})

const FIELDS = ['attempts', 'initialInterval', 'backoffCoefficient', 'maximumInterval', 'jitter', 'retryOn']


/**
 * Checks a policy where it is declared; `where` names the place in the message.
 * @throws InvalidArgument naming the field and the value that was wrong
 */
export function checkPolicy(p: unknown, where: string): asserts p is RetryPolicy {
  if (p === null || typeof p !== 'object' || Array.isArray(p)) throw new InvalidArgument(`${where}: a retry policy is an object such as { attempts: 5 }, got ${valueText(p)}`)
  const o = p as Record<string, unknown>
  for (const k of Object.keys(o)) {
    if (!FIELDS.includes(k)) throw new InvalidArgument(`${where}: unknown retry policy field '${k}'; the fields are: ${FIELDS.join(', ')}`)
  }
  const num = (k: string, ok: (n: number) => boolean, what: string): void => {
    const v = o[k]
    if (v !== undefined && !(typeof v === 'number' && ok(v))) throw new InvalidArgument(`${where}: retry ${k} must be ${what}, got ${valueText(v)}`)
  }
  num('attempts', (n) => n === Infinity || (Number.isInteger(n) && n >= 1), 'a whole number from 1 up (or Infinity)')
  num('initialInterval', (n) => Number.isFinite(n) && n >= 0, 'a number of ms from 0 up')
  num('backoffCoefficient', (n) => Number.isFinite(n) && n >= 1, 'a number from 1 up')
  num('maximumInterval', (n) => Number.isFinite(n) && n >= 0, 'a number of ms from 0 up')
  num('jitter', (n) => n >= 0 && n <= 1, 'a fraction from 0 to 1')
  if (o['retryOn'] !== undefined) {
    const list = Array.isArray(o['retryOn']) ? (o['retryOn'] as unknown[]) : [o['retryOn']]
    for (const r of list) {
      if (typeof r !== 'string' && typeof r !== 'function') {
        throw new InvalidArgument(`${where}: retryOn takes error codes (strings), error classes and predicates (or a list of them), got ${valueText(r)}`)
      }
    }
  }
}

/** Checks a library module's `retry` export. */
export function checkLibraryRetry(r: unknown, where: string): asserts r is LibraryRetry {
  if (r === null || typeof r !== 'object') throw new InvalidArgument(`${where}: 'retry' must be an object { policy?, callOption?, failure? }, got ${valueText(r)}`)
  const o = r as Record<string, unknown>
  for (const k of Object.keys(o)) {
    if (k !== 'policy' && k !== 'callOption' && k !== 'failure') throw new InvalidArgument(`${where}: unknown field 'retry.${k}'; the fields are: policy, callOption, failure`)
  }
  if (o['policy'] !== undefined) checkPolicy(o['policy'], `${where}, retry.policy`)
  if (o['failure'] !== undefined && typeof o['failure'] !== 'function') throw new InvalidArgument(`${where}: retry.failure must be a function, got ${valueText(o['failure'])}`)
  const opt = o['callOption']
  if (opt !== undefined) {
    if (opt === null || typeof opt !== 'object') throw new InvalidArgument(`${where}: retry.callOption must map method names to argument indexes, got ${valueText(opt)}`)
    for (const [m, i] of Object.entries(opt)) {
      if (!(Number.isInteger(i) && (i as number) >= 0)) throw new InvalidArgument(`${where}: retry.callOption.${m} must be an argument index from 0 up, got ${valueText(i)}`)
    }
  }
}

/** Checks a thread type's `retry`: policies (or false) by library or `library.method` it uses. */
export function checkThreadRetry(r: unknown, uses: readonly string[]): asserts r is ThreadRetry {
  if (r === null || typeof r !== 'object' || Array.isArray(r)) {
    throw new InvalidArgument(`thread(): 'retry' must map library names (or 'library.method') to retry policies, such as { fetch: { attempts: 5 } }, got ${valueText(r)}`)
  }
  for (const [k, p] of Object.entries(r)) {
    const lib = k.includes('.') ? k.slice(0, k.indexOf('.')) : k
    if (!uses.includes(lib)) throw new InvalidArgument(`thread(): retry names '${k}', but the thread type uses only ${uses.join(', ')}`)
    if (p !== false) checkPolicy(p, `thread(): retry['${k}']`)
  }
}

/** The policy of one call: `layers` from the most general (library) to the most particular. */
export function mergePolicy(layers: ReadonlyArray<RetryPolicy | false | undefined>): Policy | null {
  let out: Record<string, unknown> | null = null
  for (const l of layers) {
    if (l === undefined) continue
    if (l === false) {
      out = null
      continue
    }
    out ??= {}
    for (const k of FIELDS) if ((l as Record<string, unknown>)[k] !== undefined) out[k] = (l as Record<string, unknown>)[k]
  }
  if (out === null) return null
  const retryOn = out['retryOn']
  const p: Policy = {
    attempts: (out['attempts'] as number | undefined) ?? DEFAULTS.attempts,
    initialInterval: (out['initialInterval'] as number | undefined) ?? DEFAULTS.initialInterval,
    backoffCoefficient: (out['backoffCoefficient'] as number | undefined) ?? DEFAULTS.backoffCoefficient,
    maximumInterval: (out['maximumInterval'] as number | undefined) ?? DEFAULTS.maximumInterval,
    jitter: (out['jitter'] as number | undefined) ?? DEFAULTS.jitter,
    retryOn: retryOn === undefined ? null : Array.isArray(retryOn) ? (retryOn as RetryOn[]) : [retryOn as RetryOn],
  }
  return p.attempts <= 1 ? null : p
}

/** The interval after failed attempt n (from 1), before jitter: never above maximumInterval. */
export function interval(p: Policy, n: number): number {
  if (p.initialInterval === 0) return 0
  return Math.min(p.initialInterval * Math.pow(p.backoffCoefficient, n - 1), p.maximumInterval)
}

/** The least and the most (whole ms) that the wait after failed attempt n can be. */
export function delayBounds(p: Policy, n: number): [number, number] {
  const base = interval(p, n)
  return [Math.round(base * (1 - p.jitter)), Math.round(base)]
}

/** The wait (whole ms) after failed attempt n, for a uniform `u` in [0, 1). */
export function delay(p: Policy, n: number, u: number): number {
  const [lo, hi] = delayBounds(p, n)
  return Math.min(hi, lo + Math.floor(u * (hi - lo + 1)))
}

/** Does `error`, the failure of attempt `info.attempt`, retry under `p`? */
export function retries(p: Policy, error: unknown, info: RetryCallInfo): boolean {
  const list = p.retryOn
  if (list === null) return !(error instanceof RaimentError && error.code === 'RAIMENT_INVALID_ARGUMENT')
  for (const r of list) {
    if (typeof r === 'string') {
      if (typeof error === 'object' && error !== null && (error as { code?: unknown }).code === r) return true
    } else if (isClass(r)) {
      if (error instanceof r) return true
    } else if ((r)(error, info)) return true
  }
  return false
}

/** A class (an error class in `retryOn`) rather than a predicate: it has a prototype of its own. */
function isClass(f: unknown): f is abstract new (...args: never[]) => Error {
  return typeof f === 'function' && (f.prototype instanceof Error || f === Error)
}

/**
 * Retry policies on their own: the back-off schedule (the interval grows by the coefficient from
 * the initial one, never past the maximum), the jitter's bounds, how layers merge (call over
 * thread type over library), and which errors retry (by code, class, predicate; fetch's default).
 *
 * Reproduce a failure with FC_SEED=<seed>.
 */
import { fc, test } from '@fast-check/vitest'
import { describe, expect, it } from 'vitest'
import { InvalidArgument, RaimentError } from 'raiment'
import { FetchError } from '../io-libs/fetch.js'
import { httpRetry, transient } from '../io-libs/_http-retry.js'
import { checkPolicy, delay, delayBounds, interval, mergePolicy, retries, type Policy, type RetryPolicy } from '../src/retry/policy.js'
import { callRetry } from '../src/retry/resolve.js'

const seed = process.env['FC_SEED'] !== undefined ? Number(process.env['FC_SEED']) : Date.now() % 2 ** 31
console.log(`retry-policy: fast-check seed ${seed} (FC_SEED=${seed} to reproduce)`)
const params = { seed, numRuns: 200 }

const policyArb: fc.Arbitrary<Policy> = fc
  .record({
    attempts: fc.oneof(fc.integer({ min: 2, max: 50 }), fc.constant(Infinity)),
    initialInterval: fc.integer({ min: 0, max: 10_000 }),
    backoffCoefficient: fc.double({ min: 1, max: 10, noNaN: true }),
    maximumInterval: fc.integer({ min: 0, max: 600_000 }),
    jitter: fc.double({ min: 0, max: 1, noNaN: true }),
  })
  .map((p) => mergePolicy([p])!)

const attempt = fc.integer({ min: 1, max: 200 })
const unit = fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true })

describe('the back-off schedule', () => {
  test.prop([policyArb, attempt], params)('starts at the initial interval, grows by the coefficient, never past the maximum', (p, n) => {
    expect(interval(p, 1)).toBe(Math.min(p.initialInterval, p.maximumInterval))
    expect(interval(p, n)).toBeLessThanOrEqual(p.maximumInterval)
    expect(interval(p, n + 1)).toBeGreaterThanOrEqual(interval(p, n))
    const grown = interval(p, n) * p.backoffCoefficient
    expect(interval(p, n + 1)).toBeCloseTo(Math.min(grown, p.maximumInterval), 6)
  })

  test.prop([policyArb, attempt, unit], params)('a wait is whole ms within the jitter bounds: no more than the interval, no less than (1 - jitter) of it', (p, n, u) => {
    const [lo, hi] = delayBounds(p, n)
    const d = delay(p, n, u)
    expect(Number.isInteger(d)).toBe(true)
    expect(d).toBeGreaterThanOrEqual(lo)
    expect(d).toBeLessThanOrEqual(hi)
    expect(hi).toBeLessThanOrEqual(Math.round(p.maximumInterval))
    expect(lo).toBeGreaterThanOrEqual(Math.round(interval(p, n) * (1 - p.jitter)))
  })

  test.prop([policyArb.map((p) => ({ ...p, jitter: 0 })), attempt, unit], params)('without jitter the wait is the interval', (p, n, u) => {
    expect(delay(p, n, u)).toBe(Math.round(interval(p, n)))
  })

  test.prop([policyArb, attempt], params)('the jitter covers its whole range', (p, n) => {
    const [lo, hi] = delayBounds(p, n)
    expect(delay(p, n, 0)).toBe(lo)
    expect(delay(p, n, 1 - Number.EPSILON)).toBe(hi)
  })
})

describe('merging policies', () => {
  const partial: fc.Arbitrary<RetryPolicy | false | undefined> = fc.oneof(
    fc.constant(undefined),
    fc.constant(false as const),
    fc.record({ attempts: fc.integer({ min: 1, max: 9 }), jitter: fc.double({ min: 0, max: 1, noNaN: true }) }, { requiredKeys: [] }),
  )

  test.prop([fc.array(partial, { maxLength: 4 })], params)('each field comes from the last layer that sets it; false drops what came before', (layers) => {
    const p = mergePolicy(layers)
    const lastFalse = layers.lastIndexOf(false)
    const after = layers.slice(lastFalse + 1).filter((l): l is RetryPolicy => l !== undefined && l !== false)
    if (after.length === 0) {
      expect(p).toBeNull()
      return
    }
    const pick = <K extends keyof RetryPolicy>(k: K): RetryPolicy[K] | undefined => after.reduce<RetryPolicy[K] | undefined>((v, l) => (l[k] !== undefined ? l[k] : v), undefined)
    const attempts = pick('attempts') ?? 3
    if (attempts <= 1) expect(p).toBeNull()
    else expect(p).toMatchObject({ attempts, jitter: pick('jitter') ?? 0.2 })
  })

  it('a call option is taken off the arguments, and checked', () => {
    const lib = { name: 'fetch', retry: httpRetry(FetchError) }
    const args = ['http://x/', { method: 'POST', retry: { attempts: 7 } }]
    const r = callRetry(lib, 'request', args, { fetch: { attempts: 2, initialInterval: 5 } })
    expect(r.args).toEqual(['http://x/', { method: 'POST' }])
    expect(args[1]).toEqual({ method: 'POST', retry: { attempts: 7 } })
    expect(r.policy).toMatchObject({ attempts: 7, initialInterval: 5, maximumInterval: 30_000 })
    expect(callRetry(lib, 'request', ['http://x/', { retry: false }], null).policy).toBeNull()
    expect(() => callRetry(lib, 'request', ['http://x/', { retry: { attempts: 0 } }], null)).toThrow(InvalidArgument)
    expect(() => checkPolicy({ jitter: -1 }, 'here')).toThrow(/here: retry jitter must be a fraction from 0 to 1, got -1/)
    // NaN and Infinity as they were written (JSON would say null), a string quoted.
    expect(() => checkPolicy({ initialInterval: Number.NaN }, 'here')).toThrow(/^here: retry initialInterval must be a number of ms from 0 up, got NaN$/)
    expect(() => checkPolicy({ maximumInterval: Infinity }, 'here')).toThrow(/^here: retry maximumInterval must be a number of ms from 0 up, got Infinity$/)
    expect(() => checkPolicy({ attempts: '3' }, 'here')).toThrow(/^here: retry attempts must be a whole number from 1 up \(or Infinity\), got "3"$/)
  })
})

describe('which errors retry', () => {
  class Busy extends Error {}
  const info = { call: 'x.y', args: [], attempt: 1 }
  const on = (retryOn: RetryPolicy['retryOn']): Policy => mergePolicy([{ retryOn }])!

  it('by code, by class, by predicate, by a list; by default any error but a bad argument', () => {
    const coded = Object.assign(new Error('x'), { code: 'EBUSY' })
    expect(retries(on('EBUSY'), coded, info)).toBe(true)
    expect(retries(on('EBUSY'), new Error('x'), info)).toBe(false)
    expect(retries(on(Busy), new Busy(), info)).toBe(true)
    expect(retries(on(Busy), new Error(), info)).toBe(false)
    expect(retries(on((e, c) => c.attempt < 2 && e instanceof TypeError), new TypeError(), info)).toBe(true)
    expect(retries(on(['ENOPE', Busy]), new Busy(), info)).toBe(true)
    expect(retries(mergePolicy([{}])!, new Error(), info)).toBe(true)
    expect(retries(mergePolicy([{}])!, new InvalidArgument('no'), info)).toBe(false)
    expect(retries(mergePolicy([{}])!, new RaimentError('RAIMENT_OTHER', 'x'), info)).toBe(true)
  })

  const method = fc.constantFrom('GET', 'HEAD', 'PUT', 'DELETE', 'OPTIONS', 'POST', 'PATCH')
  const status = fc.integer({ min: 400, max: 599 })
  const keyed = fc.constantFrom('none', 'idempotent', 'header')
  const requestArgs = (m: string, k: string): unknown[] => ['http://x/', { method: m, ...(k === 'idempotent' ? { idempotent: true } : {}), ...(k === 'header' ? { headers: { 'idempotency-KEY': 'k' } } : {}) }]
  const safe = (m: string, k: string): boolean => !['POST', 'PATCH'].includes(m) || k !== 'none'

  test.prop([method, keyed, status], params)('fetch: an HTTP 5xx or 429 answer retries when the request is safe to repeat', (m, k, s) => {
    const args = requestArgs(m, k)
    const failure = httpRetry(FetchError).failure!({ status: s, statusText: 'X' }, args)
    expect(failure).toMatchObject({ code: 'RAIMENT_FETCH_STATUS', status: s, method: m })
    expect(transient(failure, { call: 'fetch.request', args, attempt: 1 })).toBe(safe(m, k) && (s >= 500 || s === 429))
    expect(httpRetry(FetchError).failure!({ status: s - 200, statusText: 'OK' }, args)).toBeNull()
  })

  test.prop([method, keyed, fc.constantFrom('ECONNRESET', 'ECONNREFUSED', 'UND_ERR_SOCKET', 'EAI_AGAIN', 'CERT_HAS_EXPIRED', 'ERR_INVALID_URL')], params)(
    'fetch: a network error retries when it is transient and the request safe to repeat; a timeout too',
    (m, k, code) => {
      const args = requestArgs(m, k)
      const failed = new FetchError('RAIMENT_FETCH_FAILED', 'x', { method: m, url: 'http://x/' }, { cause: Object.assign(new Error(code), { code }) })
      const transientCode = !['CERT_HAS_EXPIRED', 'ERR_INVALID_URL'].includes(code)
      expect(transient(failed, { call: 'fetch.request', args, attempt: 1 })).toBe(safe(m, k) && transientCode)
      const timedOut = new FetchError('RAIMENT_FETCH_TIMEOUT', 'x', { method: m, url: 'http://x/' })
      expect(transient(timedOut, { call: 'fetch.request', args, attempt: 1 })).toBe(safe(m, k))
      expect(transient(new FetchError('RAIMENT_FETCH_BAD_JSON', 'x', { method: m, url: 'http://x/' }), { call: 'fetch.request', args, attempt: 1 })).toBe(false)
    },
  )
})

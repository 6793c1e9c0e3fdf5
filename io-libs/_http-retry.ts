/**
 * How `fetch` retries by default (docs/retries.md): a request that is safe to send again (an
 * idempotent method: GET, HEAD, OPTIONS, PUT, DELETE, TRACE; or one that carries an idempotency
 * key: `idempotent: true` or an `Idempotency-Key` header) is retried after a transient network
 * error, a timeout, or an HTTP 5xx or 429 answer: 3 attempts, 1 s then 2 s apart (less up to 20 %
 * of jitter). An answer with an HTTP error status stands as a FetchError `RAIMENT_FETCH_STATUS`
 * (with its `status`) in the journal and in `retryOn`; when no attempt is left, the thread gets
 * the answer itself, as without retries. An answer's `Retry-After` (seconds or an HTTP-date) is
 * its error's `retryAfterMs`, which the retry waits instead of its back-off (src/retry/run.ts).
 */
import type { LibraryRetry, RetryCallInfo } from 'raiment'

/** The codes of network errors (Node's, undici's) that a later attempt may not meet. */
export const TRANSIENT_CODES: ReadonlySet<string> = new Set([
  'ECONNRESET', 'ECONNREFUSED', 'ECONNABORTED', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN',
  'ENETDOWN', 'ENETUNREACH', 'EHOSTDOWN', 'EHOSTUNREACH',
  'UND_ERR_SOCKET', 'UND_ERR_CLOSED', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT',
])

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE'])

interface Options {
  method?: unknown
  idempotent?: unknown
  headers?: unknown
}

/** Can this request be sent again without doing its effect twice? */
export function safeToRepeat(args: readonly unknown[]): boolean {
  const o = (args[1] ?? {}) as Options
  const method = typeof o.method === 'string' ? o.method.toUpperCase() : 'GET'
  if (SAFE_METHODS.has(method) || o.idempotent === true) return true
  const headers = o.headers
  return typeof headers === 'object' && headers !== null && Object.keys(headers).some((k) => k.toLowerCase() === 'idempotency-key')
}

/** The default `retryOn` of fetch: a transient failure of a request that is safe to repeat. */
export function transient(error: unknown, call: RetryCallInfo): boolean {
  if (!safeToRepeat(call.args)) return false
  const e = error as { code?: unknown; status?: unknown; cause?: { code?: unknown } }
  switch (e?.code) {
    case 'RAIMENT_FETCH_TIMEOUT':
      return true
    case 'RAIMENT_FETCH_STATUS':
      return typeof e.status === 'number' && (e.status >= 500 || e.status === 429)
    case 'RAIMENT_FETCH_FAILED': {
      const code = e.cause?.code
      return typeof code === 'string' && TRANSIENT_CODES.has(code)
    }
    default:
      return false
  }
}

type StatusError = new (code: string, message: string, request: { method: string; url: string; status?: number; retryAfterMs?: number }) => Error

/**
 * A `Retry-After` header's wait in ms: delay-seconds, or an HTTP-date from `now` (0 once past);
 * undefined when there is none or it says neither.
 */
export function retryAfterMs(value: unknown, now = Date.now()): number | undefined {
  if (typeof value !== 'string') return undefined
  const v = value.trim()
  if (/^\d+$/.test(v)) return Number(v) * 1000
  const at = Date.parse(v)
  return Number.isNaN(at) ? undefined : Math.max(0, at - now)
}

/** fetch's `retry` declaration; `FetchError` makes the error that stands for an HTTP error status. */
export function httpRetry(FetchError: StatusError): LibraryRetry {
  return {
    policy: { attempts: 3, initialInterval: 1000, backoffCoefficient: 2, maximumInterval: 30_000, jitter: 0.2, retryOn: transient },
    callOption: { request: 1 },
    failure(value, args) {
      const res = value as { status?: unknown; statusText?: unknown; headers?: Record<string, unknown> }
      if (typeof res?.status !== 'number' || res.status < 400) return null
      const o = (args[1] ?? {}) as Options
      const method = typeof o.method === 'string' ? o.method.toUpperCase() : 'GET'
      const url = String(args[0])
      const text = typeof res.statusText === 'string' && res.statusText !== '' ? ` ${res.statusText}` : ''
      const after = retryAfterMs(res.headers?.['retry-after'])
      return new FetchError('RAIMENT_FETCH_STATUS', `HTTP ${res.status}${text} from ${method} ${url}`, { method, url, status: res.status, ...(after === undefined ? {} : { retryAfterMs: after }) })
    },
  }
}

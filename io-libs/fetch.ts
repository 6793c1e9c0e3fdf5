/**
 * fetch: HTTP requests, through the global `fetch`. The status, headers and body of every
 * response are recorded, so a resumed or replayed thread gets the same responses without a
 * network. At most 16 requests per weave are in flight at once; the others wait their turn.
 *
 * A request in flight when the weave died is sent again on resume, with the same call id: with
 * `idempotent: true` the call id goes out as an `Idempotency-Key` header, so a server that honours
 * it does the effect once.
 *
 * Any HTTP status is a response, not an error (as with `fetch`). Errors are `FetchError`s with a
 * stable `code`: RAIMENT_FETCH_FAILED (network: the cause holds Node's error, e.g. ECONNREFUSED),
 * RAIMENT_FETCH_TIMEOUT, RAIMENT_FETCH_BAD_JSON (which never quotes the body: errors are recorded
 * as they are, and it may hold a secret); bad arguments are InvalidArgument.
 */
import { callContext, InvalidArgument, RaimentError, registerError } from 'raiment'
import type { LibraryApi, RetryPolicy } from 'raiment'
import { describe } from './_describe.js'
import { httpRetry } from './_http-retry.js'

export const concurrency = 16
/** Authorization, Cookie, Set-Cookie and what the weave adds are recorded as markers: docs/secrets.md. */
export { secrets } from './_fetch-secrets.js'

export interface RequestOptions {
  /** GET (default), POST, PUT, PATCH, DELETE, HEAD… */
  method?: string
  headers?: Record<string, string>
  /** A string or bytes, sent as they are; a plain object or array, sent as JSON. */
  body?: string | Uint8Array | Record<string, unknown> | unknown[]
  /**
   * How to read the response body; default JSON when the response says so, else text. An error answer (400 and up) whose body is not JSON comes as text under 'json' too.
   * A weave's `response` secret paths search a body read as JSON; one read as text or bytes is recorded sealed whole where it holds a path's name (docs/secrets.md).
   */
  as?: 'text' | 'json' | 'bytes'
  /** Send the call id as an `Idempotency-Key` header: stable across resume. */
  idempotent?: boolean
  /** Fail with RAIMENT_FETCH_TIMEOUT if the response (body included) takes longer; at most 2^31 - 1 (24.8 days). */
  timeoutMs?: number
  /** This request's retry policy, over the thread type's and fetch's own; false: one attempt (docs/retries.md). */
  retry?: RetryPolicy | false
}

export interface FetchResponse<B = unknown> {
  status: number
  statusText: string
  /** Header names in lower case; repeated headers joined with ', '. */
  headers: Record<string, string>
  body: B
}

/** A request that got no usable response. `code` says why; the request is in `method`, `url`. */
export class FetchError extends RaimentError {
  readonly method: string
  readonly url: string
  readonly status?: number
  /** How long the server asked to wait before asking again (its `Retry-After`), in ms; a retry waits that instead of its back-off. */
  readonly retryAfterMs?: number
  constructor(code: string, message: string, request: { method: string; url: string; status?: number; retryAfterMs?: number }, options?: { cause?: unknown }) {
    super(code, message, options)
    this.method = request.method
    this.url = request.url
    if (request.status !== undefined) this.status = request.status
    if (request.retryAfterMs !== undefined) this.retryAfterMs = request.retryAfterMs
  }
}
registerError(FetchError)

/** Retries of transient failures of requests safe to repeat, and where a request gives its own (io-libs/_http-retry.ts). */
export const retry = httpRetry(FetchError)

const OPTIONS = ['method', 'headers', 'body', 'as', 'idempotent', 'timeoutMs']

/** The longest timeoutMs: AbortSignal.timeout arms a Node timer, and a longer one fires at once. */
const MAX_TIMEOUT_MS = 2 ** 31 - 1

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null) return false
  const proto = Object.getPrototypeOf(v) as unknown
  return proto === Object.prototype || proto === null
}

/** An object as JSON (it says more than its class); anything else as the other libraries show it. */
function show(v: unknown): string {
  if (typeof v !== 'object' || v === null) return describe(v)
  try {
    return JSON.stringify(v)
  } catch {
    return describe(v)
  }
}

interface Prepared {
  url: string
  method: string
  headers: Headers
  body: string | Uint8Array | undefined
  as: 'text' | 'json' | 'bytes' | undefined
  timeoutMs: number | undefined
}

/** Validates a request at the door, with the value that was wrong in the message. */
function prepare(url: unknown, options: unknown, callId: () => string): Prepared {
  if (typeof url !== 'string') throw new InvalidArgument(`fetch.request(url, options?) expects url as a string, got ${show(url)}`)
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    throw new InvalidArgument(`fetch.request: ${show(url)} is not an absolute URL (such as 'https://example.com/x')`)
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new InvalidArgument(`fetch.request: only http: and https: URLs can be fetched, got ${show(url)}`)
  }
  const o = options ?? {}
  if (!isPlainObject(o)) throw new InvalidArgument(`fetch.request(url, options?) expects options as an object, got ${show(options)}`)
  for (const k of Object.keys(o)) {
    if (!OPTIONS.includes(k)) throw new InvalidArgument(`fetch.request: unknown option '${k}'; the options are: ${OPTIONS.join(', ')}`)
  }
  const method = o.method ?? 'GET'
  if (typeof method !== 'string' || !/^[A-Za-z]+$/.test(method)) throw new InvalidArgument(`fetch.request: method must be an HTTP method such as 'POST', got ${show(method)}`)
  const upper = method.toUpperCase()

  const headers = new Headers()
  if (o.headers !== undefined) {
    if (!isPlainObject(o.headers)) throw new InvalidArgument(`fetch.request: headers must be an object of strings, got ${show(o.headers)}`)
    for (const [k, v] of Object.entries(o.headers)) {
      if (typeof v !== 'string') throw new InvalidArgument(`fetch.request: header '${k}' must be a string, got ${show(v)}`)
      try {
        headers.set(k, v)
      } catch {
        // Neither the value nor Node's message (which quotes it) is shown: it may be a secret.
        throw new InvalidArgument(`fetch.request: header ${show(k)} is not valid: a name is letters, digits and !#$%&'*+-.^_\`|~, a value has no line break or NUL (the value is not shown: it may be secret)`)
      }
    }
  }

  let body: string | Uint8Array | undefined
  if (o.body !== undefined) {
    if (upper === 'GET' || upper === 'HEAD') throw new InvalidArgument(`fetch.request: a ${upper} request cannot have a body; use method 'POST' (or another) to send one`)
    if (typeof o.body === 'string' || o.body instanceof Uint8Array) body = o.body
    else if (isPlainObject(o.body) || Array.isArray(o.body)) {
      try {
        body = JSON.stringify(o.body)
      } catch (e) {
        throw new InvalidArgument(`fetch.request: the body cannot be sent as JSON: ${(e as Error).message}`)
      }
      if (!headers.has('content-type')) headers.set('content-type', 'application/json')
    } else {
      throw new InvalidArgument(`fetch.request: body must be a string, a Uint8Array, or a plain object or array (sent as JSON), got ${show(o.body)}`)
    }
  }

  if (o.as !== undefined && o.as !== 'text' && o.as !== 'json' && o.as !== 'bytes') {
    throw new InvalidArgument(`fetch.request: 'as' must be 'text', 'json' or 'bytes', got ${show(o.as)}`)
  }
  if (o.idempotent !== undefined && typeof o.idempotent !== 'boolean') throw new InvalidArgument(`fetch.request: idempotent must be true or false, got ${show(o.idempotent)}`)
  if (o.idempotent === true) {
    if (headers.has('idempotency-key')) {
      throw new InvalidArgument(`fetch.request: pass either idempotent: true (the call id is sent as Idempotency-Key) or your own Idempotency-Key header, not both`)
    }
    headers.set('idempotency-key', callId())
  }
  const t = o.timeoutMs
  if (t !== undefined && !(typeof t === 'number' && t > 0 && t <= MAX_TIMEOUT_MS)) {
    throw new InvalidArgument(`fetch.request: timeoutMs must be a number of milliseconds above 0 and at most ${MAX_TIMEOUT_MS} (24.8 days, the longest a Node timer holds), got ${show(t)}`)
  }
  return { url, method: upper, headers, body, as: o.as, timeoutMs: t }
}

/** Why JSON.parse refused a body, without the text it quotes (V8: `Unexpected token 'x', "{…" is not valid JSON`). */
function parseFault(e: unknown): string {
  const m = String((e as Error | undefined)?.message ?? '')
  const q = m.search(/['"]/)
  return (q < 0 ? m : m.slice(0, q)).replace(/[\s,:]+$/, '') || 'not JSON'
}

function isJsonType(contentType: string | null): boolean {
  if (contentType === null) return false
  const type = contentType.split(';')[0]!.trim().toLowerCase()
  return type === 'application/json' || type.endsWith('+json')
}

const fetchLib = {
  /**
   * Sends an HTTP request and reads the whole response.
   * @throws FetchError RAIMENT_FETCH_FAILED (no response: refused, DNS, reset…; `cause` holds
   *   Node's error), RAIMENT_FETCH_TIMEOUT (after `timeoutMs`), RAIMENT_FETCH_BAD_JSON (a body
   *   read as JSON that is not JSON); an HTTP error status is a response, not an error
   * @throws InvalidArgument for a bad URL or option
   * @example
   * const res = await this.fetch.request('https://api.example.com/orders', {
   *   method: 'POST', body: { sku: 'A1' }, idempotent: true, timeoutMs: 10_000,
   * })
   * if (res.status !== 201) throw new Error(`order refused: ${res.status}`)
   */
  async request(url: string, options?: RequestOptions): Promise<FetchResponse> {
    const ctx = callContext()
    const signal = ctx.signal
    const req = prepare(url, options, () => ctx.callId)
    const timeout = req.timeoutMs === undefined ? null : AbortSignal.timeout(req.timeoutMs)
    const where = { method: req.method, url: req.url }
    try {
      const res = await fetch(req.url, {
        method: req.method,
        headers: req.headers,
        ...(req.body === undefined ? {} : { body: req.body }),
        signal: timeout === null ? signal : AbortSignal.any([signal, timeout]),
      })
      const headers: Record<string, string> = {}
      res.headers.forEach((v, k) => {
        headers[k] = k in headers ? `${headers[k]}, ${v}` : v
      })
      const as = req.as ?? (isJsonType(res.headers.get('content-type')) ? 'json' : 'text')
      let body: unknown
      if (as === 'bytes') body = new Uint8Array(await res.arrayBuffer())
      else {
        const text = await res.text()
        if (as === 'text') body = text
        else if (text.trim() === '') body = null
        else {
          try {
            body = JSON.parse(text)
          } catch (e) {
            // An error answer that is not JSON (a proxy's HTML 503 page): its status is what
            // matters (a retry looks at it), and its body comes as text.
            if (res.status >= 400) return { status: res.status, statusText: res.statusText, headers, body: text }
            // Not quoted: errors are recorded as they are, and the body may hold a secret (a
            // `response` path's token, in a body cut short).
            throw new FetchError(
              'RAIMENT_FETCH_BAD_JSON',
              `${req.method} ${req.url} answered ${res.status} with a body that is not JSON (${parseFault(e)}; ${text.length} characters, content-type ${res.headers.get('content-type') ?? 'none'}; the body is not shown: it may hold a secret). Pass as: 'text' to read it as text.`,
              { ...where, status: res.status },
            )
          }
        }
      }
      return { status: res.status, statusText: res.statusText, headers, body }
    } catch (e) {
      if (e instanceof FetchError) throw e
      // Killed or shutting down: the weft discards this outcome; keep the reason.
      if (signal.aborted) throw e
      if (timeout?.aborted) {
        throw new FetchError('RAIMENT_FETCH_TIMEOUT', `${req.method} ${req.url} took longer than timeoutMs (${req.timeoutMs} ms)`, where, { cause: e })
      }
      const cause = (e as Error).cause ?? e
      const code = (cause as { code?: unknown }).code
      const why = (cause as Error).message ?? String(cause)
      throw new FetchError(
        'RAIMENT_FETCH_FAILED',
        `${req.method} ${req.url} failed with no response: ${why}${typeof code === 'string' && !why.includes(code) ? ` (${code})` : ''}`,
        where,
        { cause },
      )
    }
  },
}
export default fetchLib

type Base = LibraryApi<typeof fetchLib>

export const threadSide = {
  /**
   * A GET request (`request(url, { ...options, method: 'GET' })`).
   * @example const { body } = await this.fetch.get('https://api.example.com/orders/7')
   */
  async get(this: Base, url: string, options?: Omit<RequestOptions, 'method' | 'body'>): Promise<FetchResponse> {
    return this.request(url, { ...options, method: 'GET' })
  },
  /**
   * A POST request with a body (`request(url, { ...options, method: 'POST', body })`).
   * @example await this.fetch.post('https://api.example.com/orders', { sku: 'A1' }, { idempotent: true })
   */
  async post(this: Base, url: string, body: RequestOptions['body'], options?: Omit<RequestOptions, 'method' | 'body'>): Promise<FetchResponse> {
    return this.request(url, { ...options, method: 'POST', body })
  },
}

type Opts = Omit<RequestOptions, 'as'>
type NoBody = Omit<RequestOptions, 'method' | 'body' | 'as'>

/** The thread-side fetch: the body's type follows `as`. */
export interface FetchApi {
  request(url: string, options: Opts & { as: 'text' }): Promise<FetchResponse<string>>
  request(url: string, options: Opts & { as: 'bytes' }): Promise<FetchResponse<Uint8Array>>
  request<T = unknown>(url: string, options?: RequestOptions): Promise<FetchResponse<T>>
  get(url: string, options: NoBody & { as: 'text' }): Promise<FetchResponse<string>>
  get(url: string, options: NoBody & { as: 'bytes' }): Promise<FetchResponse<Uint8Array>>
  get<T = unknown>(url: string, options?: Omit<RequestOptions, 'method' | 'body'>): Promise<FetchResponse<T>>
  post(url: string, body: RequestOptions['body'], options: NoBody & { as: 'text' }): Promise<FetchResponse<string>>
  post(url: string, body: RequestOptions['body'], options: NoBody & { as: 'bytes' }): Promise<FetchResponse<Uint8Array>>
  post<T = unknown>(url: string, body: RequestOptions['body'], options?: Omit<RequestOptions, 'method' | 'body'>): Promise<FetchResponse<T>>
}


/**
 * What is secret in fetch's calls (docs/secrets.md): the Authorization, Proxy-Authorization,
 * Cookie and Set-Cookie headers, of requests and responses, always; and what a weave adds:
 * `headers` (more header names, any case), `body` (dot paths into a JSON request body) and
 * `response` (dot paths into a response body read as JSON). A body not read as JSON (`as: 'text'`
 * or `'bytes'`, an error page) has no paths: it is sealed whole where it holds the name a
 * `response` path ends with (`access_token`, any case), or any body where a path names no key
 * (`*`, `0`); it is recorded as it is otherwise.
 */
import { markPaths } from 'raiment'
import type { LibrarySecrets, Mark, SecretAdditions } from 'raiment'

const ALWAYS = ['authorization', 'proxy-authorization', 'cookie', 'set-cookie']

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null) return false
  const proto = Object.getPrototypeOf(v) as unknown
  return proto === Object.prototype || proto === null
}

function secretNames(added: SecretAdditions): Set<string> {
  return new Set([...ALWAYS, ...(added['headers'] ?? []).map((h) => h.toLowerCase())])
}

/** The headers with the secret ones marked (a copy, or the headers themselves when none is). */
function markHeaders(headers: unknown, names: Set<string>, mark: Mark): unknown {
  if (!isPlainObject(headers)) return headers
  let out: Record<string, unknown> | null = null
  for (const [k, v] of Object.entries(headers)) {
    if (names.has(k.toLowerCase()) && v !== undefined) (out ??= { ...headers })[k] = mark(v)
  }
  return out ?? headers
}

export const secrets: LibrarySecrets = {
  kinds: {
    headers: 'more header names (any case), secret in requests and responses',
    body: 'dot paths into a JSON request body (an object or array), such as password or card.number',
    response: 'dot paths into a response body read as JSON, such as access_token',
  },
  args(method, args, mark, added) {
    const o = args[1]
    if (method !== 'request' || !isPlainObject(o)) return args
    const headers = markHeaders(o.headers, secretNames(added), mark)
    const paths = added['body']
    const body = paths !== undefined && (isPlainObject(o.body) || Array.isArray(o.body)) ? markPaths(o.body, paths, mark) : o.body
    if (headers === o.headers && body === o.body) return args
    return [args[0], { ...o, ...(o.headers === undefined ? {} : { headers }), ...(o.body === undefined ? {} : { body }) }, ...args.slice(2)]
  },
  outcome(method, value, mark, added) {
    if (method !== 'request' || !isPlainObject(value)) return value
    const headers = markHeaders(value.headers, secretNames(added), mark)
    const paths = added['response']
    const body = paths === undefined ? value.body : typeof value.body === 'string' || value.body instanceof Uint8Array ? markWhole(value.body, paths, mark) : markPaths(value.body, paths, mark)
    return headers === value.headers && body === value.body ? value : { ...value, headers, body }
  },
}

/**
 * A body not read as JSON (text or bytes), marked whole where it may hold what `paths` name: it
 * holds the key one ends with (any case), or a path ends with no key (`*`, an index). A string
 * read as JSON is marked so too (nothing tells it from text).
 */
function markWhole(body: string | Uint8Array, paths: readonly string[], mark: Mark): unknown {
  if (body.length === 0) return body
  const names = paths.map((p) => p.split('.').findLast((seg) => seg !== '*' && !/^\d+$/.test(seg))?.toLowerCase())
  if (names.includes(undefined)) return mark(body)
  const text = (typeof body === 'string' ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8')).toLowerCase()
  return names.some((n) => text.includes(n!)) ? mark(body) : body
}

/**
 * What is secret in fetch's calls (docs/secrets.md): the Authorization, Proxy-Authorization,
 * Cookie and Set-Cookie headers, of requests and responses, always; and what a weave adds:
 * `headers` (more header names, any case), `body` (dot paths into a JSON request body) and
 * `response` (dot paths into a response body read as JSON).
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
    const body = paths !== undefined ? markPaths(value.body, paths, mark) : value.body
    return headers === value.headers && body === value.body ? value : { ...value, headers, body }
  },
}

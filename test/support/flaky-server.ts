/**
 * A flaky HTTP service on 127.0.0.1 for the retry tests: each request names its key in an
 * `Idempotency-Key` header (the call id that `fetch` sends with `idempotent: true`) and how many
 * of its key's first requests fail in the `fail` query parameter (`/effect?fail=2`). Those fail
 * with `503` (with `&retryAfter=V`, a `Retry-After: V` header; with `&mode=reset`, a connection
 * closed with no answer instead); the next one does the
 * effect (counted once per key) and answers `200 {"key": ...}`; later requests with the same key
 * get the same answer without doing the effect again, as an idempotent service does.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { listenLocal } from './http.js'

export interface KeyLog {
  /** Requests received with the key, failed ones included. */
  requests: number
  /** How many times the effect was done (never more than once). */
  effects: number
  /** When each request arrived (Date.now()). */
  at: number[]
}

export interface FlakyServer {
  url: string
  keys: Map<string, KeyLog>
  /** Requests without a key. */
  unkeyed: number
  /** Called after each failed answer (for tests that act then). */
  onFailure: ((key: string, nth: number) => void) | null
  close(): Promise<void>
}

export async function flakyServer(): Promise<FlakyServer> {
  const s: FlakyServer = { url: '', keys: new Map(), unkeyed: 0, onFailure: null, close: async () => {} }
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    req.resume()
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://x')
      const fail = Number(url.searchParams.get('fail') ?? '0')
      const key = req.headers['idempotency-key']
      if (typeof key !== 'string') {
        s.unkeyed++
        res.writeHead(503).end()
        return
      }
      let log = s.keys.get(key)
      if (log === undefined) s.keys.set(key, (log = { requests: 0, effects: 0, at: [] }))
      log.requests++
      log.at.push(Date.now())
      if (log.requests <= fail) {
        if (url.searchParams.get('mode') === 'reset') res.socket?.destroy()
        else {
          const retryAfter = url.searchParams.get('retryAfter')
          res.writeHead(503, { 'content-type': 'text/plain', ...(retryAfter === null ? {} : { 'retry-after': retryAfter }) }).end('try again')
        }
        s.onFailure?.(key, log.requests)
        return
      }
      if (log.effects === 0) log.effects = 1
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ key }))
    })
  })
  const { url, close } = await listenLocal(server)
  s.url = url
  s.close = close
  return s
}

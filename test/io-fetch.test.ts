/**
 * The built-in fetch library, run as real threads in a real weave on a temp-dir journal against a
 * real HTTP server on 127.0.0.1; recorded and replayed with the server stopped; resumed after a
 * real weave child process is killed at a named crash point.
 */
import { describe, expect, it } from 'vitest'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { join } from 'node:path'
import { thread, Weave, type ThreadEnd } from 'raiment'
import { record, replay } from 'raiment/testing'
import { tempDir } from './support/tmp.js'
import { captureStderr, crashChild, delay, errorOf, json, resultOf, resume, run, serve } from './support/io-libs.js'

// ---- fetch -----------------------------------------------------------------------------------

describe('fetch', () => {
  const calls = thread({
    uses: ['fetch'],
    async does(p: { url: string }) {
      const j = await this.fetch.get<{ hello: string }>(`${p.url}/json`)
      const t = await this.fetch.request(`${p.url}/text`)
      const b = await this.fetch.get(`${p.url}/bytes`, { as: 'bytes' })
      const forced = await this.fetch.get(`${p.url}/json`, { as: 'text' })
      const posted = await this.fetch.post(`${p.url}/echo`, { order: 7, items: ['a'] }, { headers: { 'X-Trace': 't1' } })
      const put = await this.fetch.request(`${p.url}/echo`, { method: 'put', body: 'raw text', headers: { 'content-type': 'text/plain' } })
      const missing = await this.fetch.get(`${p.url}/missing`)
      return { j, t, b, forced, posted, put, missing, hello: j.body.hello }
    },
  })

  function handler(req: IncomingMessage, res: ServerResponse, body: string): void {
    if (req.url === '/json') return json(res, 200, { hello: 'world' })
    if (req.url === '/text') {
      res.writeHead(200, { 'content-type': 'text/plain' })
      return void res.end('plain words')
    }
    if (req.url === '/bytes') {
      res.writeHead(200, { 'content-type': 'application/octet-stream' })
      return void res.end(Buffer.from([9, 8, 7]))
    }
    if (req.url === '/echo') return json(res, 201, { method: req.method, type: req.headers['content-type'], trace: req.headers['x-trace'] ?? null, body })
    json(res, 404, { error: 'not found' })
  }

  it('reads JSON, text and bytes, sends JSON bodies, and a replay needs no server', async () => {
    const server = await serve(handler)
    const { dump, result } = await record(calls, { url: server.url })
    await server.close()
    const r = result!
    expect(r.hello).toBe('world')
    expect(r.j).toMatchObject({ status: 200, statusText: 'OK', body: { hello: 'world' } })
    expect(r.j.headers['content-type']).toBe('application/json; charset=utf-8')
    expect(r.j.headers['x-custom-header']).toBe('Yes')
    expect(Object.keys(r.j.headers).every((k) => k === k.toLowerCase())).toBe(true)
    expect(r.t.body).toBe('plain words')
    expect(r.b.body).toEqual(new Uint8Array([9, 8, 7]))
    expect(r.forced.body).toBe('{"hello":"world"}')
    expect(r.posted).toMatchObject({
      status: 201,
      body: { method: 'POST', type: 'application/json', trace: 't1', body: '{"order":7,"items":["a"]}' },
    })
    expect(r.put.body).toEqual({ method: 'PUT', type: 'text/plain', trace: null, body: 'raw text' })
    expect(r.missing).toMatchObject({ status: 404, statusText: 'Not Found', body: { error: 'not found' } })
    expect(server.requests).toHaveLength(7)

    const again = await replay(calls, dump)
    expect(again.status).toBe('done')
    expect(again.result).toEqual(r)
    expect(again.calls.map((c) => c.call)).toEqual(Array(7).fill('fetch.request'))
    expect(server.requests).toHaveLength(7)
  })

  it('a refused connection, a timeout and a body that is not JSON are FetchErrors with stable codes, re-thrown on replay', async () => {
    const server = await serve(async (req, res) => {
      if (req.url === '/slow') await delay(2_000)
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end('{not json')
    })
    const closed = await serve(() => {})
    await closed.close()
    const t = thread({
      uses: ['fetch'],
      async does(p: { url: string; closed: string }) {
        const out: unknown[] = []
        for (const f of [
          // One attempt each (fetch retries these by default: test/retry.test.ts).
          () => this.fetch.get(`${p.closed}/x`, { retry: false }),
          () => this.fetch.get(`${p.url}/slow`, { timeoutMs: 100, retry: false }),
          () => this.fetch.get(`${p.url}/bad`),
          () => this.fetch.get('not a url'),
          () => this.fetch.request(`${p.url}/x`, { method: 'GET', body: 'no' }),
        ]) {
          out.push(await f().then(() => 'ok', (e: Error & { code: string; status?: number }) => ({ name: e.name, code: e.code, status: e.status, cause: (e.cause as { code?: string } | undefined)?.code })))
        }
        throw Object.assign(new Error('done'), { out })
      },
    })
    const { dump, end } = await record(t, { url: server.url, closed: closed.url })
    await server.close()
    const out = (errorOf(end) as { out?: unknown }).out
    expect(out).toEqual([
      { name: 'FetchError', code: 'RAIMENT_FETCH_FAILED', status: undefined, cause: 'ECONNREFUSED' },
      { name: 'FetchError', code: 'RAIMENT_FETCH_TIMEOUT', status: undefined, cause: undefined },
      { name: 'FetchError', code: 'RAIMENT_FETCH_BAD_JSON', status: 200, cause: undefined },
      { name: 'InvalidArgument', code: 'RAIMENT_INVALID_ARGUMENT', status: undefined, cause: undefined },
      { name: 'InvalidArgument', code: 'RAIMENT_INVALID_ARGUMENT', status: undefined, cause: undefined },
    ])
    const again = await replay(t, dump)
    expect((again.error as { out?: unknown }).out).toEqual(out)
  })

  it('refuses a timeoutMs longer than a timer holds (2^31 - 1 ms) before sending anything: it would time out at once', async () => {
    const server = await serve((_req, res) => json(res, 200, { ok: true }))
    const t = thread({
      uses: ['fetch'],
      async does(p: { url: string }) {
        return this.fetch.get(`${p.url}/x`, { timeoutMs: 3_000_000_000, retry: false }).then(
          () => 'answered',
          (e: Error & { code: string }) => ({ code: e.code, message: e.message }),
        )
      },
    })
    try {
      expect(resultOf(await run(t, { url: server.url }))).toEqual({
        code: 'RAIMENT_INVALID_ARGUMENT',
        message: 'fetch.request: timeoutMs must be a number of milliseconds above 0 and at most 2147483647 (24.8 days, the longest a Node timer holds), got number 3000000000',
      })
      expect(server.requests).toHaveLength(0)
    } finally {
      await server.close()
    }
  })

  it('holds at most 16 requests in flight per weave; the others wait their turn', async () => {
    // Requests are held until the limit's worth is in flight, or the last of a round has come,
    // then answered together: the limit is reached whatever the machine's load (a delay of the
    // server's was not always long enough for 16 to be sent), and a 17th would be seen.
    const held: Array<() => void> = []
    let arrived = 0
    let round = 40
    const server = await serve(async (_req, res) => {
      arrived++
      await new Promise<void>((go) => {
        held.push(go)
        if (held.length === 16 || arrived === round) for (const g of held.splice(0)) g()
      })
      json(res, 200, { ok: true })
    })
    const many = thread({
      uses: ['fetch'],
      async does(p: { url: string; n: number }) {
        const rs = await Promise.all(Array.from({ length: p.n }, (_, i) => this.fetch.get<{ ok: boolean }>(`${p.url}/r${i}`)))
        return rs.filter((r) => r.body.ok).length
      },
    })
    const dir = tempDir()
    const weave = await Weave.open({ db: join(dir, 'w.db'), durability: 'memory', threads: { many }, dumps: false })
    try {
      // 40 calls from one thread, then 2 threads × 20 at once: the limit is the weave's.
      expect(resultOf(await weave.join(weave.spawn('many', { url: server.url, n: 40 })))).toBe(40)
      expect(server.maxInFlight).toBe(16)
      server.maxInFlight = 0
      arrived = 0
      round = 40
      const ids = [weave.spawn('many', { url: server.url, n: 20 }), weave.spawn('many', { url: server.url, n: 20 })]
      for (const id of ids) expect(resultOf(await weave.join(id))).toBe(20)
      expect(server.maxInFlight).toBe(16)
      expect(server.requests).toHaveLength(80)
    } finally {
      await weave.close()
      await server.close()
    }
  })

  it('idempotent: true sends the call id as Idempotency-Key, the same when a crashed thread is resumed', async () => {
    const server = await serve((req, res, body) => json(res, 200, { key: req.headers['idempotency-key'], body }))
    const dir = tempDir()
    const source = `{
      post: thread({ uses: ['log', 'fetch'], async does(p) {
        await this.log.info('before the post')
        const r = await this.fetch.post(p.url + '/pay', { cents: 100 }, { idempotent: true })
        await this.log.info('after the post')
        return r.body
      } }),
    }`
    const post = thread({
      uses: ['log', 'fetch'],
      async does(p: { url: string }) {
        await this.log.info('before the post')
        const r = await this.fetch.post(p.url + '/pay', { cents: 100 }, { idempotent: true })
        await this.log.info('after the post')
        return r.body
      },
    })
    // The child is killed after the POST got its response and before the outcome was recorded.
    const child = await crashChild(dir, source, 'post', { url: server.url }, 'after-call:2')
    expect(child.signal).toBe('SIGKILL')
    expect(child.stderr).toMatch(/ info {2}\S+ before the post\n/)
    expect(child.stderr).not.toMatch(/after the post/)
    expect(server.requests).toHaveLength(1)

    const cap = captureStderr()
    let resumed: { id: string; end: ThreadEnd }
    try {
      resumed = await resume(dir, { post })
    } finally {
      cap.restore()
    }
    await server.close()
    expect(server.requests).toHaveLength(2)
    const [k1, k2] = server.requests.map((r) => r.headers['idempotency-key'])
    expect(k1).toMatch(new RegExp(`^${resumed.id.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}@[0-9a-z]{1,6}:[\\w-]{16}:0$`))
    expect(k2).toBe(k1)
    expect(resultOf(resumed.end)).toEqual({ key: k1, body: '{"cents":100}' })
    // The log call recorded before the crash is replayed, not printed again.
    expect(cap.lines(resumed.id).map((l) => l.slice(l.indexOf(resumed.id) + resumed.id.length + 1))).toEqual(['after the post'])

    // Without idempotent: no header.
    const plain = thread({ uses: ['fetch'], async does(p: { url: string }) { return (await this.fetch.post(p.url, 'x')).body } })
    const s2 = await serve((req, res) => json(res, 200, { key: req.headers['idempotency-key'] ?? null }))
    expect(resultOf(await run(plain, { url: s2.url }))).toEqual({ key: null })
    await s2.close()
  })
})

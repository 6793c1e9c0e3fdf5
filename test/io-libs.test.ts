/**
 * The built-in I/O libraries (random, log, fs, fetch, sqlite), run as real threads in a real weave
 * on a temp-dir journal, against the real file system, a real HTTP server on 127.0.0.1 and real
 * SQLite files. Each library is also recorded and replayed with what it touched gone (file
 * deleted, server stopped), and the resume cases run a real weave child process killed by a named
 * crash point.
 */
import { describe, expect, it } from 'vitest'
import Database from 'better-sqlite3'
import { spawn } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { pathToFileURL, fileURLToPath } from 'node:url'
import { InvalidArgument, thread, Weave, type AnyThreadType, type ThreadEnd } from 'raiment'
import { record, replay } from 'raiment/testing'
import { tempDir } from './support/tmp.js'

// ---- helpers ---------------------------------------------------------------------------------

/** Runs one thread of `type` in a fresh weave on a temp-dir journal and returns how it ended. */
async function run(type: AnyThreadType, params?: unknown, opts: { dir?: string; config?: Record<string, unknown> } = {}): Promise<ThreadEnd> {
  const dir = opts.dir ?? tempDir()
  const weave = await Weave.open({ db: join(dir, 'w.db'), durability: 'memory', threads: { t: type }, dumps: false, config: opts.config ?? {} })
  try {
    return await weave.join(weave.spawn('t', params))
  } finally {
    await weave.close()
  }
}

function resultOf(end: ThreadEnd): unknown {
  if (end.status !== 'done') throw new Error(`thread ended ${end.status}${end.status === 'failed' ? `: ${end.error.message}` : ''}`)
  return end.result
}

function errorOf(end: ThreadEnd): Error & Record<string, unknown> {
  if (end.status !== 'failed') throw new Error(`expected the thread to fail, it ended ${end.status}`)
  return end.error as Error & Record<string, unknown>
}

/** Collects what is written to stderr until `restore()`. */
function captureStderr(): { text: () => string; lines: (needle: string) => string[]; restore: () => void } {
  const stderr = process.stderr
  const write = Object.getOwnPropertyDescriptor(stderr, 'write')
  let out = ''
  const capture = (chunk: string | Uint8Array): boolean => {
    out += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8')
    return true
  }
  Object.defineProperty(stderr, 'write', { value: capture, configurable: true, writable: true })
  return {
    text: () => out,
    lines: (needle) => out.split('\n').filter((l) => l.includes(needle)),
    restore: () => {
      if (write) Object.defineProperty(stderr, 'write', write)
      else delete (stderr as { write?: unknown }).write
    },
  }
}

interface Served {
  url: string
  requests: Array<{ method: string; path: string; headers: IncomingMessage['headers']; body: string }>
  maxInFlight: number
  close(): Promise<void>
}

/** A real HTTP server on 127.0.0.1 (port 0) that records each request it gets. */
async function serve(handler: (req: IncomingMessage, res: ServerResponse, body: string) => void | Promise<void>): Promise<Served> {
  let inFlight = 0
  const served: Served = { url: '', requests: [], maxInFlight: 0, close: async () => {} }
  const server = createServer((req, res) => {
    inFlight++
    served.maxInFlight = Math.max(served.maxInFlight, inFlight)
    res.on('close', () => inFlight--)
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8')
      served.requests.push({ method: req.method ?? '', path: req.url ?? '', headers: req.headers, body })
      void Promise.resolve(handler(req, res, body)).catch((e: unknown) => {
        res.statusCode = 599
        res.end(String(e))
      })
    })
  })
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok))
  served.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  served.close = () =>
    new Promise<void>((ok) => {
      server.closeAllConnections()
      server.close(() => ok())
    })
  return served
}

function json(res: ServerResponse, status: number, value: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'X-Custom-Header': 'Yes' })
  res.end(JSON.stringify(value))
}

const delay = (ms: number) => new Promise<void>((ok) => setTimeout(ok, ms))

/**
 * Runs `main` of a weave in a child process with `RAIMENT_CRASH_AT` set, and waits for it to end
 * (killed at the crash point). The child's script is written to `dir`; its thread types must be
 * those the test resumes with.
 */
async function crashChild(dir: string, threadsSource: string, spawnType: string, params: unknown, crashAt: string): Promise<{ signal: NodeJS.Signals | null; stderr: string }> {
  const raiment = pathToFileURL(fileURLToPath(new URL('../src/index.ts', import.meta.url))).href
  const file = join(dir, 'child.mts')
  writeFileSync(
    file,
    `import { Weave, thread } from ${JSON.stringify(raiment)}
const threads = ${threadsSource}
const weave = await Weave.open({ db: process.argv[2], durability: 'sync', threads, dumps: false })
const id = weave.spawn(${JSON.stringify(spawnType)}, ${JSON.stringify(params)})
const end = await weave.join(id)
console.log(JSON.stringify(end))
await weave.close()
`,
  )
  const child = spawn(process.execPath, ['--conditions=raiment-source', '--import', 'tsx', file, join(dir, 'w.db')], {
    cwd: process.cwd(),
    env: { ...process.env, RAIMENT_CRASH_AT: crashAt },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stderr = ''
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')))
  child.stdout.on('data', (c: Buffer) => (stderr += c.toString('utf8')))
  const signal = await new Promise<NodeJS.Signals | null>((ok) => child.on('exit', (_code, sig) => ok(sig)))
  return { signal, stderr }
}

/** Opens a weave on the crashed child's journal: it resumes the one thread, which is joined. */
async function resume(dir: string, threads: Record<string, AnyThreadType>): Promise<{ id: string; end: ThreadEnd }> {
  const weave = await Weave.open({ db: join(dir, 'w.db'), durability: 'memory', threads, dumps: false })
  try {
    expect(weave.resumed).toBe(1)
    const id = weave.journal.threads()[0]!.id
    return { id, end: await weave.join(id) }
  } finally {
    await weave.close()
  }
}

// ---- random ----------------------------------------------------------------------------------

describe('random', () => {
  const draws = thread({
    uses: ['random'],
    async does() {
      const ints: number[] = []
      for (let i = 0; i < 50; i++) ints.push(await this.random.int(-3, 4))
      const [f, u1, u2, b] = await Promise.all([this.random.float(), this.random.uuid(), this.random.uuid(), this.random.bytes(16)])
      return { ints, f, u1, u2, b }
    },
  })

  it('draws values in range, and a replay gets the same values from the record', async () => {
    const { dump, result } = await record(draws, undefined)
    const r = result!
    expect(r.ints.every((n) => Number.isInteger(n) && n >= -3 && n < 4)).toBe(true)
    expect(new Set(r.ints).size).toBeGreaterThan(3)
    expect(r.f).toBeGreaterThanOrEqual(0)
    expect(r.f).toBeLessThan(1)
    expect(r.u1).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
    expect(r.u2).not.toBe(r.u1)
    expect(r.b).toBeInstanceOf(Uint8Array)
    expect(r.b.length).toBe(16)
    const again = await replay(draws, dump)
    expect(again.status).toBe('done')
    expect(again.result).toEqual(r)
    expect(again.result!.b).toBeInstanceOf(Uint8Array)
    expect(again.calls.filter((c) => c.call === 'random.int')).toHaveLength(50)
  })

  it('refuses bad bounds with InvalidArgument, recorded and re-thrown on replay', async () => {
    const bad = thread({
      uses: ['random'],
      async does(p: { min: number; max: number }) {
        return await this.random.int(p.min, p.max)
      },
    })
    for (const [min, max, msg] of [
      [5, 5, /min < max/],
      [1.5, 3, /two whole numbers/],
      [0, 2 ** 50, /2\^48/],
    ] as const) {
      const err = errorOf(await run(bad, { min, max }))
      expect(err).toBeInstanceOf(InvalidArgument)
      expect(err.code).toBe('RAIMENT_INVALID_ARGUMENT')
      expect(err.message).toMatch(msg)
    }
    const { dump } = await record(bad, { min: 2, max: 1 })
    const again = await replay(bad, dump)
    expect(again.error).toBeInstanceOf(InvalidArgument)
    expect(again.error!.message).toBe('random.int(min, max) expects min < max (max is excluded), got 2 and 1')
    const bytes = thread({ uses: ['random'], async does() { return await this.random.bytes(-1) } })
    expect(errorOf(await run(bytes)).message).toMatch(/random\.bytes\(n\) expects a whole number of bytes from 0 to 1048576, got -1/)
  })
})

// ---- log -------------------------------------------------------------------------------------

describe('log', () => {
  const talk = thread({
    uses: ['log'],
    async does() {
      await this.log.debug('details', { n: 1 })
      await this.log.info('hello', { k: 1, s: 'x' })
      await this.log.warn('careful')
      await this.log.error('broken\nline two', { big: 2n })
      return 'ok'
    },
  })

  it('prints one line per call on stderr, with time, level, thread id, message and fields; debug is dropped by default', async () => {
    const saved = process.env.RAIMENT_LOG_LEVEL
    delete process.env.RAIMENT_LOG_LEVEL
    const cap = captureStderr()
    let end: ThreadEnd
    try {
      end = await run(talk)
    } finally {
      cap.restore()
      if (saved !== undefined) process.env.RAIMENT_LOG_LEVEL = saved
    }
    expect(resultOf(end)).toBe('ok')
    const lines = cap.lines(` ${end.id} `)
    expect(lines).toHaveLength(3)
    const time = String.raw`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z`
    const id = end.id.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')
    expect(lines[0]).toMatch(new RegExp(`^${time} info  ${id} hello \\{"k":1,"s":"x"\\}$`))
    expect(lines[1]).toMatch(new RegExp(`^${time} warn  ${id} careful$`))
    expect(lines[2]).toMatch(new RegExp(`^${time} error ${id} broken\\\\nline two \\{"big":"2"\\}$`))
  })

  it('RAIMENT_LOG_LEVEL sets the level; a bad value is a clear error when the weave opens', async () => {
    const saved = process.env.RAIMENT_LOG_LEVEL
    const levelsPrinted = async (level: string): Promise<string[]> => {
      process.env.RAIMENT_LOG_LEVEL = level
      const cap = captureStderr()
      try {
        const end = await run(talk)
        return cap.lines(` ${end.id} `).map((l) => l.split(' ')[1]!)
      } finally {
        cap.restore()
      }
    }
    try {
      expect(await levelsPrinted('debug')).toEqual(['debug', 'info', 'warn', 'error'])
      expect(await levelsPrinted('WARN')).toEqual(['warn', 'error'])
      expect(await levelsPrinted('silent')).toEqual([])
      process.env.RAIMENT_LOG_LEVEL = 'loud'
      const err = await Weave.open({ db: join(tempDir(), 'w.db'), threads: { talk }, dumps: false }).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(InvalidArgument)
      expect((err as Error).message).toBe('RAIMENT_LOG_LEVEL must be one of debug, info, warn, error, silent, got "loud"')
    } finally {
      if (saved === undefined) delete process.env.RAIMENT_LOG_LEVEL
      else process.env.RAIMENT_LOG_LEVEL = saved
    }
  })

  it('a replayed thread prints nothing, and bad arguments are refused', async () => {
    const { dump } = await record(talk, undefined)
    const cap = captureStderr()
    try {
      const again = await replay(talk, dump)
      expect(again.result).toBe('ok')
      expect(again.calls.map((c) => c.call)).toEqual(['log.debug', 'log.info', 'log.warn', 'log.error'])
    } finally {
      cap.restore()
    }
    expect(cap.lines(dump.thread.id)).toEqual([])
    const bad = thread({
      uses: ['log'],
      async does() {
        await this.log.info('x', [1, 2] as unknown as Record<string, unknown>)
      },
    })
    expect(errorOf(await run(bad)).message).toMatch(/log\.info\(message, fields\?\) expects fields to be a plain object/)
  })
})

// ---- fs --------------------------------------------------------------------------------------

describe('fs', () => {
  const files = thread({
    uses: ['fs'],
    async does(p: { dir: string }) {
      const d = `${p.dir}/data`
      await this.fs.mkdir(`${d}/sub/deeper`, { recursive: true })
      await this.fs.writeFile(`${d}/b.txt`, 'héllo')
      await this.fs.appendFile(`${d}/b.txt`, ' world')
      await this.fs.writeFile(`${d}/a.bin`, new Uint8Array([0, 1, 2, 255]))
      const text = await this.fs.readFile(`${d}/b.txt`)
      const bytes = await this.fs.readFile(`${d}/a.bin`, 'bytes')
      const names = await this.fs.readdir(d)
      const st = await this.fs.stat(`${d}/b.txt`)
      const dirSt = await this.fs.stat(`${d}/sub`)
      await this.fs.rm(`${d}/sub`, { recursive: true })
      await this.fs.rm(`${d}/missing`, { force: true })
      return { text, bytes, names, st, dirSt, after: await this.fs.readdir(d) }
    },
  })

  it('writes, reads, lists, stats and removes; replay gives the same outcomes with the files gone', async () => {
    const dir = tempDir()
    const { dump, result } = await record(files, { dir })
    const r = result!
    expect(r.text).toBe('héllo world')
    expect(r.bytes).toEqual(new Uint8Array([0, 1, 2, 255]))
    expect(r.bytes).toBeInstanceOf(Uint8Array)
    expect(r.names).toEqual(['a.bin', 'b.txt', 'sub'])
    expect(r.st).toEqual({ size: Buffer.byteLength('héllo world'), mtimeMs: expect.any(Number), isFile: true, isDirectory: false })
    expect(r.dirSt).toMatchObject({ isFile: false, isDirectory: true })
    expect(r.after).toEqual(['a.bin', 'b.txt'])
    expect(readFileSync(join(dir, 'data/b.txt'), 'utf8')).toBe('héllo world')

    rmSync(join(dir, 'data'), { recursive: true })
    const again = await replay(files, dump)
    expect(again.status).toBe('done')
    expect(again.result).toEqual(r)
    expect(existsSync(join(dir, 'data'))).toBe(false)
  })

  it('an ENOENT is recorded and re-thrown on replay with the same name, message, code and path', async () => {
    const dir = tempDir()
    const reader = thread({
      uses: ['fs'],
      async does(p: { file: string; catchIt: boolean }) {
        try {
          return await this.fs.readFile(p.file)
        } catch (e) {
          if (!p.catchIt) throw e
          const err = e as Error & { code: string }
          return { caught: err.code, name: err.name }
        }
      },
    })
    const file = join(dir, 'nope.txt')
    expect(resultOf(await run(reader, { file, catchIt: true }))).toEqual({ caught: 'ENOENT', name: 'Error' })
    const live = errorOf(await run(reader, { file, catchIt: false }))
    expect(live).toMatchObject({ code: 'ENOENT', syscall: 'open', path: file })

    const { dump, end } = await record(reader, { file, catchIt: false })
    expect(end.status).toBe('failed')
    writeFileSync(file, 'now it exists') // replay must not look
    const again = await replay(reader, dump)
    expect(again.status).toBe('failed')
    const err = again.error as Error & Record<string, unknown>
    expect(err).toBeInstanceOf(Error)
    expect(err.name).toBe('Error')
    expect(err.message).toBe(`ENOENT: no such file or directory, open '${file}'`)
    expect(err).toMatchObject({ code: 'ENOENT', errno: -2, syscall: 'open', path: file })
  })

  it('keeps the code of other errors (rm of a directory, mkdir of an existing one) and validates arguments', async () => {
    const dir = tempDir()
    mkdirSync(join(dir, 'd'))
    const t = thread({
      uses: ['fs'],
      async does(p: { dir: string }) {
        const codes: unknown[] = []
        for (const f of [
          () => this.fs.rm(`${p.dir}/d`),
          () => this.fs.mkdir(`${p.dir}/d`),
          () => this.fs.readdir(`${p.dir}/none`),
          () => this.fs.rm(`${p.dir}/d`, { recursive: 'yes' as unknown as boolean }),
          () => this.fs.readFile(`${p.dir}/d`, 'latin1' as 'utf8'),
          () => this.fs.writeFile(`${p.dir}/x`, 42 as unknown as string),
        ]) {
          codes.push(await f().then(() => 'ok', (e: Error & { code: string }) => e.code))
        }
        return codes
      },
    })
    expect(resultOf(await run(t, { dir }))).toEqual([
      'ERR_FS_EISDIR',
      'EEXIST',
      'ENOENT',
      'RAIMENT_INVALID_ARGUMENT',
      'RAIMENT_INVALID_ARGUMENT',
      'RAIMENT_INVALID_ARGUMENT',
    ])
  })

  it('resolves relative paths against the working directory', async () => {
    const dir = tempDir()
    const t = thread({
      uses: ['fs'],
      async does() {
        await this.fs.writeFile('relative.txt', 'here')
        return await this.fs.readdir('.')
      },
    })
    const cwd = process.cwd()
    process.chdir(dir)
    let end: ThreadEnd
    try {
      end = await run(t, undefined, { dir })
    } finally {
      process.chdir(cwd)
    }
    expect(resultOf(end)).toContain('relative.txt')
    expect(readFileSync(join(dir, 'relative.txt'), 'utf8')).toBe('here')
  })
})

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

// ---- sqlite ----------------------------------------------------------------------------------

describe('sqlite', () => {
  const orders = thread({
    uses: ['sqlite'],
    async does(p: { db: string }) {
      await this.sqlite.run(p.db, 'CREATE TABLE orders (id INTEGER PRIMARY KEY, sku TEXT NOT NULL UNIQUE, cents INTEGER, paid INTEGER, blob BLOB)')
      const a = await this.sqlite.run(p.db, 'INSERT INTO orders (sku, cents, paid, blob) VALUES (?, ?, ?, ?)', ['A1', 1200, true, new Uint8Array([1, 2])])
      const b = await this.sqlite.run(p.db, 'INSERT INTO orders (sku, cents, paid) VALUES (@sku, @cents, @paid)', { sku: 'B2', cents: 300, paid: false })
      const rows = await this.sqlite.query<{ id: number; sku: string; cents: number; paid: number; blob: Uint8Array | null }>(p.db, 'SELECT * FROM orders ORDER BY id')
      const upd = await this.sqlite.run(p.db, 'UPDATE orders SET cents = cents + 1')
      const sum = await this.sqlite.query(p.db, 'SELECT sum(cents) AS total FROM orders WHERE sku IN (?, ?)', ['A1', 'B2'])
      return { a, b, rows, upd, sum }
    },
  })

  it('runs statements and queries on an application database; replay needs no database file', async () => {
    const dir = tempDir()
    const db = join(dir, 'app.db')
    const { dump, result } = await record(orders, { db })
    const r = result!
    expect(r.a).toEqual({ changes: 1, lastInsertRowid: 1 })
    expect(r.b).toEqual({ changes: 1, lastInsertRowid: 2 })
    expect(r.rows).toEqual([
      { id: 1, sku: 'A1', cents: 1200, paid: 1, blob: new Uint8Array([1, 2]) },
      { id: 2, sku: 'B2', cents: 300, paid: 0, blob: null },
    ])
    expect(r.rows[0]!.blob).toBeInstanceOf(Uint8Array)
    expect(r.upd.changes).toBe(2)
    expect(r.sum).toEqual([{ total: 1502 }])
    const check = new Database(db, { readonly: true })
    expect(check.pragma('journal_mode', { simple: true })).toBe('wal')
    check.close()

    rmSync(db)
    rmSync(`${db}-wal`, { force: true })
    rmSync(`${db}-shm`, { force: true })
    const again = await replay(orders, dump)
    expect(again.status).toBe('done')
    expect(again.result).toEqual(r)
    expect(existsSync(db)).toBe(false)
  })

  it('an SQLite error keeps its class and code, live and on replay', async () => {
    const dir = tempDir()
    const dup = thread({
      uses: ['sqlite'],
      async does(p: { db: string }) {
        await this.sqlite.run(p.db, 'CREATE TABLE t (k TEXT PRIMARY KEY)')
        await this.sqlite.run(p.db, 'INSERT INTO t VALUES (?)', ['x'])
        await this.sqlite.run(p.db, 'INSERT INTO t VALUES (?)', ['x'])
      },
    })
    const { dump, end } = await record(dup, { db: join(dir, 'app.db') })
    const live = errorOf(end)
    expect(live).toBeInstanceOf(Database.SqliteError)
    expect(live.code).toBe('SQLITE_CONSTRAINT_PRIMARYKEY')
    const again = await replay(dup, dump)
    expect(again.error).toBeInstanceOf(Database.SqliteError)
    expect(again.error).toMatchObject({ name: 'SqliteError', code: 'SQLITE_CONSTRAINT_PRIMARYKEY', message: live.message })

    const bad = thread({
      uses: ['sqlite'],
      async does(p: { db: string }) {
        return await this.sqlite.query(p.db, 'SELECT ?', [{ a: 1 } as unknown as string])
      },
    })
    expect(errorOf(await run(bad, { db: join(dir, 'app.db') })).message).toMatch(/params\[0\] must be a string, number, bigint, boolean, null or Uint8Array, got Object/)
  })

  it("refuses the weave's own journal (by any path to it) and any other Raiment journal", async () => {
    const dir = tempDir()
    const t = thread({
      uses: ['sqlite'],
      async does(p: { file: string }) {
        return await this.sqlite.query(p.file, 'SELECT count(*) AS n FROM threads')
      },
    })
    for (const file of [join(dir, 'w.db'), join(dir, '.', 'sub', '..', 'w.db'), join(dir, 'w.db-wal'), join(dir, 'w.db-lock')]) {
      mkdirSync(join(dir, 'sub'), { recursive: true })
      const err = errorOf(await run(t, { file }, { dir }))
      expect(err).toBeInstanceOf(InvalidArgument)
      expect(err.message).toMatch(/is this weave's own journal.*Keep application data in a database file of its own/)
    }
    // Another weave's journal.
    const other = join(tempDir(), 'other.db')
    const w2 = await Weave.open({ db: other, durability: 'memory', threads: {}, dumps: false })
    await w2.close()
    const err = errorOf(await run(t, { file: other }))
    expect(err.message).toMatch(/is a Raiment journal/)
  })

  const insertSource = `{
    insert: thread({ uses: ['sqlite'], async does(p) {
      return await this.sqlite.run(p.db, 'INSERT INTO t (v) VALUES (?)', ['x'], { idempotent: p.once })
    } }),
  }`
  const insert = thread({
    uses: ['sqlite'],
    async does(p: { db: string; once: boolean }) {
      return await this.sqlite.run(p.db, 'INSERT INTO t (v) VALUES (?)', ['x'], { idempotent: p.once })
    },
  })

  for (const once of [true, false]) {
    it(`a run in flight at a crash runs again on resume: ${once ? 'once with idempotent: true' : 'twice without it'}`, async () => {
      const dir = tempDir()
      const db = join(dir, 'app.db')
      const setup = new Database(db)
      setup.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)')
      setup.close()
      const child = await crashChild(dir, insertSource, 'insert', { db, once }, 'after-call:1')
      expect(child.signal).toBe('SIGKILL')
      const { end } = await resume(dir, { insert })
      const check = new Database(db, { readonly: true })
      const n = (check.prepare('SELECT count(*) AS n FROM t').get() as { n: number }).n
      check.close()
      if (once) {
        expect(n).toBe(1)
        expect(resultOf(end)).toEqual({ changes: 1, lastInsertRowid: 1 })
      } else {
        expect(n).toBe(2)
        expect(resultOf(end)).toEqual({ changes: 1, lastInsertRowid: 2 })
      }
    })
  }
})

/**
 * What the tests of the built-in I/O libraries share (test/io-libs.test.ts, test/io-fetch.test.ts,
 * test/io-sqlite.test.ts): a thread run in a fresh weave, its result or error, stderr captured, a
 * real HTTP server on 127.0.0.1, and a weave child process killed at a crash point, then resumed.
 */
import { expect } from 'vitest'
import { spawn } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { listenLocal } from './http.js'
import { join } from 'node:path'
import { pathToFileURL, fileURLToPath } from 'node:url'
import { Weave, type AnyThreadType, type ThreadEnd } from 'raiment'
import type { RecordWaiting } from 'raiment/testing'
import { tempDir } from './tmp.js'

/** Runs one thread of `type` in a fresh weave on a temp-dir journal and returns how it ended. */
export async function run(type: AnyThreadType, params?: unknown, opts: { dir?: string; config?: Record<string, unknown> } = {}): Promise<ThreadEnd> {
  const dir = opts.dir ?? tempDir()
  const weave = await Weave.open({ db: join(dir, 'w.db'), durability: 'memory', threads: { t: type }, dumps: false, config: opts.config ?? {} })
  try {
    return await weave.join(weave.spawn('t', params))
  } finally {
    await weave.close()
  }
}

export function resultOf(end: ThreadEnd | RecordWaiting): unknown {
  if (end.status !== 'done') throw new Error(`thread ended ${end.status}${end.status === 'failed' ? `: ${end.error.message}` : ''}`)
  return end.result
}

export function errorOf(end: ThreadEnd | RecordWaiting): Error & Record<string, unknown> {
  if (end.status !== 'failed') throw new Error(`expected the thread to fail, it ended ${end.status}`)
  return end.error as Error & Record<string, unknown>
}

/** Collects what is written to stderr until `restore()`. */
export function captureStderr(): { text: () => string; lines: (needle: string) => string[]; restore: () => void } {
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

export interface Served {
  url: string
  requests: Array<{ method: string; path: string; headers: IncomingMessage['headers']; body: string }>
  maxInFlight: number
  close(): Promise<void>
}

/** A real HTTP server on 127.0.0.1 (port 0) that records each request it gets. */
export async function serve(handler: (req: IncomingMessage, res: ServerResponse, body: string) => void | Promise<void>): Promise<Served> {
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
  const { url, close } = await listenLocal(server)
  served.url = url
  served.close = close
  return served
}

export function json(res: ServerResponse, status: number, value: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'X-Custom-Header': 'Yes' })
  res.end(JSON.stringify(value))
}

export const delay = (ms: number) => new Promise<void>((ok) => setTimeout(ok, ms))

/**
 * Runs `main` of a weave in a child process with `RAIMENT_CRASH_AT` set, and waits for it to end
 * (killed at the crash point). The child's script is written to `dir`; its thread types must be
 * those the test resumes with.
 */
export async function crashChild(dir: string, threadsSource: string, spawnType: string, params: unknown, crashAt: string): Promise<{ signal: NodeJS.Signals | null; stderr: string }> {
  const raiment = pathToFileURL(fileURLToPath(new URL('../../src/index.ts', import.meta.url))).href
  const file = join(dir, 'child.mts')
  writeFileSync(
    file,
    `import { Weave, thread } from ${JSON.stringify(raiment)}
export const threads = ${threadsSource}
export const weave = await Weave.open({ db: process.argv[2], durability: 'sync', threads, dumps: false })
export const id = weave.spawn(${JSON.stringify(spawnType)}, ${JSON.stringify(params)})
export const end = await weave.join(id)
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
export async function resume(dir: string, threads: Record<string, AnyThreadType>): Promise<{ id: string; end: ThreadEnd }> {
  const weave = await Weave.open({ db: join(dir, 'w.db'), durability: 'memory', threads, dumps: false })
  try {
    expect(weave.resumed).toBe(1)
    const id = weave.journal.threads()[0]!.id
    return { id, end: await weave.join(id) }
  } finally {
    await weave.close()
  }
}

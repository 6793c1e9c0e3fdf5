/**
 * What the host-loss tests share: replicated weave processes (test/support/repl-child.ts) with
 * their output lines, a local HTTP service that does each effect once per Idempotency-Key, and
 * removing what a namespace left on the broker (queues, exchanges, journal streams).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { createServer, type Server } from 'node:http'
import { createInterface } from 'node:readline'
import amqp from 'amqplib'
import { expect } from 'vitest'
import { registryStream } from '../../src/replication/registry.js'
import { deleteJournalStreams } from '../../src/replication/streams.js'
import { declareWeaves, freshNamespace, removeNamespace } from './broker.js'
import { supportScript } from './child.js'

const CHILD = supportScript('repl-child.ts')

export interface WeaveProc {
  id: string
  dir: string
  proc: ChildProcess
  lines: string[]
  stderr: string
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

/** Starts weave `id` of the host-loss tests; `onLine` sees each stdout line as it arrives. */
export function startReplWeave(
  a: { dir: string; id: string; ns: string; url: string; peers: string[]; count: number; steps: number; effects: string; env?: Record<string, string> },
  onLine: (p: WeaveProc, line: string) => void,
): WeaveProc {
  const proc = spawn(
    process.execPath,
    ['--conditions=raiment-source', '--import', 'tsx', CHILD, a.dir, a.id, a.ns, a.url, a.peers.join(','), String(a.count), String(a.steps), a.effects],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...a.env } },
  )
  const p: WeaveProc = { id: a.id, dir: a.dir, proc, lines: [], stderr: '', exited: new Promise((r) => proc.on('exit', (code, signal) => r({ code, signal }))) }
  proc.stderr.on('data', (d: Buffer) => (p.stderr = (p.stderr + d.toString()).slice(-4_000)))
  createInterface({ input: proc.stdout }).on('line', (l) => {
    p.lines.push(l)
    onLine(p, l)
  })
  return p
}

/** The effects service: each Idempotency-Key's effect is done once; a repeat gets the same answer. */
export class Effects {
  readonly done = new Map<string, string>()
  /** Requests per key (a call run again after a loss repeats its key). */
  readonly requests = new Map<string, number>()
  /** Called with each request's key once counted, before it is answered (a test may freeze its caller there). */
  onRequest: ((key: string) => void) | null = null
  readonly #server: Server
  url = ''

  constructor() {
    this.#server = createServer((req, res) => {
      let body = ''
      req.on('data', (d: Buffer) => (body += d.toString()))
      req.on('end', () => {
        const key = String(req.headers['idempotency-key'] ?? '')
        this.requests.set(key, (this.requests.get(key) ?? 0) + 1)
        this.onRequest?.(key)
        let charged = this.done.get(key)
        if (charged === undefined) {
          charged = `charged:${(JSON.parse(body) as { item: string }).item}`
          this.done.set(key, charged)
        }
        res.setHeader('content-type', 'application/json')
        res.end(JSON.stringify({ charged }))
      })
    })
  }

  async listen(): Promise<void> {
    await new Promise<void>((r) => this.#server.listen(0, '127.0.0.1', r))
    const addr = this.#server.address()
    if (addr === null || typeof addr === 'string') throw new Error('no port')
    this.url = `http://127.0.0.1:${addr.port}/charge`
  }

  close(): Promise<void> {
    return new Promise((r) => this.#server.close(() => r()))
  }
}

/** The start of a run: a fresh namespace with the queues of weaves `ids` declared, and the effects service listening. */
export async function freshRun(ids: readonly string[]): Promise<{ ns: string; effects: Effects }> {
  const ns = freshNamespace()
  await declareWeaves(ns, ids)
  const effects = new Effects()
  await effects.listen()
  return { ns, effects }
}

/** Removes a namespace's weave queues, exchanges, journal streams and registry of replicated weaves. */
export async function removeReplNamespace(url: string, ns: string, ids: readonly string[]): Promise<void> {
  await removeNamespace(ns, ids)
  const conn = await amqp.connect(url)
  try {
    for (const id of ids) await deleteJournalStreams(conn, ns, id)
    const ch = await conn.createChannel()
    await ch.deleteQueue(registryStream(ns))
  } finally {
    await conn.close()
  }
}

/**
 * The end of a run: every weave stopped (woken first, should one be frozen by SIGSTOP), the
 * namespace removed from `url`, the effects service closed.
 */
export async function tearDown(procs: readonly WeaveProc[], url: string, ns: string, ids: readonly string[], effects: Effects): Promise<void> {
  for (const p of procs) {
    p.proc.kill('SIGCONT')
    p.proc.kill('SIGTERM')
    await p.exited
  }
  await removeReplNamespace(url, ns, ids)
  await effects.close()
}

/** Thread ends reported by the weaves (`done THREAD JSON`), by thread; the same thread twice must agree. */
export class Ends {
  readonly ends = new Map<string, string>()
  readonly #want: number
  readonly all: Promise<void>
  #resolve: () => void = () => {}

  constructor(want: number) {
    this.#want = want
    this.all = new Promise((r) => (this.#resolve = r))
  }

  /** Takes a `done` line; throws when a thread ended twice with different results. */
  line(line: string): void {
    if (!line.startsWith('done ')) return
    const sp = line.indexOf(' ', 5)
    const thread = line.slice(5, sp)
    const result = line.slice(sp + 1)
    const had = this.ends.get(thread)
    if (had !== undefined && had !== result) throw new Error(`thread ${thread} ended twice with different results:\n${had}\n${result}`)
    this.ends.set(thread, result)
    if (this.ends.size >= this.#want) this.#resolve()
  }

  /** Every thread of weaves `ids` ended as in an uninterrupted run (see repl-child.ts). */
  expectUninterrupted(ids: readonly string[], count: number, steps: number): void {
    const expected = Array.from({ length: count }, (_, i) => i)
    for (const id of ids) {
      const peers = ids.filter((x) => x !== id)
      const byId = JSON.parse(this.ends.get(`${id}/1`)!) as Record<string, number[]>
      const byName = JSON.parse(this.ends.get(`${id}/2`)!) as Record<string, number[]>
      for (const peer of peers) {
        expect(byId[`${peer}/1`], `what ${id}/1 got from ${peer}/1`).toEqual(expected)
        expect(byName[`${peer}/2`], `what ${id}/2 got from ${peer}/2`).toEqual(expected)
      }
      expect(JSON.parse(this.ends.get(`${id}/3`)!), `the answers of saga ${id}/3`).toEqual(Array.from({ length: steps }, (_, i) => `charged:${id}-${i}`))
    }
  }
}

/** Resolves once weave process `p` has printed `line`; rejects if it exits first. */
export function lineFrom(p: WeaveProc, line: string): Promise<void> {
  return new Promise((resolve, reject) => {
    if (p.lines.includes(line)) return resolve()
    p.proc.stdout!.on('data', () => setImmediate(() => p.lines.includes(line) && resolve()))
    void p.exited.then(() => (p.lines.includes(line) ? resolve() : reject(new Error(`${p.id} ended before '${line}': ${p.lines.slice(-8).join(' | ')} ${p.stderr.slice(-800)}`))))
  })
}

/** Rejects after `ms` with what each process printed last (a test's bound on a run; not a timed assertion). */
export function deadline(ms: number, procs: readonly WeaveProc[], what: string): { promise: Promise<never>; clear: () => void } {
  let timer: NodeJS.Timeout | undefined
  let last: NodeJS.Timeout | undefined
  const promise = new Promise<never>((_, reject) => {
    const tell = (c: WeaveProc): string => `${c.id}: ${c.lines.filter((l) => !l.startsWith('progress ') && !l.startsWith('done ')).join(' | ')} | last: ${c.lines.slice(-3).join(' | ')} ${c.stderr.slice(-500)}`
    timer = setTimeout(() => {
      for (const c of procs) if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGUSR2')
    }, ms - 1_000)
    last = setTimeout(() => reject(new Error(`${what} did not finish: ${procs.map(tell).join(' || ')}`)), ms)
  })
  return {
    promise,
    clear: () => {
      clearTimeout(timer)
      clearTimeout(last)
    },
  }
}

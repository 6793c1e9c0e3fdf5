/**
 * Exactly once, in order, across crashes: three weave processes joined to one broker run a
 * message storm (each thread sends to the threads of the two other weaves) while one weave is
 * SIGKILLed and restarted, and the broker closes every connection (`rabbitmqctl
 * close_all_connections`). Each thread must receive every message of each peer exactly once,
 * in the order sent. Synchronisation is on the children's output lines. The broker is a node of
 * the test's own (test/support/rabbit-nodes.ts): closing every connection of the service broker
 * would disturb the other tests running beside this one.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { declareWeaves, freshNamespace } from './support/broker.js'
import { supportScript } from './support/child.js'
import { rabbitNodesOrSkip, type RabbitNodes } from './support/rabbit-nodes.js'
import { tempDir } from './support/tmp.js'

const CHILD = supportScript('amqp-child.ts')
const COUNT = Number(process.env['STORM_COUNT'] ?? 200)

interface Child {
  proc: ChildProcess
  lines: string[]
  exited: Promise<number | null>
}

const started: Child[] = []

function startWeave(args: string[], onLine: (line: string) => void): Child {
  const proc = spawn(process.execPath, ['--conditions=raiment-source', '--import', 'tsx', CHILD, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  const c: Child = { proc, lines: [], exited: new Promise((r) => proc.on('exit', (code) => r(code))) }
  let stderr = ''
  proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
  proc.on('exit', (code, sig) => {
    if (code !== 0 && sig === null) c.lines.push(`exit ${code}: ${stderr.slice(-1500)}`)
  })
  createInterface({ input: proc.stdout }).on('line', (l) => {
    c.lines.push(l)
    onLine(l)
  })
  started.push(c)
  return c
}

afterEach(async () => {
  for (const c of started.splice(0)) {
    c.proc.kill('SIGKILL')
    await c.exited
  }
})

let nodes: RabbitNodes | null = null

beforeAll(async () => {
  nodes = await rabbitNodesOrSkip({ count: 1, amqpPort: 5686, distPort: 25686, ctlDistPort: 45686 }, 'the message storm test')
}, 90_000)

afterAll(async () => {
  await nodes?.stopAll()
})

describe('message storm across three weave processes', () => {
  it('every message arrives exactly once, in send order per pair, through a SIGKILL and closed connections', async (ctx) => {
    if (nodes === null) return ctx.skip()
    const broker = nodes
    const url = broker.url(0)
    const dir = tempDir('raiment-storm-')
    const ns = freshNamespace()
    const ids = ['a', 'b', 'c']
    await declareWeaves(ns, ids, url)
    try {
      const results = new Map<string, Record<string, number[]>>()
      let allDone: () => void = () => {}
      const finished = new Promise<void>((r) => (allDone = r))
      const side: { closedConnections?: Promise<void>; restarted?: Promise<void> } = {}
      let killed = false

      const run = (id: string): Child => {
        const peers = ids.filter((x) => x !== id).join(',')
        const c: Child = startWeave([dir, id, ns, url, peers, String(COUNT)], (line) => {
          if (line.startsWith('done ')) {
            results.set(id, JSON.parse(line.slice(5)) as Record<string, number[]>)
            if (results.size === ids.length) allDone()
          }
          // (a) SIGKILL weave b in the middle of its sends, and start it again at once.
          if (id === 'b' && !killed && line === 'progress 100') {
            killed = true
            c.proc.kill('SIGKILL')
            side.restarted = c.exited.then(() => void run('b'))
          }
          // (b) The broker closes every connection while a is still sending.
          if (id === 'a' && side.closedConnections === undefined && line === 'progress 150') {
            side.closedConnections = broker.closeAllConnections(0, 'raiment storm test')
          }
        })
        return c
      }
      for (const id of ids) run(id)
      let timer: NodeJS.Timeout | undefined
      const deadline = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`the storm did not finish: ${started.map((c) => c.lines.slice(-6).join(' | ')).join(' || ')}`)), Number(process.env["STORM_DEADLINE"] ?? 90_000))
      })
      await Promise.race([finished, deadline]).finally(() => clearTimeout(timer))
      await side.closedConnections
      await side.restarted
      expect(killed).toBe(true)
      expect(side.closedConnections).toBeDefined()
      const expected = Array.from({ length: COUNT }, (_, i) => i)
      for (const id of ids) {
        const got = results.get(id)!
        for (const peer of ids.filter((x) => x !== id)) expect(got[`${peer}/1`], `what ${id} got from ${peer}`).toEqual(expected)
      }
      const logs = started.flatMap((c) => c.lines.filter((l) => l.startsWith('log ')))
      expect(logs.some((l) => l.includes('broker connection lost')), logs.join('\n')).toBe(true)
    } finally {
      for (const c of started.splice(0)) {
        c.proc.kill('SIGTERM')
        await c.exited
      }
    }
  }, 120_000)
})

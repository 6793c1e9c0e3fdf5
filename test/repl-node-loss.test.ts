/**
 * Broker node loss: three replicated weave processes (test/support/repl-child.ts, durability
 * 'replicated') on a 3-node RabbitMQ cluster of the test's own (test/support/rabbit-nodes.ts:
 * their journal streams and queues replicated on the three nodes), all connected through node 0.
 * During the storm, node 1 is stopped, then started again. Nothing is lost or duplicated: every
 * thread ends as in an uninterrupted run, each effect happened once per call id, and no weave was
 * taken over or fenced (their connections and leases, on node 0, stayed up).
 * Synchronisation is on the children's output lines.
 */
import amqp from 'amqplib'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Topology } from '../src/amqp/topology.js'
import { deadline, Effects, Ends, lineFrom, startReplWeave, type WeaveProc } from './support/repl-cluster.js'
import { rabbitNodesOrSkip, type RabbitNodes } from './support/rabbit-nodes.js'
import { freshNamespace } from './support/broker.js'
import { tempDir } from './support/tmp.js'

const COUNT = 200
const STEPS = 30
const IDS = ['a', 'b', 'c']

let nodes: RabbitNodes | null = null

beforeAll(async () => {
  nodes = await rabbitNodesOrSkip({ count: 3, amqpPort: 5695, distPort: 25695, ctlDistPort: 45695 }, 'the broker node loss test')
}, 120_000)

afterAll(async () => {
  await nodes?.stopAll()
})

describe('broker node loss under replicated weaves', () => {
  it('a node of the cluster stopped and started again during the storm: nothing lost, nothing duplicated, no takeover', async (ctx) => {
    if (nodes === null) return ctx.skip()
    const cluster = nodes
    const url = cluster.url(0)
    const ns = freshNamespace()
    const conn = await amqp.connect(url)
    const ch = await conn.createChannel()
    const t = new Topology(ns)
    await t.exchanges(ch)
    for (const id of IDS) await t.weaveQueue(ch, id)
    await conn.close()
    const effects = new Effects()
    await effects.listen()
    const ends = new Ends(3 * IDS.length)
    const procs: WeaveProc[] = []
    const ready = new Set<string>()
    const side: { outage?: Promise<void> } = {}
    const onLine = (p: WeaveProc, line: string): void => {
      ends.line(line)
      if (line.startsWith('ready ')) ready.add(p.id)
      if (side.outage === undefined && ready.size === IDS.length && line.startsWith('progress a ') && Number(line.split(' ')[2]) >= 20) {
        side.outage = cluster.stopApp(1).then(() => cluster.startApp(1))
      }
    }
    try {
      for (const id of IDS) procs.push(startReplWeave({ dir: tempDir(), id, ns, url, peers: IDS.filter((x) => x !== id), count: COUNT, steps: STEPS, effects: effects.url, env: { REPL_TAKEOVER_MS: '4000' } }, onLine))
      const bound = deadline(90_000, procs, 'the node loss run')
      try {
        await Promise.race([Promise.all(procs.map((p) => lineFrom(p, `ready ${p.id}`))), bound.promise])
        await Promise.race([ends.all, bound.promise])
        expect(side.outage).toBeDefined()
        await Promise.race([side.outage, bound.promise])
      } finally {
        bound.clear()
      }
      ends.expectUninterrupted(IDS, COUNT, STEPS)
      expect(effects.done.size).toBe(IDS.length * STEPS)
      const all = procs.flatMap((p) => p.lines)
      expect(all.filter((l) => l.startsWith('took ') || l.startsWith('fenced ')), all.filter((l) => l.startsWith('log ')).join('\n')).toEqual([])
    } finally {
      for (const p of procs) {
        p.proc.kill('SIGTERM')
        await p.exited
      }
      await effects.close()
    }
  }, 180_000)
})

/**
 * Sends by name through broker outages. Three weave processes, on a RabbitMQ node of the test's
 * own (test/support/rabbit-nodes.ts: this test stops it and closes its connections, which the
 * service broker that other tests share must never see), send each other messages by registered
 * name while the broker's application is stopped for longer than three heartbeats (stop_app, then
 * start_app), and then while it closes every connection, three times. Every message must arrive
 * exactly once, in send order per pair, and no weave may have a dead letter: a weave whose view of
 * the others has gone stale still knows, durably, which weave holds each name, and a name it
 * cannot place yet waits. The storm holds at fixed points (STORM_HOLD) so that sends fall inside
 * each fault; synchronisation is on the children's output lines.
 */
import Database from 'better-sqlite3'
import { spawn, type ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { freshNamespace } from './support/broker.js'
import { supportScript } from './support/child.js'
import { rabbitNodesOrSkip, type RabbitNodes } from './support/rabbit-nodes.js'
import { tempDir } from './support/tmp.js'

const CHILD = supportScript('amqp-child.ts')
const IDS = ['a', 'b', 'c']
const COUNT = 150
/** Where every storm thread stops until told to go on: before its first send, then at each fault. */
const BEFORE = -1
const OUTAGE = 30
const BACK = 60
const CLOSES = [80, 100, 120]
/** The broker stays down this long once every weave has lost it: more than three heartbeats (200 ms), so each weave's view of the others is stale. */
const OUTAGE_MS = 1_000
/** After the last fault, the storm must end within this. */
const FINISH_MS = 30_000

interface Child {
  id: string
  proc: ChildProcess
  lines: string[]
  exited: Promise<void>
}

let nodes: RabbitNodes | null = null
const started: Child[] = []

beforeAll(async () => {
  nodes = await rabbitNodesOrSkip({ count: 1, amqpPort: 5681, distPort: 25681, ctlDistPort: 45681 }, 'broker outage tests')
}, 90_000)

afterAll(async () => {
  await nodes?.stopAll()
})

afterEach(async () => {
  for (const c of started.splice(0)) {
    c.proc.kill('SIGKILL')
    await c.exited
  }
})

/** Dead letters (how many for each reason) and messages not yet sent, in a weave's journal. */
function leftIn(file: string): { dead: Record<string, number>; outbox: number; waiting: number } {
  const db = new Database(file, { readonly: true, fileMustExist: true })
  try {
    return {
      dead: Object.fromEntries(db.prepare('SELECT reason, count(*) FROM dead_letters GROUP BY reason').raw(true).all() as Array<[string, number]>),
      outbox: db.prepare('SELECT count(*) FROM outbox').pluck().get() as number,
      waiting: db.prepare('SELECT count(*) FROM outbox_names').pluck().get() as number,
    }
  } finally {
    db.close()
  }
}

describe('messages by name through a broker outage', () => {
  it('arrive exactly once, in order per pair, none dead-lettered, through stop_app/start_app and closed connections', async ({ skip }) => {
    if (nodes === null) return skip()
    const broker = nodes
    const dir = tempDir('raiment-names-')
    const ns = freshNamespace()
    const results = new Map<string, Record<string, number[]>>()
    const waiters: Array<{ test: () => boolean; resolve: () => void }> = []
    const check = (): void => {
      for (const w of [...waiters]) {
        if (!w.test()) continue
        waiters.splice(waiters.indexOf(w), 1)
        w.resolve()
      }
    }
    /** Resolves once `test` holds, checked at each line a child prints. */
    const until = (test: () => boolean): Promise<void> => (test() ? Promise.resolve() : new Promise((resolve) => waiters.push({ test, resolve })))
    const children: Child[] = IDS.map((id) => {
      const peers = IDS.filter((x) => x !== id).join(',')
      const proc = spawn(process.execPath, ['--conditions=raiment-source', '--import', 'tsx', CHILD, dir, id, ns, broker.url(0), peers, String(COUNT), 'name'], {
        stdio: ['pipe', 'pipe', 'pipe'],
        env: { ...process.env, STORM_HOLD: [BEFORE, OUTAGE, BACK, ...CLOSES].join(',') },
      })
      const c: Child = { id, proc, lines: [], exited: new Promise((resolve) => proc.on('exit', () => resolve())) }
      let stderr = ''
      proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
      proc.on('exit', (code, sig) => {
        if (code !== 0 && sig === null) c.lines.push(`exit ${code}: ${stderr.slice(-1500)}`)
        check()
      })
      createInterface({ input: proc.stdout }).on('line', (l) => {
        c.lines.push(l)
        if (l.startsWith('done ')) results.set(id, JSON.parse(l.slice(5)) as Record<string, number[]>)
        check()
      })
      started.push(c)
      return c
    })
    const all = (line: string): Promise<void> => until(() => children.every((c) => c.lines.includes(line)))
    const logged = (text: string, times = 1): Promise<void> => until(() => children.every((c) => c.lines.filter((l) => l.startsWith('log ') && l.includes(text)).length >= times))
    const go = (): void => {
      for (const c of children) c.proc.stdin!.write('go\n')
    }

    // Each weave knows where the others' names are: the storm starts.
    await all(`progress ${BEFORE}`)
    go()
    // The broker stops; once every weave has lost it and their views of each other are stale,
    // they send on by name.
    await all(`progress ${OUTAGE}`)
    await broker.stopApp(0)
    await logged('broker connection lost')
    await new Promise((resolve) => setTimeout(resolve, OUTAGE_MS))
    go()
    // It starts again; they send on while they reconnect (their views not yet complete).
    await all(`progress ${BACK}`)
    await broker.startApp(0)
    go()
    // Each time every weave is connected again, the broker closes every connection, and they send on.
    for (let k = 0; k < CLOSES.length; k++) {
      await all(`progress ${CLOSES[k]}`)
      await logged('broker connection restored', k + 1)
      await broker.closeAllConnections(0, `raiment names test ${k + 1}`)
      go()
    }

    let timer: NodeJS.Timeout | undefined
    const finished = until(() => results.size === IDS.length || children.some((c) => c.lines.some((l) => l.startsWith('exit '))))
    const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), FINISH_MS)))
    const outcome = await Promise.race([finished, late]).finally(() => clearTimeout(timer))
    for (const c of started.splice(0)) {
      c.proc.kill('SIGTERM')
      await c.exited
    }
    const left = Object.fromEntries(IDS.map((id) => [id, leftIn(join(dir, `${id}.db`))]))
    const tails = children.map((c) => `${c.id}: ${c.lines.slice(-4).join(' | ')}`).join('\n')
    // What was dead-lettered says why a storm did not finish.
    expect(left, `the storm ${outcome === 'late' ? 'did not finish' : 'finished'}:\n${tails}`).toEqual(Object.fromEntries(IDS.map((id) => [id, { dead: {}, outbox: 0, waiting: 0 }])))
    expect(outcome).not.toBe('late')

    const expected = Array.from({ length: COUNT }, (_, i) => i)
    for (const id of IDS) {
      for (const peer of IDS.filter((x) => x !== id)) expect(results.get(id)?.[`${peer}/1`], `what ${id} got from ${peer}`).toEqual(expected)
    }
    // Each forced close is logged as what it was, never as a refused message.
    const logs = children.flatMap((c) => c.lines.filter((l) => l.startsWith('log ')))
    expect(logs.some((l) => l.includes('broker connection lost: the broker closed it: the broker is stopping or restarting')), logs.join('\n')).toBe(true)
    expect(logs.some((l) => l.includes("broker connection lost: the broker closed it at an operator's request") && l.includes('raiment names test 3')), logs.join('\n')).toBe(true)
    expect(logs.filter((l) => l.includes('refused')), logs.join('\n')).toEqual([])
  }, 120_000)
})

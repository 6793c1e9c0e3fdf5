// Failover, for `npm run bench` (issue 14): two replicated weave processes on one broker; weave
// 'lost' runs 1,000 threads (each ticks, then sleeps 1 s durably, in a loop), weave 'survivor'
// none. Once every thread has ticked, 'lost' is SIGKILLed (its journal directory deleted); timed
// from the SIGKILL to the moment every one of its 1,000 threads has made a live call on the
// survivor (which took it over after --takeover-after, default 10 s, rebuilt its journal from its
// stream and resumed its threads). Target: <= takeover-after + 3 s. Also the rebuild's entries/s.
// Knobs (environment): BENCH_FAILOVER_THREADS, BENCH_TAKEOVER_MS. One skip line without a broker.
import amqp from 'amqplib'
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { rmSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { registryStream } from '../src/replication/registry.js'
import { deleteJournalStreams } from '../src/replication/streams.js'
import { answers } from './amqp.js'
import { fmt, line, summarize, tempDir, verdict } from './common.js'

const URL_ = process.env['RAIMENT_BENCH_AMQP_URL'] ?? process.env['RAIMENT_AMQP_URL'] ?? 'amqp://guest:guest@127.0.0.1:5672'
const THREADS = Number(process.env['BENCH_FAILOVER_THREADS'] ?? 1_000)
const TAKEOVER_MS = Number(process.env['BENCH_TAKEOVER_MS'] ?? 10_000)
const CHILD = fileURLToPath(new URL('./failover-child.ts', import.meta.url))

interface Proc {
  proc: ChildProcess
  lines: string[]
  exited: Promise<void>
  wait(test: (l: string) => boolean): Promise<string>
}

function start(dir: string, id: string, ns: string, n: number): Proc {
  const proc = spawn(process.execPath, ['--conditions=raiment-source', '--import', 'tsx', CHILD, dir, id, ns, URL_, String(TAKEOVER_MS), String(n)], { stdio: ['ignore', 'pipe', 'inherit'] })
  const lines: string[] = []
  const waiters: Array<() => void> = []
  createInterface({ input: proc.stdout }).on('line', (l) => {
    lines.push(l)
    for (const w of waiters.splice(0)) w()
  })
  const exited = new Promise<void>((r) => proc.on('exit', () => r()))
  const wait = async (test: (l: string) => boolean): Promise<string> => {
    for (;;) {
      const found = lines.find(test)
      if (found !== undefined) return found
      if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`weave ${id} exited: ${lines.slice(-5).join(' | ')}`)
      await Promise.race([new Promise<void>((r) => waiters.push(r)), exited])
    }
  }
  return { proc, lines, exited, wait }
}

async function oneRun(): Promise<{ failoverMs: number; entries: number; rebuildMs: number }> {
  const ns = `bench-failover-${randomBytes(4).toString('hex')}`
  const lostDir = tempDir()
  const survivorDir = tempDir()
  const survivor = start(survivorDir.dir, 'survivor', ns, 0)
  await survivor.wait((l) => l === 'ready')
  const lost = start(lostDir.dir, 'lost', ns, THREADS)
  try {
    await lost.wait((l) => l === 'ticking')
    const killedAt = Date.now()
    lost.proc.kill('SIGKILL')
    await lost.exited
    rmSync(lostDir.dir, { recursive: true, force: true })
    const took = (await survivor.wait((l) => l.startsWith('took lost '))).split(' ')
    const running = await survivor.wait((l) => l.startsWith('running lost '))
    return { failoverMs: Number(running.split(' ')[2]) - killedAt, entries: Number(took[2]), rebuildMs: Number(took[3]) }
  } finally {
    survivor.proc.kill('SIGTERM')
    lost.proc.kill('SIGKILL')
    await survivor.exited
    survivorDir.done()
    lostDir.done()
    const conn = await amqp.connect(URL_)
    const ch = await conn.createChannel()
    for (const id of ['lost', 'survivor']) {
      await deleteJournalStreams(conn, ns, id)
      await ch.deleteQueue(`${ns}.weave.${id}`)
    }
    await ch.deleteQueue(registryStream(ns))
    await ch.deleteExchange(`${ns}.weaves`)
    await ch.deleteExchange(`${ns}.beat`)
    await conn.close()
  }
}

export async function failoverBench(runs: number, log: (s: string) => void, progress: (s: string) => void): Promise<void> {
  log('')
  log(`## Failover: a replicated weave of ${THREADS.toLocaleString('en-US')} threads SIGKILLed (journal dir deleted); from the kill to all its threads running on the survivor (takeover-after ${TAKEOVER_MS / 1000} s)`)
  if (!(await answers(URL_))) {
    log(`  skipped: no RabbitMQ at ${new URL(URL_).host} (start one with 'rabbitmq-server -detached')`)
    return
  }
  const secs: number[] = []
  const rates: number[] = []
  for (let r = 0; r < runs; r++) {
    const run = await oneRun()
    secs.push(run.failoverMs / 1000)
    rates.push(run.rebuildMs > 0 ? (run.entries / run.rebuildMs) * 1000 : 0)
    progress(`  failover run ${r + 1}/${runs}: ${fmt(run.failoverMs)} ms, rebuilt ${fmt(run.entries)} entries in ${fmt(run.rebuildMs)} ms`)
  }
  const s = summarize(secs)
  const target = { atMost: TAKEOVER_MS / 1000 + 3, text: `<= takeover-after + 3 s (${TAKEOVER_MS / 1000 + 3} s)` }
  log(line('SIGKILL to all threads running again on the survivor', s, 's') + ' ' + verdict(s.median, target, 'failover'))
  log(line(`  of which waiting for silence (takeover-after)`, summarize(secs.map(() => TAKEOVER_MS / 1000)), 's'))
  log(line('  rebuild of its journal from the stream', summarize(rates), 'entries/s'))
}

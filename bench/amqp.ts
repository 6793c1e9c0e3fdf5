// Cross-weave messaging over RabbitMQ, for `npm run bench` (issue 4), in the same run:
// - Raiment: messages per second from one weave process to another on the exactly-once path
//   (sender's journal + outbox, publisher confirms, receiver's received ids, ack after commit;
//   durability 'sync': an fsync per group commit on each side); and round-trip latency (median,
//   p99) of one thread pinging a thread of the other weave;
// - raw amqplib on the same broker: persistent publish with confirms to a quorum queue, consumed
//   with manual acks on a second connection, end to end; and a persistent request/reply round
//   trip through quorum queues, its echo in the same process (the anchor of the target), then
//   in a process of its own (bench/amqp-echo.ts), as Raiment's round trip crosses two weaves;
// and the ratios, with their targets beside them: throughput >= 70% of raw amqplib's (issue 4);
// round trip p50 <= 2x raw amqplib's request/reply p50 (issue 17). The round trips of the two
// run side by side, in BLOCKS blocks in turn (the machine's speed drifts by 1.5-3x within
// minutes; until 2026-12-06 raw amqplib's ran a minute or more after Raiment's). The round trip is timed inside
// the pinging thread by a journaled stamp call made together with the send (they share its
// commit) and one as soon as the reply reaches the thread. The stamp library is `journalOnly`, as
// the built-in clock, so the reply reaches the thread before its take commits, and the take, the
// stamps and the next send commit together (src/weft-pending.ts): two fsync'd commits lie in a
// round trip (the send's; the receiver's take with its reply), each required by exactly-once
// under 'sync'. (Until 2026-12-05 a take committed before its thread saw the message: four
// commits; until 2026-12-04 the stamp was taken alone before each send, a fifth.)
//
// The shape of the throughput run, both sides with about 1,000 messages in flight:
// - raw: one publisher keeps <= WINDOW (1,000) unconfirmed publishes in flight; one consumer
//   with prefetch 500 acks each delivery as it arrives. (With 2,000 in flight and prefetch 2,000
//   raw amqplib measured no faster here, so it keeps these.)
// - Raiment: PAIRS (50) source threads on weave 'tx', each sending PER (400) messages to its own
//   sink thread on weave 'rx', IN_FLIGHT (20) sends at a time (`Promise.all` of 20 sends, then
//   the next 20): 1,000 sends in flight. Each sink takes its messages IN_FLIGHT receives at a
//   time and checks they arrive in the order sent. The library's own windows apply: the relay
//   keeps <= 2,000 messages unconfirmed (src/amqp/relay.ts), the consumer a prefetch of 2,000
//   AMQP messages (src/amqp/inbound.ts), as an ack waits for the receiver's commit.
// - Raiment's relay packs the consecutive committed messages for one weave into one AMQP message
//   (up to 250 by default; each still taken once by its own id), where raw amqplib publishes one
//   AMQP message per message: the broker's work per message is what that saves. So each run also
//   measures Raiment with `batch: 1` (one AMQP message per message, the same broker work as raw)
//   and prints its ratio too, without the round trips; the target is checked on the default.
// - Timed from the moment weave 'tx' is told to start (its threads not yet spawned) to the end
//   of the last sink; raw from its first publish to its last delivery.
// On Linux each run also prints (as progress) the CPU time per message of each process: the two
// weaves and the broker, next to raw amqplib's process and the broker.
//
// Knobs (environment): BENCH_PAIRS, BENCH_PER, BENCH_IN_FLIGHT, BENCH_ROUNDS;
// BENCH_DURABILITY=batched runs both weaves without an fsync per commit (what the fsyncs cost);
// BENCH_RTT_TRACE=1 stamps each step of the round trips and prints the median of each
// (bench/amqp-probe.ts; the stamping itself costs a few microseconds per step);
// BENCH_CHILD_NODE_ARGS passes node options to the weave processes (e.g. '--cpu-prof').
// Without a broker it prints one line saying so and returns.
import amqp from 'amqplib'
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { createInterface } from 'node:readline'
import { portAnswers } from '../scripts/rabbit-node.js'
import { BATCH_ROWS } from '../src/amqp/relay.js'
import { Topology } from '../src/amqp/topology.js'
import { breakdown, type Stamp } from './amqp-probe.js'
import { fmt, line, summarize, tempDir, verdict } from './common.js'

const URL_ = process.env['RAIMENT_BENCH_AMQP_URL'] ?? process.env['RAIMENT_AMQP_URL'] ?? 'amqp://guest:guest@127.0.0.1:5672'
const PAIRS = Number(process.env['BENCH_PAIRS'] ?? 50)
const PER = Number(process.env['BENCH_PER'] ?? 400)
const IN_FLIGHT = Number(process.env['BENCH_IN_FLIGHT'] ?? 20)
const TOTAL = PAIRS * PER
const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 1_000)
/** The round trips run in this many blocks, Raiment's and raw amqplib's in turn; the first WARM of each block are not counted. */
const BLOCKS = 5
const WARM = 20
const WINDOW = 1_000
const BODY = Buffer.from(JSON.stringify({ k: 'msg', from: 'tx/1', to: 'rx/1', body: `J${JSON.stringify({ i: 1, pad: 'x'.repeat(120) })}` }))
const TARGET = { atLeast: 0.7, text: '>= 70% of raw amqplib' }
/** Issue 17: the round trip's p50 at most twice raw amqplib's request/reply p50, in the same run. */
const RTT_TARGET = { atMost: 2, text: 'round trip p50 <= 2x raw amqplib request/reply' }
/** BENCH_RTT_TRACE=1: each run also prints where the round trip's time goes (bench/amqp-probe.ts). */
const TRACE = process.env['BENCH_RTT_TRACE'] === '1'

/** Whether a broker answers at `url` (its TCP port accepts a connection). */
export function answers(url: string): Promise<boolean> {
  const u = new URL(url)
  return portAnswers(u.hostname, Number(u.port || 5672))
}

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN
}

interface Child {
  proc: ChildProcess
  next(prefix: string): Promise<string>
}

const CHILD = fileURLToPath(new URL('./amqp-child.ts', import.meta.url))
const ECHO = fileURLToPath(new URL('./amqp-echo.ts', import.meta.url))

function child(args: string[], script = CHILD): Child {
  const nodeArgs = process.env['BENCH_CHILD_NODE_ARGS']?.split(' ').filter(Boolean) ?? []
  const proc = spawn(process.execPath, [...nodeArgs, '--conditions=raiment-source', '--import', 'tsx', script, ...args], { stdio: ['pipe', 'pipe', 'inherit'] })
  const waiting: Array<{ prefix: string; resolve: (l: string) => void; reject: (e: Error) => void }> = []
  const seen: string[] = []
  createInterface({ input: proc.stdout }).on('line', (l) => {
    const i = waiting.findIndex((w) => l.startsWith(w.prefix))
    if (i >= 0) waiting.splice(i, 1)[0]!.resolve(l)
    else seen.push(l)
  })
  proc.on('exit', (code) => {
    for (const w of waiting.splice(0)) w.reject(new Error(`bench weave ${args[0]} exited (${code}) before '${w.prefix}'; last lines: ${seen.slice(-5).join(' | ')}`))
  })
  return {
    proc,
    next: (prefix) => {
      const i = seen.findIndex((l) => l.startsWith(prefix))
      if (i >= 0) return Promise.resolve(seen.splice(i, 1)[0]!)
      return new Promise((resolve, reject) => waiting.push({ prefix, resolve, reject }))
    },
  }
}

async function stop(c: Child): Promise<void> {
  if (c.proc.exitCode !== null) return
  const exited = new Promise((r) => c.proc.once('exit', r))
  c.proc.kill('SIGTERM')
  await exited
}

async function removeNamespace(ns: string): Promise<void> {
  const conn = await amqp.connect(URL_, { noDelay: true })
  try {
    const ch = await conn.createChannel()
    const t = new Topology(ns)
    for (const id of ['rx', 'tx']) await ch.deleteQueue(t.queue(id))
    await ch.deleteExchange(t.exchange)
    await ch.deleteExchange(t.beat)
  } finally {
    await conn.close()
  }
}

/** Clock ticks per second of /proc/<pid>/stat, or null where there is no /proc (not Linux). */
const TICKS: number | null = (() => {
  try {
    readFileSync('/proc/self/stat')
    return Number(execFileSync('getconf', ['CLK_TCK']).toString()) || 100
  } catch {
    return null
  }
})()

/** CPU time (user + system, ms) process `pid` has used, or null when unknown. */
function cpuMs(pid: number | null | undefined): number | null {
  if (TICKS === null || pid === null || pid === undefined) return null
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
    return ((Number(f[11]) + Number(f[12])) * 1000) / TICKS
  } catch {
    return null
  }
}

/** The broker's process when it runs on this machine (its CPU is then counted), else null. */
function brokerPid(): number | null {
  if (TICKS === null || !['127.0.0.1', 'localhost', '[::1]'].includes(new URL(URL_).hostname)) return null
  try {
    return Number(execFileSync('pgrep', ['-x', 'beam.smp']).toString().split('\n')[0]) || null
  } catch {
    return null
  }
}

/** CPU microseconds per message between two readings, or '?' when unknown. */
function perMessage(before: number | null, after: number | null): string {
  return before === null || after === null ? '?' : fmt(((after - before) * 1000) / TOTAL)
}

/**
 * One Raiment run: two weave processes, TOTAL messages, then (with `raw`) ROUNDS round trips in
 * BLOCKS blocks, each followed by a block of raw amqplib's request/reply (`raw`): the two are
 * measured side by side, as this machine's speed drifts from minute to minute.
 * `batch`: the link's option (at most this many messages per AMQP message), or null for its default.
 */
async function raimentRun(batch: number | null, raw: RawRtt | null): Promise<{ rate: number; rtts: number[]; rawRtts: number[]; cpu: string; steps: string[] }> {
  const tmp = tempDir()
  const ns = `bench-${randomBytes(4).toString('hex')}`
  const args = (role: string): string[] => [role, tmp.dir, ns, URL_, String(PAIRS), String(PER), String(ROUNDS), String(IN_FLIGHT), String(batch ?? 'default')]
  const rx = child(args('rx'))
  let tx: Child | null = null
  try {
    await rx.next('ready')
    tx = child(args('tx'))
    await tx.next('ready')
    const pids = [tx.proc.pid, rx.proc.pid, brokerPid()]
    const cpu0 = pids.map(cpuMs)
    tx.proc.stdin!.write('go\n')
    const t0 = Number((await tx.next('start ')).split(' ')[1])
    const [, t1, ok] = (await rx.next('done ')).split(' ')
    const cpu1 = pids.map(cpuMs)
    if (ok !== 'true') throw new Error('a receiver saw its messages out of order')
    const cpu = `tx ${perMessage(cpu0[0]!, cpu1[0]!)} + rx ${perMessage(cpu0[1]!, cpu1[1]!)} + broker ${perMessage(cpu0[2]!, cpu1[2]!)} us`
    const rate = TOTAL / ((Number(t1) - t0) / 1000)
    if (raw === null) return { rate, rtts: [], rawRtts: [], cpu, steps: [] }
    if (TRACE) {
      rx.proc.stdin!.write('probe\n')
      await rx.next('probing')
    }
    const rtts: number[] = []
    const rawRtts: number[] = []
    const txStamps: Stamp[] = []
    for (const n of blocks()) {
      tx.proc.stdin!.write(`ping ${n}\n`)
      rtts.push(...(JSON.parse((await tx.next('rtt ')).slice(4)) as number[]).slice(WARM))
      if (TRACE) txStamps.push(...(JSON.parse(readFileSync((await tx.next('stamps ')).slice(7), 'utf8')) as Stamp[]))
      rawRtts.push(...(await raw.roundTrips(n)).slice(WARM))
    }
    let steps: string[] = []
    if (TRACE) {
      rx.proc.stdin!.write('stamps\n')
      const rxStamps = JSON.parse(readFileSync((await rx.next('stamps ')).slice(7), 'utf8')) as Stamp[]
      steps = breakdown(txStamps, rxStamps)
    }
    return { rate, rtts, rawRtts, cpu, steps }
  } finally {
    if (tx) await stop(tx)
    await stop(rx)
    await removeNamespace(ns)
    tmp.done()
  }
}

/** ROUNDS round trips in BLOCKS blocks (their sizes). */
function blocks(): number[] {
  return Array.from({ length: BLOCKS }, (_, b) => Math.floor((ROUNDS * (b + 1)) / BLOCKS) - Math.floor((ROUNDS * b) / BLOCKS))
}

/**
 * Raw amqplib's request/reply, persistent both ways through quorum queues, one at a time: the
 * echo in this process (on its own connection), or (`apart`) in a process of its own.
 */
interface RawRtt {
  roundTrips(n: number): Promise<number[]>
  apart(n: number): Promise<number[]>
  close(): Promise<void>
}

async function rawRtt(): Promise<RawRtt> {
  const pub = await amqp.connect(URL_, { noDelay: true })
  const sub = await amqp.connect(URL_, { noDelay: true })
  const q = `bench-raw-${randomBytes(4).toString('hex')}`
  const request = `${q}-request`
  const reply = `${q}-reply`
  const admin = await pub.createChannel()
  for (const name of [request, reply]) await admin.assertQueue(name, { durable: true, arguments: { 'x-queue-type': 'quorum' } })
  const server = await sub.createChannel()
  const serving = await server.consume(request, (m) => {
    if (m === null) return
    server.sendToQueue(reply, m.content, { persistent: true, correlationId: m.properties.correlationId as string })
    server.ack(m)
  })
  const client = await pub.createChannel()
  let waiting: ((id: string) => void) | null = null
  await client.consume(reply, (m) => {
    if (m === null) return
    client.ack(m)
    const w = waiting
    waiting = null
    w?.(String(m.properties.correlationId))
  })
  const roundTrips = async (n: number): Promise<number[]> => {
    const rtts: number[] = []
    for (let i = 0; i < n; i++) {
      const t = performance.now()
      const back = new Promise<string>((r) => (waiting = r))
      client.sendToQueue(request, BODY, { persistent: true, correlationId: String(i) })
      const id = await back
      if (id !== String(i)) throw new Error(`correlation mismatch: sent ${i}, got ${id}`)
      rtts.push(performance.now() - t)
    }
    return rtts
  }
  return {
    roundTrips,
    // The echo in a process of its own, as a round trip of Raiment crosses two.
    async apart(n) {
      await server.cancel(serving.consumerTag)
      const echo = child([URL_, request, reply], ECHO)
      try {
        await echo.next('ready')
        return (await roundTrips(n)).slice(WARM)
      } finally {
        await stop(echo)
      }
    },
    async close() {
      for (const name of [request, reply]) await admin.deleteQueue(name).catch(() => {})
      await pub.close().catch(() => {})
      await sub.close().catch(() => {})
    },
  }
}

/** Raw amqplib, end to end: publish TOTAL with confirms (<= WINDOW in flight) while consuming with acks. */
async function rawRun(): Promise<{ rate: number; cpu: string }> {
  const pub = await amqp.connect(URL_, { noDelay: true })
  const sub = await amqp.connect(URL_, { noDelay: true })
  const q = `bench-raw-${randomBytes(4).toString('hex')}`
  try {
    const admin = await pub.createChannel()
    await admin.assertQueue(q, { durable: true, arguments: { 'x-queue-type': 'quorum' } })
    const cons = await sub.createChannel()
    await cons.prefetch(500)
    let got = 0
    let allIn: () => void = () => {}
    const received = new Promise<void>((r) => (allIn = r))
    const broker = brokerPid()
    const cpu0 = [process.cpuUsage(), cpuMs(broker)] as const
    const t0 = performance.now()
    await cons.consume(q, (m) => {
      if (m === null) return
      cons.ack(m)
      if (++got === TOTAL) allIn()
    })
    const ch = await pub.createConfirmChannel()
    await new Promise<void>((resolve, reject) => {
      let sent = 0
      let confirmed = 0
      let inFlight = 0
      const pump = (): void => {
        while (inFlight < WINDOW && sent < TOTAL) {
          inFlight++
          sent++
          ch.sendToQueue(q, BODY, { persistent: true }, (err) => {
            if (err) return reject(err as Error)
            inFlight--
            if (++confirmed === TOTAL) resolve()
            else pump()
          })
        }
      }
      pump()
    })
    await received
    const rate = TOTAL / ((performance.now() - t0) / 1000)
    const own = process.cpuUsage(cpu0[0])
    const cpu = `node ${fmt((own.user + own.system) / TOTAL)} + broker ${perMessage(cpu0[1], cpuMs(broker))} us`
    await cons.close()
    await admin.deleteQueue(q)
    return { rate, cpu }
  } finally {
    await pub.close().catch(() => {})
    await sub.close().catch(() => {})
  }
}

/** Runs the cross-weave benchmark `runs` times, printing with `log` (results) and `progress`. */
export async function amqpBench(runs: number, log: (s: string) => void, progress: (s: string) => void): Promise<void> {
  log('')
  log(`## Cross-weave messages over RabbitMQ: ${fmt(TOTAL)} messages, ${PAIRS} sender threads on one weave process (${IN_FLIGHT} sends in flight each) to ${PAIRS} receivers on another (durability ${process.env['BENCH_DURABILITY'] === 'batched' ? 'batched' : 'sync'}, exactly once); ${fmt(ROUNDS)} round trips`)
  if (!(await answers(URL_))) {
    log(`skipped: no RabbitMQ answers at ${new URL(URL_).host} (start one with 'rabbitmq-server -detached', or set RAIMENT_BENCH_AMQP_URL)`)
    return
  }
  const rates: number[] = []
  const alone: number[] = []
  const raws: number[] = []
  const ratios: number[] = []
  const aloneRatios: number[] = []
  const p50: number[] = []
  const p99: number[] = []
  const rp50: number[] = []
  const rp99: number[] = []
  const rttRatios: number[] = []
  const ap50: number[] = []
  const apartRatios: number[] = []
  for (let r = 0; r < runs; r++) {
    const rttRaw = await rawRtt()
    let w: Awaited<ReturnType<typeof raimentRun>>
    let apart: number[]
    try {
      w = await raimentRun(null, rttRaw)
      apart = await rttRaw.apart(ROUNDS)
    } finally {
      await rttRaw.close()
    }
    const one = await raimentRun(1, null)
    const raw = { ...(await rawRun()), rtts: w.rawRtts, apart }
    rates.push(w.rate)
    alone.push(one.rate)
    raws.push(raw.rate)
    ratios.push(w.rate / raw.rate)
    aloneRatios.push(one.rate / raw.rate)
    p50.push(percentile(w.rtts, 50))
    p99.push(percentile(w.rtts, 99))
    rp50.push(percentile(raw.rtts, 50))
    rp99.push(percentile(raw.rtts, 99))
    rttRatios.push(percentile(w.rtts, 50) / percentile(raw.rtts, 50))
    ap50.push(percentile(raw.apart, 50))
    apartRatios.push(percentile(w.rtts, 50) / percentile(raw.apart, 50))
    progress(`  amqp run ${r + 1}/${runs}: raiment ${fmt(w.rate)} msgs/s (one per AMQP message: ${fmt(one.rate)}), raw amqplib ${fmt(raw.rate)} msgs/s; rtt p50 ${fmt(percentile(w.rtts, 50))} ms (raw ${fmt(percentile(raw.rtts, 50))} ms; echo in its own process ${fmt(percentile(raw.apart, 50))} ms)`)
    progress(`    CPU per message: raiment ${w.cpu} (one per AMQP message: ${one.cpu}); raw amqplib ${raw.cpu}`)
    for (const l of w.steps) progress(`    ${l}`)
  }
  const ratio = summarize(ratios)
  log(line(`raiment, weave to weave, exactly once (up to ${BATCH_ROWS} messages per AMQP message, the default)`, summarize(rates), 'msgs/s'))
  log(line('  raw amqplib, quorum queue, persistent, confirms (<= 1,000 in flight), consume with acks', summarize(raws), 'msgs/s'))
  log(line('  raiment / raw amqplib', ratio, 'x') + ' ' + verdict(ratio.median, TARGET))
  log(line('raiment with batch: 1 (one AMQP message per message, as raw amqplib)', summarize(alone), 'msgs/s'))
  log(line('  raiment with batch: 1 / raw amqplib', summarize(aloneRatios), 'x'))
  log(line('raiment round trip (thread to thread and back: the send, the reply, their two commits), p50', summarize(p50), 'ms'))
  log(line('raiment round trip, p99', summarize(p99), 'ms'))
  log(line('  raw amqplib request/reply through quorum queues, persistent, p50', summarize(rp50), 'ms'))
  log(line('  raw amqplib request/reply, p99', summarize(rp99), 'ms'))
  log(line('  raiment round trip p50 / raw amqplib p50 (each run against its own raw run)', summarize(rttRatios), 'x') + ' ' + verdict(summarize(rttRatios).median, RTT_TARGET))
  log(line('  raw amqplib request/reply with the echo in a process of its own (as the two weaves), p50', summarize(ap50), 'ms'))
  log(line('  raiment round trip p50 / that p50 (for comparison; the target is checked above)', summarize(apartRatios), 'x'))
}

// Run on its own: node --conditions=raiment-source --import tsx bench/amqp.ts [runs]
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await amqpBench(Number(process.argv[2] ?? 1), console.log, (s) => void process.stderr.write(s + '\n'))
}

// `npm run bench`: Raiment's own benchmark (issue 2). Prints, each as the median of 3 runs with
// its target beside it:
// - journaled calls per second, one thread x 10,000 sequential calls and 100 threads x 1,000
//   concurrent calls to a no-op library, in each durability mode, next to a bare better-sqlite3
//   loop that inserts and commits the same rows in the same batches, with the ratio;
// - replay speed: entries per second resuming a thread whose journal holds 1,000,000 entries;
// - resume: 10,000 running threads x 100 entries each, from Weave.open to every thread running
//   live (bench/resume.ts);
// - resident memory per idle thread, 100,000 threads blocked in clock.sleep (child process).
// - messages between threads of one weave (bench/messages.ts), in each durability mode: msgs/s
//   from one thread to another, ping-pong round trips, the ring (10,000 threads x 100 laps) and
//   the spawn rate of 100,000 short threads (these two: --big-runs times, default once);
// - cross-weave messages over RabbitMQ: msgs/s and round trips between two weave processes, next
//   to raw amqplib on the same broker (bench/amqp.ts; one skip line when no broker answers).
// - journal replication (bench/replication.ts): W1 and W2 under durability replicated vs sync, on
//   the local broker and on the 3-node cluster when it answers; rebuild from the stream, entries/s.
// - failover: from the SIGKILL of a replicated weave of 1,000 threads to all of them running on
//   the weave that took it over (bench/failover.ts).
// - raiment ui (bench/ui.ts): HTTP pages over a journal of 1,000,000 threads, ms each.
// - raiment check: 10,000 running threads x 100 entries checked against a thread type on disk
//   (bench/check.ts), seconds, target < 10 s.
// - OpenTelemetry (bench/otel.ts): W2 without the hook, with the API and no SDK (within 3 %), and
//   with an SDK and a no-op exporter.
// - continue-as-new (bench/continue.ts): a stream to an actor that continues as new every EVERY
//   messages, msgs/s, and its resume afterwards, ms, next to one that never continues.
// - passivation (bench/passivate.ts): resident memory of a weave with 1,000,000 passivated threads
//   (--passivate-threads N), and the wake-up by a message of a thread with a 100-entry record.
// Options: --only seq,conc,replay,resume,idle,stream,pingpong,ring,spawn,amqp,repl,failover,ui,check,otel,continue,passivate   --runs N   --big-runs N
import { execFileSync } from 'node:child_process'
import { cpus, totalmem, release } from 'node:os'
import { fileURLToPath } from 'node:url'
import { fmt, line, summarize, verdict, verdicts, type Summary } from './common.js'
import { CONCURRENT, SEQUENTIAL, bareRun, weaveRun, type Workload } from './throughput.js'
import { buildRecord, replayRun } from './replay.js'
import { buildJournal, RESUME, resumeRun } from './resume.js'
import { pingPongRun, ringRun, spawnRun, streamRun } from './messages.js'
import type { Durability } from '../src/index.js'

const args = process.argv.slice(2)
const opt = (name: string): string | undefined => {
  const i = args.indexOf(name)
  return i >= 0 ? args[i + 1] : undefined
}
const RUNS = Number(opt('--runs') ?? 3)
const BIG_RUNS = Number(opt('--big-runs') ?? 1)
const only = new Set((opt('--only') ?? 'seq,conc,replay,resume,idle,stream,pingpong,ring,spawn,amqp,repl,failover,ui,check,otel,continue,passivate').split(','))
const PASSIVATED = Number(opt('--passivate-threads') ?? 1_000_000)
const MODES: Durability[] = ['sync', 'batched', 'memory']
const REPLAY_ENTRIES = 1_000_000
const IDLE_THREADS = 100_000
const STREAM = { messages: 20_000, window: 100 }
const PING_PONG_ROUNDS = 2_000
const RING = { size: 10_000, laps: 100, syncLaps: 10 }
const SPAWNS = 100_000

const TARGETS = {
  concurrentSync: { atLeast: 50_000, text: '>= 50,000 calls/s with sync' },
  sequentialRatio: { atMost: 1.5, text: 'within 1.5x of the bare loop' },
  replay: { atLeast: 1_000_000, text: '>= 1,000,000 entries/s' },
  resume: { atMost: 2, text: '10,000 threads x 100 entries running live in < 2 s' },
  idle: { atMost: 2.6 * 1024, text: '<= 2.6 KB (2,662 B) per thread' },
  streamSync: { atLeast: 20_000, text: '>= 20,000 durable msgs/s between threads with sync' },
  ring: { atMost: 60, text: 'ring of 10,000 threads x 100 laps under 60 s' },
  passivatedRss: { atMost: 300 * 2 ** 20, text: '<= 300 MB resident in all with 1,000,000 passivated threads' },
  wakeP50: { atMost: 1, text: 'p50 <= 1 ms' },
  wakeP99: { atMost: 10, text: 'p99 <= 10 ms' },
}

const log = (s: string): void => console.log(s)
const progress = (s: string): void => void process.stderr.write(s + '\n')

log(`Raiment benchmark: ${new Date().toISOString().slice(0, 10)}`)
log(`machine: ${cpus().length} x ${cpus()[0]?.model ?? 'unknown CPU'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Linux ${release()}, Node ${process.version}`)
log(`each figure: median of ${RUNS} runs; a fresh SQLite file in the OS temp dir per run`)

async function throughput(w: Workload, label: string): Promise<void> {
  log('')
  log(`## ${label}: ${w.threads} thread${w.threads > 1 ? 's' : ''} x ${w.calls.toLocaleString('en-US')} ${w.type} calls to a no-op library`)
  for (const mode of MODES) {
    const weave: number[] = []
    const bare: number[] = []
    const ratio: number[] = []
    let rowsPerCommit = 0
    for (let r = 0; r < RUNS; r++) {
      const run = await weaveRun(w, mode)
      const b = bareRun(run.batches, mode)
      weave.push(run.callsPerSec)
      bare.push(b)
      ratio.push(b / run.callsPerSec)
      rowsPerCommit = (w.threads * w.calls) / run.batches.length
      progress(`  ${w.type} ${mode} run ${r + 1}/${RUNS}: ${fmt(run.callsPerSec)} calls/s, bare ${fmt(b)} rows/s`)
    }
    const ws = summarize(weave)
    const target = w.type === 'concurrent' && mode === 'sync' ? ' ' + verdict(ws.median, TARGETS.concurrentSync, `${w.type} calls/s, ${mode}`) : ''
    log(line(`weave, ${mode}`, ws, 'calls/s') + target)
    log(line(`  bare better-sqlite3 loop, ${mode}, same rows (${fmt(rowsPerCommit)} per commit)`, summarize(bare), 'rows/s'))
    const rs = summarize(ratio)
    const rtarget = w.type === 'sequential' ? ' ' + verdict(rs.median, TARGETS.sequentialRatio, `${w.type} bare / weave, ${mode}`) : ''
    log(line(`  bare / weave`, rs, 'x') + rtarget)
  }
}

async function replay(): Promise<void> {
  log('')
  log(`## Replay: resuming a thread with ${REPLAY_ENTRIES.toLocaleString('en-US')} journal entries, Weave.open to the thread's end`)
  const t0 = performance.now()
  const record = buildRecord(REPLAY_ENTRIES)
  progress(`  built the record in ${fmt(performance.now() - t0)} ms`)
  try {
    const rates: number[] = []
    const open: number[] = []
    const rest: number[] = []
    for (let r = 0; r < RUNS; r++) {
      const run = await replayRun(record)
      rates.push(run.entriesPerSec)
      open.push(run.openMs)
      rest.push(run.runMs)
      progress(`  replay run ${r + 1}/${RUNS}: ${fmt(run.entriesPerSec)} entries/s`)
    }
    const s = summarize(rates)
    log(line('replay', s, 'entries/s') + ' ' + verdict(s.median, TARGETS.replay, 'replay entries/s'))
    log(line('  of which Weave.open (load the record, start the thread)', summarize(open), 'ms'))
    log(line('  and re-running the thread to its end', summarize(rest), 'ms'))
  } finally {
    record.done()
  }
}

async function resume(): Promise<void> {
  const { threads, entries } = RESUME
  log('')
  log(`## Resume: ${threads.toLocaleString('en-US')} running threads x ${entries} journal entries, Weave.open to every thread running live (asleep in its next call, clock.sleep)`)
  const t0 = performance.now()
  const journaled = buildJournal(threads, entries)
  progress(`  built the journal in ${fmt(performance.now() - t0)} ms`)
  try {
    const live: number[] = []
    const open: number[] = []
    const replayed: number[] = []
    for (let r = 0; r < RUNS; r++) {
      const run = await resumeRun(journaled)
      live.push(run.liveMs / 1000)
      open.push(run.openMs)
      replayed.push(run.replayedMs)
      progress(`  resume run ${r + 1}/${RUNS}: ${fmt(run.liveMs / 1000)} s`)
    }
    const s = summarize(live)
    log(line('resume', s, 's') + ' ' + verdict(s.median, TARGETS.resume, 'resume, 10,000 threads x 100 entries'))
    log(line('  of which Weave.open (load the records, start the threads)', summarize(open), 'ms'))
    log(line('  Weave.open to every record replayed', summarize(replayed), 'ms'))
    log(line('  entries replayed per second, to every record replayed', summarize(replayed.map((ms) => (threads * entries) / (ms / 1000))), 'entries/s'))
  } finally {
    journaled.done()
  }
}

interface IdleResult {
  threads: number
  spawnMs: number
  rss: number
  heapUsed: number
  external: number
}

interface PassivateResult {
  threads: number
  spawnMs: number
  rssTotal: number
  rss: number
  heapUsed: number
  wakeP50: number
  wakeP99: number
  reopenMs: number
  resumed: number
  wakeCpuP50: number
  wakeCpuP99: number
}

function passivate(): void {
  log('')
  log(`## Passivation: ${PASSIVATED.toLocaleString('en-US')} threads passivated in receive in one weave (child process, batched, passivateAfter 0; after forced GC), then wake-ups of threads with a 100-entry record by a message`)
  const script = fileURLToPath(new URL('./passivate.ts', import.meta.url))
  const runs: PassivateResult[] = []
  for (let r = 0; r < RUNS; r++) {
    const out = execFileSync(process.execPath, ['--expose-gc', '--conditions=raiment-source', '--import', 'tsx', script, String(PASSIVATED), 'batched'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
      maxBuffer: 1 << 20,
    })
    const res = JSON.parse(out.trim().split('\n').pop()!) as PassivateResult
    runs.push(res)
    progress(`  passivate run ${r + 1}/${RUNS}: ${fmt(res.rssTotal / 2 ** 20)} MB RSS in all, ${fmt(res.rss / res.threads)} B/thread, wake p50 ${res.wakeP50.toFixed(2)} ms p99 ${res.wakeP99.toFixed(2)} ms`)
  }
  const total = summarize(runs.map((x) => x.rssTotal))
  const scale = PASSIVATED === 1_000_000 ? '' : ` (measured with ${PASSIVATED.toLocaleString('en-US')}, not 1,000,000)`
  log(line('RSS of the weave process in all', summarize(runs.map((x) => x.rssTotal / 2 ** 20)), 'MB') + ' ' + verdict(total.median, TARGETS.passivatedRss, 'RSS with 1,000,000 passivated threads') + scale)
  log(line('  growth per passivated thread', summarize(runs.map((x) => x.rss / x.threads)), 'bytes'))
  log(line('  of which V8 heap used', summarize(runs.map((x) => x.heapUsed / x.threads)), 'bytes'))
  log(line('  time to spawn them and see every one passivated', summarize(runs.map((x) => x.spawnMs / 1000)), 's'))
  const p50 = summarize(runs.map((x) => x.wakeP50))
  const p99 = summarize(runs.map((x) => x.wakeP99))
  log(line('wake-up by a message, 100-entry record, p50', p50, 'ms') + ' ' + verdict(p50.median, TARGETS.wakeP50, 'passivated wake-up p50'))
  log(line('wake-up by a message, 100-entry record, p99', p99, 'ms') + ' ' + verdict(p99.median, TARGETS.wakeP99, 'passivated wake-up p99'))
  log(line('  CPU time of the process per wake-up, p50', summarize(runs.map((x) => x.wakeCpuP50)), 'ms') + '; p99 ' + runs.map((x) => x.wakeCpuP99.toFixed(2)).join(', ') + ' ms (wall time beyond it: waiting for a core)')
  log(line('opening the journal again (all stay passivated)', summarize(runs.map((x) => x.reopenMs)), 'ms') + ` (resumed: ${runs.map((x) => x.resumed).join(', ')})`)
}

function idle(): void {
  log('')
  log(`## Memory: ${IDLE_THREADS.toLocaleString('en-US')} threads blocked in clock.sleep (child process; after a warm-up, spawned 1,000 at a time; after forced GC)`)
  const script = fileURLToPath(new URL('./idle.ts', import.meta.url))
  const runs: IdleResult[] = []
  for (let r = 0; r < RUNS; r++) {
    const out = execFileSync(
      process.execPath,
      ['--expose-gc', '--conditions=raiment-source', '--import', 'tsx', script, String(IDLE_THREADS)],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 20 },
    )
    const res = JSON.parse(out.trim().split('\n').pop()!) as IdleResult
    runs.push(res)
    progress(`  idle run ${r + 1}/${RUNS}: ${fmt(res.rss / res.threads)} B/thread RSS, spawned in ${fmt(res.spawnMs)} ms`)
  }
  const per = (k: 'rss' | 'heapUsed' | 'external'): Summary => summarize(runs.map((x) => x[k] / x.threads))
  const rss = per('rss')
  log(line('RSS per idle thread', rss, 'bytes') + ' ' + verdict(rss.median, TARGETS.idle, 'RSS per idle thread'))
  log(line('  of which V8 heap used', per('heapUsed'), 'bytes'))
  log(line('  time to spawn them and see every one asleep', summarize(runs.map((x) => x.spawnMs)), 'ms'))
}

async function stream(): Promise<void> {
  log('')
  log(`## Messages from one thread to another: ${STREAM.messages.toLocaleString('en-US')} messages (${(STREAM.messages / 4).toLocaleString('en-US')} when awaited in turn), checked in send order`)
  for (const mode of MODES) {
    for (const window of [1, STREAM.window]) {
      const rates: number[] = []
      for (let r = 0; r < RUNS; r++) {
        rates.push(await streamRun(mode, window === 1 ? STREAM.messages / 4 : STREAM.messages, window))
        progress(`  stream ${mode} window ${window} run ${r + 1}/${RUNS}: ${fmt(rates[r]!)} msgs/s`)
      }
      const s = summarize(rates)
      const how = window === 1 ? 'each send and receive awaited in turn' : `${window} sends and ${window} receives in flight`
      const target = mode === 'sync' && window > 1 ? ' ' + verdict(s.median, TARGETS.streamSync, 'msgs/s between two threads, sync') : ''
      log(line(`${mode}, ${how}`, s, 'msgs/s') + target)
    }
  }
  log('  (awaited in turn, a message costs a commit: with sync, an fsync; in flight, many share one)')
}

async function pingPong(): Promise<void> {
  log('')
  log(`## Ping-pong: two threads, ${PING_PONG_ROUNDS.toLocaleString('en-US')} rounds of one message each way; round trip per round`)
  for (const mode of MODES) {
    const p50: number[] = []
    const p99: number[] = []
    for (let r = 0; r < RUNS; r++) {
      const rtt = (await pingPongRun(mode, PING_PONG_ROUNDS)).sort((a, b) => a - b)
      p50.push(rtt[Math.floor(rtt.length * 0.5)]!)
      p99.push(rtt[Math.floor(rtt.length * 0.99)]!)
      progress(`  ping-pong ${mode} run ${r + 1}/${RUNS}: median ${fmt(p50[r]!)} ms, p99 ${fmt(p99[r]!)} ms`)
    }
    log(line(`${mode}, round trip median`, summarize(p50), 'ms'))
    log(line(`${mode}, round trip p99`, summarize(p99), 'ms'))
  }
}

async function ring(): Promise<void> {
  log('')
  log(`## Ring: ${RING.size.toLocaleString('en-US')} threads pass a token ${RING.laps} times around, one message at a time (one run per mode unless --big-runs)`)
  for (const mode of MODES) {
    // With sync, each hop waits for its own fsync: 100 laps would take minutes; 10 tell the rate.
    const laps = mode === 'sync' ? RING.syncLaps : RING.laps
    const secs: number[] = []
    const rates: number[] = []
    const totals: number[] = []
    for (let r = 0; r < BIG_RUNS; r++) {
      const run = await ringRun(mode, RING.size, laps)
      secs.push(run.lapsMs / 1000)
      rates.push((RING.size * laps) / (run.lapsMs / 1000))
      totals.push(run.totalMs / 1000)
      progress(`  ring ${mode} run ${r + 1}/${BIG_RUNS}: ${fmt(run.lapsMs / 1000)} s for ${laps} laps`)
    }
    const s = summarize(secs)
    const target = mode !== 'sync' ? ' ' + verdict(s.median, TARGETS.ring, `ring, ${mode}`) : ''
    log(line(`${mode}, ${laps} laps (${(RING.size * laps).toLocaleString('en-US')} messages)`, s, 's') + target)
    log(line(`  ${mode}, messages/s`, summarize(rates), 'msgs/s'))
    log(line(`  ${mode}, with building the ring and stopping it`, summarize(totals), 's'))
  }
  log(`  (with sync, ${RING.syncLaps} laps only: each hop is a commit with its own fsync, one after another)`)
}

async function spawns(): Promise<void> {
  log('')
  log(`## Spawn rate: a thread spawns ${SPAWNS.toLocaleString('en-US')} short threads one after another (each spawn durable before the next), until all have ended`)
  for (const mode of MODES) {
    const rates: number[] = []
    for (let r = 0; r < BIG_RUNS; r++) {
      rates.push(await spawnRun(mode, SPAWNS))
      progress(`  spawn ${mode} run ${r + 1}/${BIG_RUNS}: ${fmt(rates[r]!)} threads/s`)
    }
    log(line(mode, summarize(rates), 'threads/s'))
  }
}

// Warm-up, unmeasured: JIT and first-use costs.
await weaveRun({ type: 'sequential', threads: 1, calls: 2_000 }, 'memory')
await weaveRun({ type: 'concurrent', threads: 10, calls: 1_000 }, 'memory')

if (only.has('seq')) await throughput(SEQUENTIAL, 'Sequential')
if (only.has('conc')) await throughput(CONCURRENT, 'Concurrent')
if (only.has('replay')) await replay()
if (only.has('resume')) await resume()
if (only.has('idle')) idle()
if (only.has('stream')) await stream()
if (only.has('pingpong')) await pingPong()
if (only.has('ring')) await ring()
if (only.has('spawn')) await spawns()
if (only.has('amqp')) await (await import('./amqp.js')).amqpBench(RUNS, log, progress)
if (only.has('repl')) await (await import('./replication.js')).replicationBench(RUNS, log, progress)
if (only.has('failover')) await (await import('./failover.js')).failoverBench(RUNS, log, progress)
if (only.has('ui')) await (await import('./ui.js')).uiBench(RUNS, log, progress)
if (only.has('check')) await (await import('./check.js')).checkBench(RUNS, log, progress)
if (only.has('passivate')) passivate()
if (only.has('otel')) await (await import('./otel.js')).otelBench(RUNS, log, progress)
if (only.has('continue')) await (await import('./continue.js')).continueBench(RUNS, log, progress)

log('')
log(`## Targets: ${verdicts.filter((v) => v.met).length} of ${verdicts.length} met`)
for (const v of verdicts) log(`${v.met ? 'MET   ' : 'MISSED'}  ${v.figure ? v.figure + ': ' : ''}${v.target}`)

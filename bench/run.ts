// `npm run bench`: Raiment's own benchmark (issue 2). Prints, each as the median of 3 runs with
// its target beside it:
// - journaled calls per second, one thread x 10,000 sequential calls and 100 threads x 1,000
//   concurrent calls to a no-op library, in each durability mode, next to a bare better-sqlite3
//   loop that inserts and commits the same rows in the same batches, with the ratio;
// - replay speed: entries per second resuming a thread whose journal holds 1,000,000 entries;
// - resident memory per idle thread, 100,000 threads blocked in clock.sleep (child process).
// - cross-weave messages over RabbitMQ: msgs/s and round trips between two weave processes, next
//   to raw amqplib on the same broker (bench/amqp.ts; one skip line when no broker answers).
// Options: --only seq,conc,replay,idle,amqp   --runs N
import { execFileSync } from 'node:child_process'
import { cpus, totalmem, release } from 'node:os'
import { fileURLToPath } from 'node:url'
import { fmt, line, summarize, verdict, verdicts, type Summary } from './common.js'
import { CONCURRENT, SEQUENTIAL, bareRun, weaveRun, type Workload } from './throughput.js'
import { buildRecord, replayRun } from './replay.js'
import type { Durability } from '../src/index.js'

const args = process.argv.slice(2)
const opt = (name: string): string | undefined => {
  const i = args.indexOf(name)
  return i >= 0 ? args[i + 1] : undefined
}
const RUNS = Number(opt('--runs') ?? 3)
const only = new Set((opt('--only') ?? 'seq,conc,replay,idle,amqp').split(','))
const MODES: Durability[] = ['sync', 'batched', 'memory']
const REPLAY_ENTRIES = 1_000_000
const IDLE_THREADS = 100_000

const TARGETS = {
  concurrentSync: { atLeast: 50_000, text: '>= 50,000 calls/s with sync' },
  sequentialRatio: { atMost: 1.5, text: 'within 1.5x of the bare loop' },
  replay: { atLeast: 1_000_000, text: '>= 1,000,000 entries/s' },
  idle: { atMost: 2.6 * 1024, text: '<= 2.6 KB (2,662 B) per thread' },
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

interface IdleResult {
  threads: number
  spawnMs: number
  rss: number
  heapUsed: number
  external: number
}

function idle(): void {
  log('')
  log(`## Memory: ${IDLE_THREADS.toLocaleString('en-US')} threads blocked in clock.sleep (child process; after a warm-up, spawned 1,000 at a time; after forced GC)`)
  const script = fileURLToPath(new URL('./idle.ts', import.meta.url))
  const runs: IdleResult[] = []
  for (let r = 0; r < RUNS; r++) {
    const out = execFileSync(
      process.execPath,
      ['--expose-gc', '--conditions=development', '--import', 'tsx', script, String(IDLE_THREADS)],
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

// Warm-up, unmeasured: JIT and first-use costs.
await weaveRun({ type: 'sequential', threads: 1, calls: 2_000 }, 'memory')
await weaveRun({ type: 'concurrent', threads: 10, calls: 1_000 }, 'memory')

if (only.has('seq')) await throughput(SEQUENTIAL, 'Sequential')
if (only.has('conc')) await throughput(CONCURRENT, 'Concurrent')
if (only.has('replay')) await replay()
if (only.has('idle')) idle()
if (only.has('amqp')) await (await import('./amqp.js')).amqpBench(RUNS, log, progress)

log('')
log(`## Targets: ${verdicts.filter((v) => v.met).length} of ${verdicts.length} met`)
for (const v of verdicts) log(`${v.met ? 'MET   ' : 'MISSED'}  ${v.figure ? v.figure + ': ' : ''}${v.target}`)

// `npm run bench -- --only repl`: journal replication (issue 14). In one run, on the local broker
// and, when it answers, on the 3-node cluster (RAIMENT_CLUSTER_URLS, comma-separated, else
// 127.0.0.1:5691-5693; the weave connects to the first):
// - W1 (one thread, 1,000 sequential steps) and W2 (100 threads x 100 steps, all at once) with
//   durability 'sync' (no broker) and 'replicated' (each outcome released once the broker
//   confirmed its batch), with the targets W2 replicated >= 50% of sync, W1 replicated step
//   latency <= 2x sync;
// - rebuild: a journal of 200,000 entries rebuilt from its stream into a new file, entries/s
//   (target >= 200,000).
import amqp from 'amqplib'
import { AmqpLink } from '../src/amqp/link.js'
import { Weave, type Durability } from '../src/index.js'
import { rebuildJournal } from '../src/replication/rebuild.js'
import { deleteJournalStreams } from '../src/replication/streams.js'
import { answers } from './amqp.js'
import { fmt, line, noop, runSteps, sequential, summarize, tempDir, verdict, W2 } from './common.js'

const LOCAL = process.env['RAIMENT_BENCH_AMQP_URL'] ?? process.env['RAIMENT_AMQP_URL'] ?? 'amqp://guest:guest@127.0.0.1:5672'
const CLUSTER = (process.env['RAIMENT_CLUSTER_URLS'] ?? [5691, 5692, 5693].map((p) => `amqp://guest:guest@127.0.0.1:${p}`).join(',')).split(',')
const W1 = { threads: 1, steps: 1_000 }
const REBUILD = { threads: 200, steps: 1_000 }

const TARGETS = {
  w2: { atLeast: 0.5, text: 'W2 replicated >= 50% of W2 sync' },
  w1: { atMost: 2, text: 'W1 step latency replicated <= 2x sync' },
  rebuild: { atLeast: 200_000, text: 'rebuild >= 200,000 entries/s' },
}

let nsCount = 0

/** Steps per second of `w` on a fresh weave; `url` and 'replicated' (or `replicate`): through that broker. */
async function run(w: { threads: number; steps: number }, durability: Durability, url: string | null, keep?: (ns: string) => Promise<void>): Promise<number> {
  const tmp = tempDir()
  const ns = `bench-repl-${process.pid}-${++nsCount}`
  const link = url === null ? null : await AmqpLink.connect({ url, namespace: ns, log: () => {} })
  const weave = await Weave.open({
    db: tmp.file('w.db'),
    weaveId: 'w',
    durability,
    threads: { sequential },
    libraries: { noop },
    ioLibs: false,
    dumps: false,
    ...(link !== null ? { remote: link, replicate: true } : {}),
  })
  try {
    const ms = await runSteps(weave, w)
    if (link !== null) await link.replicator!.flushed()
    return (w.threads * w.steps) / (ms / 1000)
  } finally {
    await weave.close()
    await link?.close()
    tmp.done()
    if (url !== null) {
      if (keep !== undefined) await keep(ns)
      await dropStreams(url, ns)
    }
  }
}

async function dropStreams(url: string, ns: string): Promise<void> {
  const conn = await amqp.connect(url)
  try {
    await deleteJournalStreams(conn, ns, 'w')
  } finally {
    await conn.close()
  }
}

async function workloads(where: string, url: string, runs: number, log: (s: string) => void, progress: (s: string) => void): Promise<void> {
  const figures: Record<string, number[]> = {}
  for (let r = 0; r < runs; r++) {
    for (const [name, w] of [['W1', W1], ['W2', W2]] as const) {
      for (const mode of ['sync', 'replicated'] as const) {
        const rate = await run(w, mode, mode === 'sync' ? null : url)
        ;(figures[`${name} ${mode}`] ??= []).push(rate)
        progress(`  repl ${where} ${name} ${mode} run ${r + 1}/${runs}: ${fmt(rate)} steps/s`)
      }
    }
  }
  const s = (k: string) => summarize(figures[k]!)
  for (const mode of ['sync', 'replicated']) {
    log(line(`${where}: W1 ${mode}`, s(`W1 ${mode}`), 'steps/s') + `, ${fmt(1000 / s(`W1 ${mode}`).median)} ms/step`)
  }
  const latency = summarize(figures['W1 sync']!.map((v, i) => v / figures['W1 replicated']![i]!))
  log(line(`${where}: W1 step latency, replicated / sync`, latency, 'x') + ' ' + verdict(latency.median, TARGETS.w1, `W1 latency ratio, ${where}`))
  for (const mode of ['sync', 'replicated']) log(line(`${where}: W2 ${mode}`, s(`W2 ${mode}`), 'steps/s'))
  const share = summarize(figures['W2 replicated']!.map((v, i) => v / figures['W2 sync']![i]!))
  log(line(`${where}: W2 replicated / sync`, share, 'x') + ' ' + verdict(share.median, TARGETS.w2, `W2 replicated / sync, ${where}`))
}

async function rebuild(url: string, runs: number, log: (s: string) => void, progress: (s: string) => void): Promise<void> {
  const rates: number[] = []
  for (let r = 0; r < runs; r++) {
    // The journal is written with durability 'sync' (the stream follows behind), then rebuilt.
    await run(REBUILD, 'sync', url, async (ns) => {
      const tmp = tempDir()
      try {
        const res = await rebuildJournal({ url, namespace: ns, weaveId: 'w', file: tmp.file('rebuilt.db') })
        if (res.entries !== REBUILD.threads * REBUILD.steps) throw new Error(`rebuilt ${res.entries} entries, expected ${REBUILD.threads * REBUILD.steps}`)
        rates.push(res.entries / (res.ms / 1000))
        progress(`  repl rebuild run ${r + 1}/${runs}: ${fmt(res.entries)} entries from ${fmt(res.records)} records in ${fmt(res.ms)} ms`)
      } finally {
        tmp.done()
      }
    })
  }
  const s = summarize(rates)
  log(line(`rebuild from the stream (${fmt(REBUILD.threads * REBUILD.steps)} entries)`, s, 'entries/s') + ' ' + verdict(s.median, TARGETS.rebuild, 'rebuild entries/s'))
}

export async function replicationBench(runs: number, log: (s: string) => void, progress: (s: string) => void): Promise<void> {
  log('')
  log(`## Journal replication: W1 (${W1.threads} thread x ${fmt(W1.steps)} sequential steps) and W2 (${W2.threads} threads x ${W2.steps} steps), durability sync (no broker) vs replicated; rebuild from the stream`)
  if (!(await answers(LOCAL))) {
    log(`skipped: no RabbitMQ answers at ${new URL(LOCAL).host} (start one with 'rabbitmq-server -detached', or set RAIMENT_BENCH_AMQP_URL)`)
    return
  }
  // Warm-up, unmeasured.
  await run({ threads: 10, steps: 100 }, 'replicated', LOCAL)
  await workloads('local broker', LOCAL, runs, log, progress)
  const cluster = CLUSTER[0]!
  if (await answers(cluster)) await workloads(`3-node cluster (${new URL(cluster).host})`, cluster, runs, log, progress)
  else log(`3-node cluster: skipped, nothing answers at ${new URL(cluster).host} (scripts/rabbitmq-cluster.sh start, or set RAIMENT_CLUSTER_URLS)`)
  await rebuild(LOCAL, runs, log, progress)
}

// A weave process of the cross-weave benchmark (bench/amqp.ts). Run it with
//   node --conditions=raiment-source --import tsx bench/amqp-child.ts ROLE DIR NS URL PAIRS PER ROUNDS IN_FLIGHT BATCH
// (BATCH: the link's `batch` option, or 'default')
// ROLE rx: weave 'rx' runs PAIRS sinks (rx/1 … rx/PAIRS), each taking PER messages from its
//   source, IN_FLIGHT receives at a time, and checking their order, and one pong (rx/PAIRS+1)
//   that answers ROUNDS pings. Prints `ready`, then `done <epoch ms> <in order?>` once every sink
//   has ended.
// ROLE tx: weave 'tx' prints `ready`; on the line `go` it prints `start <epoch ms>` and spawns
//   PAIRS sources, each sending PER messages to its sink, IN_FLIGHT sends at a time; on the line
//   `ping N` it runs N round trips to the pong (ROUNDS in all) and prints `rtt <json ms[]>`.
// Both use durability 'sync' (fsync per group commit; BENCH_DURABILITY=batched: none, durable
// against a crash of the process, not of the machine) and the exactly-once path: outbox,
// confirms, received ids. SIGTERM closes a weave.
import { writeFileSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { thread, Weave, type LibraryApi } from '../src/index.js'
import { AmqpLink } from '../src/amqp/link.js'
import { install, mark, probe } from './amqp-probe.js'

// BENCH_RTT_TRACE=1: time stamps along the round trips (bench/amqp-probe.ts).
const TRACE = process.env['BENCH_RTT_TRACE'] === '1'
if (TRACE) install()

const stamp = {
  async now(): Promise<number> {
    return performance.now()
  },
}
/** Reading the clock reaches nothing outside: `journalOnly`, as the built-in clock's `now`. */
const stampModule = { default: stamp, journalOnly: ['now'] }

declare module '../src/index.js' {
  interface Libraries {
    stamp: LibraryApi<typeof stamp>
  }
}

const [role, dir, ns, url, pairsText, perText, roundsText, inFlightText, batchText] = process.argv.slice(2)
if ((role !== 'rx' && role !== 'tx') || !dir || !ns || !url || !pairsText || !perText || !roundsText || !inFlightText || !batchText) {
  throw new Error('usage: amqp-child.ts rx|tx DIR NS URL PAIRS PER ROUNDS IN_FLIGHT BATCH')
}
const PAIRS = Number(pairsText)
const PER = Number(perText)
const ROUNDS = Number(roundsText)
const IN_FLIGHT = Number(inFlightText)
/** BENCH_DURABILITY: the weaves' durability, 'sync' (the default: an fsync per group commit) or 'batched'. */
const DURABILITY = process.env['BENCH_DURABILITY'] === 'batched' ? 'batched' : 'sync'
const say = (line: string): void => void writeSync(1, line + '\n')
/** Writes the stamps to a file beside the journal (too long for a line of the pipe); its path. */
const saveStamps = (stamps: unknown): string => {
  const file = join(dir, `${role}-stamps.json`)
  writeFileSync(file, JSON.stringify(stamps))
  return file
}

const sink = thread({
  uses: ['mailbox'],
  async does(p: { n: number; inFlight: number }) {
    let next = 0
    for (let k = 0; k < p.n; k += p.inFlight) {
      // Receives made together are answered in the order made, with messages in arrival order.
      const takes: Array<Promise<unknown>> = []
      for (let j = k; j < Math.min(k + p.inFlight, p.n); j++) takes.push(this.mailbox.receive())
      for (const m of (await Promise.all(takes)) as Array<{ i: number }>) {
        if (m.i !== next) return false
        next++
      }
    }
    return true
  },
})

const source = thread({
  uses: ['mailbox'],
  async does(p: { to: string; n: number; inFlight: number }) {
    for (let i = 0; i < p.n; i += p.inFlight) {
      // Sends made together go out in the order made (each queues its outbox row when called).
      const sends: Array<Promise<unknown>> = []
      for (let j = i; j < Math.min(i + p.inFlight, p.n); j++) sends.push(this.mailbox.send(p.to, { i: j, pad: 'x'.repeat(120) }))
      await Promise.all(sends)
    }
  },
})

const pong = thread({
  uses: ['mailbox'],
  async does(p: { n: number }) {
    for (let k = 0; k < p.n; k++) {
      const m = await this.mailbox.receive<{ from: string; k: number }>()
      mark('pong got')
      await this.mailbox.send(m.from, { k: m.k })
    }
  },
})

const ping = thread({
  uses: ['mailbox', 'threads', 'stamp'],
  async does(p: { to: string; n: number }) {
    const self = await this.threads.self()
    const rtts: number[] = []
    for (let k = 0; k < p.n; k++) {
      mark('ping send')
      // The time stamp is taken with the send (one commit for both), and once the reply reaches
      // the thread (before its take commits: the stamp is journal-only; that commit holds the
      // next send too): the interval holds the send's commit and the reply's, not a stamp's.
      const [t0] = await Promise.all([this.stamp.now(), this.mailbox.send(p.to, { from: self, k })])
      await this.mailbox.receive()
      mark('ping got')
      const t1 = await this.stamp.now()
      rtts.push(t1 - t0)
    }
    return rtts
  },
})

const link = await AmqpLink.connect({
  url,
  namespace: ns,
  heartbeatMs: 1_000,
  log: (l) => say(`log ${l}`),
  ...(batchText === 'default' ? {} : { batch: Number(batchText) }),
})
const weave = await Weave.open({
  db: join(dir, `${role}.db`),
  weaveId: role,
  durability: DURABILITY,
  threads: { sink, source, pong, ping },
  libraries: { stamp: stampModule },
  ioLibs: false,
  dumps: false,
  remote: link,
})
weave.on('error', (e) => say(`error ${e.message}`))
process.on('SIGTERM', () => {
  void link.close().then(() => weave.close()).then(() => process.exit(0))
})

if (role === 'rx') {
  // The threads exist before the weave takes messages.
  const sinks = Array.from({ length: PAIRS }, () => weave.spawn('sink', { n: PER, inFlight: IN_FLIGHT }))
  weave.spawn('pong', { n: ROUNDS })
  await weave.committed()
  await link.start(weave)
  say('ready')
  if (TRACE) {
    // The parent starts the stamps before the round trips and asks for them after.
    let stop: (() => unknown) | null = null
    createInterface({ input: process.stdin }).on('line', (l) => {
      if (l === 'probe') {
        stop = probe()
        say('probing')
      }
      if (l === 'stamps' && stop !== null) say(`stamps ${saveStamps(stop())}`)
    })
  }
  const ends = await Promise.all(sinks.map((id) => weave.join(id)))
  say(`done ${Date.now()} ${ends.every((e) => e.status === 'done' && e.result === true)}`)
} else {
  await link.start(weave)
  say('ready')
  createInterface({ input: process.stdin }).on('line', (l) => {
    if (l === 'go') {
      say(`start ${Date.now()}`)
      for (let k = 1; k <= PAIRS; k++) weave.spawn('source', { to: `rx/${k}`, n: PER, inFlight: IN_FLIGHT })
    }
    if (l.startsWith('ping ')) {
      const stop = TRACE ? probe() : null
      const id = weave.spawn('ping', { to: `rx/${PAIRS + 1}`, n: Number(l.slice(5)) })
      weave.join(id).then(
        (end) => {
          if (stop !== null) say(`stamps ${saveStamps(stop())}`)
          say(`rtt ${JSON.stringify(end.status === 'done' ? end.result : [])}`)
        },
        // Closed first (the bench stops it): nothing to say.
        () => {},
      )
    }
  })
}

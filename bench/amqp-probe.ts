// Time stamps along the cross-weave round trip (bench/amqp.ts with BENCH_RTT_TRACE=1), in a weave
// process of the benchmark (bench/amqp-child.ts). Nothing in src/ knows of it: it wraps, in this
// process only, the few public methods a message passes through (the outbox row queued, the
// relay woken by its commit, the publish and its confirm, the delivery, the inbox commit, the
// acknowledgement, SQLite's COMMIT) and stamps each with the wall clock at sub-millisecond
// precision (performance.timeOrigin + performance.now(), shared by the processes of one machine).
// `breakdown` (in the parent) merges the two processes' stamps, cuts them into round trips at the
// ping thread's sends, and times each step as the first stamp of its kind after the step before.
import { createRequire } from 'node:module'
import { Socket } from 'node:net'
import { dirname, join } from 'node:path'
import Database from 'better-sqlite3'
import { Messages } from '../src/messages.js'
import { Relay } from '../src/amqp/relay.js'

/** [epoch ms, label] */
export type Stamp = [number, string]

const stamps: Stamp[] = []
let on = false
const now = (): number => performance.timeOrigin + performance.now()

/** Stamps `label` now (while probing). */
export function mark(label: string): void {
  if (on) stamps.push([now(), label])
}

/** Starts stamping; returns a function that stops and hands over the stamps. */
export function probe(): () => Stamp[] {
  on = true
  return () => {
    on = false
    return stamps.splice(0)
  }
}

type Fn = (...a: unknown[]) => unknown
/** Wraps `proto[name]` so that `before` (and `after`) stamp around it. */
function wrap(proto: object, name: string, before: ((self: unknown, args: unknown[]) => void) | null, after: (() => void) | null = null): void {
  const p = proto as Record<string, Fn>
  const orig = p[name]!
  p[name] = function (this: unknown, ...args: unknown[]) {
    if (on && before !== null) before(this, args)
    const r = orig.apply(this, args)
    if (on && after !== null) after()
    return r
  }
}

/** Installs the wrappers (once, before the weave opens). */
export function install(): void {
  const require = createRequire(import.meta.url)
  // Not among the package's exports: found beside its entry point.
  const model = join(dirname(require.resolve('amqplib')), 'lib', 'channel_model.js')
  const { Channel, ConfirmChannel } = require(model) as { Channel: { prototype: object }; ConfirmChannel: { prototype: object } }
  wrap(Messages.prototype, 'outbox', () => mark('outbox queued'))
  wrap(Messages.prototype, 'receive', () => mark('delivered'))
  wrap(Relay.prototype, 'wake', () => mark('relay woken'))
  wrap(Channel.prototype, 'ack', () => mark('ack'))
  wrap(ConfirmChannel.prototype, 'publish', (_self, args) => {
    mark('publish')
    const cb = args[4] as Fn
    args[4] = (...a: unknown[]) => {
      mark('confirm')
      return cb(...a)
    }
  })
  // The publish reaches the socket in a later turn (amqplib writes its frames in a setImmediate).
  wrap(Socket.prototype, 'write', () => mark('socket write'))
  const db = new Database(':memory:')
  const stmt = Object.getPrototypeOf(db.prepare('SELECT 1')) as object
  db.close()
  const p = stmt as Record<string, Fn>
  const run = p['run']!
  p['run'] = function (this: { source: string }, ...args: unknown[]) {
    if (!on) return run.apply(this, args)
    const commit = this.source === 'COMMIT'
    if (commit) mark('commit start')
    const r = run.apply(this, args)
    if (commit) mark('commit')
    return r
  }
}

/** One step of the round trip: the first `label` stamped by weave `role` after the step before. */
interface Step {
  role: 'tx' | 'rx'
  label: string
  what: string
}

// A take reaches its thread before it commits (an early outcome: src/weft-pending.ts), so each
// side's one commit a round trip holds the take, and the reply or the next ping after it.
const STEPS: Step[] = [
  { role: 'tx', label: 'ping send', what: 'ping thread calls mailbox.send (and its stamp)' },
  { role: 'tx', label: 'outbox queued', what: 'send + outbox row queued for the group commit' },
  { role: 'tx', label: 'commit', what: 'group commit (fsync): the last take, the send' },
  { role: 'tx', label: 'relay woken', what: "relay woken by the commit's callback" },
  { role: 'tx', label: 'publish', what: 'relay reads the row and publishes' },
  { role: 'tx', label: 'socket write', what: 'the publish written to the socket' },
  { role: 'rx', label: 'delivered', what: 'broker to consumer: delivery taken' },
  { role: 'rx', label: 'pong got', what: 'receiving thread gets it (take not yet committed)' },
  { role: 'rx', label: 'outbox queued', what: 'reply queued' },
  { role: 'rx', label: 'commit', what: 'group commit (fsync): received id, take, reply' },
  { role: 'rx', label: 'relay woken', what: "relay woken by the commit's callback" },
  { role: 'rx', label: 'publish', what: 'relay reads the row and publishes' },
  { role: 'rx', label: 'socket write', what: 'the publish written to the socket' },
  { role: 'tx', label: 'delivered', what: 'broker to consumer: delivery taken' },
  { role: 'tx', label: 'ping got', what: 'ping thread gets it (take not yet committed)' },
]

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)] ?? NaN
}

/**
 * The median time of each step of the round trip, from the stamps of both weaves; lines of text.
 * Also the confirm (publish → confirm) and acknowledgement (delivery → ack) times, off the path.
 */
export function breakdown(tx: Stamp[], rx: Stamp[]): string[] {
  const all = [...tx.map(([t, l]) => [t, `tx ${l}`] as const), ...rx.map(([t, l]) => [t, `rx ${l}`] as const)].sort((a, b) => a[0] - b[0])
  const starts: number[] = []
  all.forEach(([, l], i) => {
    if (l === 'tx ping send') starts.push(i)
  })
  const deltas: number[][] = STEPS.map(() => [])
  const confirms: number[] = []
  /** Commits (fsyncs under 'sync') per round trip in each weave. */
  const commits: Record<'tx' | 'rx', number[]> = { tx: [], rx: [] }
  /** COMMIT statements alone (the fsync), of every commit stamped. */
  const fsyncs: number[] = []
  for (const side of [tx, rx]) {
    for (let i = 1; i < side.length; i++) if (side[i]![1] === 'commit' && side[i - 1]![1] === 'commit start') fsyncs.push(side[i]![0] - side[i - 1]![0])
  }
  const acks: number[] = []
  for (let r = 0; r + 1 < starts.length; r++) {
    const from = starts[r]!
    const to = starts[r + 1]!
    let i = from
    let prev = all[from]![0]
    const got: number[] = [0]
    for (let s = 1; s < STEPS.length; s++) {
      const want = `${STEPS[s]!.role} ${STEPS[s]!.label}`
      while (i <= to && all[i]![1] !== want) i++
      if (i > to) break
      got.push(all[i]![0] - prev)
      prev = all[i]![0]
    }
    if (got.length !== STEPS.length) continue
    got.forEach((d, s) => deltas[s]!.push(d))
    for (const side of ['tx', 'rx'] as const) {
      commits[side].push(all.slice(from, to).filter(([, l]) => l === `${side} commit`).length)
      const pub = all.slice(from, to + 1).find(([, l]) => l === `${side} publish`)
      const conf = pub && all.slice(from, to + 1).find(([t, l]) => l === `${side} confirm` && t >= pub[0])
      if (pub && conf) confirms.push(conf[0] - pub[0])
      const del = all.slice(from, to + 1).find(([, l]) => l === `${side} delivered`)
      const ack = del && all.slice(from, to + 1).find(([t, l]) => l === `${side} ack` && t >= del[0])
      if (del && ack) acks.push(ack[0] - del[0])
    }
  }
  const n = deltas[1]!.length
  const lines = [`round trip, step by step (median of ${n} round trips; ms since the step before):`]
  let total = 0
  STEPS.forEach((s, i) => {
    if (i === 0) return
    const m = median(deltas[i]!)
    total += m
    lines.push(`  ${s.role} ${s.what.padEnd(52)} ${m.toFixed(3)}`)
  })
  lines.push(`  sum of the medians ${total.toFixed(3)} ms; COMMIT alone (fsync) ${median(fsyncs).toFixed(3)} ms; off the path: publish → confirm ${median(confirms).toFixed(3)} ms, delivery → ack ${median(acks).toFixed(3)} ms`)
  const mean = (xs: number[]): string => (xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length)).toFixed(2)
  lines.push(`  commits per round trip (each an fsync): tx ${mean(commits.tx)}, rx ${mean(commits.rx)}`)
  return lines
}

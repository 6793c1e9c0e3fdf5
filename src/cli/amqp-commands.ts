/**
 * The CLI's broker side: joining `raiment start` to a broker (`--amqp`, `--id`, `--namespace`),
 * `raiment weaves` (the live weaves), and `raiment start --weaves N` (N weave processes on this
 * host, each restarted when it dies).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { hostname } from 'node:os'
import { basename, dirname, extname, join } from 'node:path'
import { createInterface } from 'node:readline'
import { AmqpLink } from '../amqp/link.js'
import { Membership, type Beat } from '../amqp/membership.js'
import { BrokerConnection } from '../amqp/connection.js'
import { checkName, DEFAULT_NAMESPACE, Topology } from '../amqp/topology.js'
import { weaveLog } from './weave-log.js'
import { InvalidArgument } from '../errors.js'
import { Journal } from '../journal.js'
import { silentReplicated, type Silent } from '../replication/silent.js'
import { absentWeaves, forget, ForgetRefused, type Absent } from '../amqp/roster.js'
import { age, CHILD_OF_WEAVES, errorLine, note, say, table } from './common.js'

/** The options `start` takes for joining a broker. */
export interface BrokerOptions {
  amqp?: string
  id?: string
  namespace?: string
  heartbeat?: string
  batch?: string
  weaves?: string
  replicate?: boolean
}

export function brokerUrl(o: BrokerOptions): string | undefined {
  const url = o.amqp ?? process.env['RAIMENT_AMQP_URL']
  return url === undefined || url === '' ? undefined : url
}

export function namespaceOf(o: BrokerOptions): string {
  const ns = o.namespace ?? DEFAULT_NAMESPACE
  const bad = checkName('--namespace', ns)
  if (bad) throw new InvalidArgument(bad)
  return ns
}

export function heartbeatOf(o: BrokerOptions): number {
  const ms = o.heartbeat === undefined ? 1_000 : Number(o.heartbeat)
  if (!(Number.isInteger(ms) && ms >= 50)) throw new InvalidArgument(`--heartbeat must be a whole number of ms from 50 up, got ${JSON.stringify(o.heartbeat)}`)
  return ms
}

function batchOf(o: BrokerOptions): number | undefined {
  if (o.batch === undefined) return undefined
  const n = Number(o.batch)
  if (!(Number.isInteger(n) && n >= 1)) throw new InvalidArgument(`--batch must be a whole number from 1 up (1 sends each message alone), got ${JSON.stringify(o.batch)}`)
  return n
}

/**
 * Checks --id against the journal (a journal keeps the weave id it was created with: thread ids
 * name it) and connects to the broker when there is a URL. Null without one: no network at all.
 * @throws BrokerUnreachable / BrokerLoginRefused / InvalidBrokerUrl / InvalidArgument
 */
export async function joinBroker(o: BrokerOptions & { db: string }): Promise<AmqpLink | null> {
  if (o.id !== undefined) {
    const bad = checkName('--id', o.id)
    if (bad) throw new InvalidArgument(bad)
    if (existsSync(o.db)) {
      const j = new Journal(o.db, { readonly: true })
      const had = j.weaveId
      j.close()
      if (had && had !== o.id) {
        throw new InvalidArgument(`${o.db} belongs to weave '${had}' (its thread ids name it); pass --id ${had}, or another --db for weave '${o.id}'`)
      }
    }
  }
  const url = brokerUrl(o)
  if (url === undefined) return null
  const batch = batchOf(o)
  return AmqpLink.connect({ url, namespace: namespaceOf(o), heartbeatMs: heartbeatOf(o), log: (line) => weaveLog.warn(line), ...(batch !== undefined ? { batch } : {}) })
}

export interface WeavesOptions {
  amqp?: string
  namespace?: string
  json?: boolean
  /** A weave retired for good: its queue is deleted, and it is listed no more. */
  forget?: string
  /** With `forget`: delete its queue even though messages wait in it. */
  force?: boolean
}

/** How long `raiment weaves` listens for answers to its probe. */
const LISTEN_MS = 750

/**
 * `raiment weaves`: asks every weave of the namespace to announce itself and lists them, then
 * the weaves that are not live: silent replicated ones (src/replication/silent.ts), and every
 * other one the roster names whose queue still exists (src/amqp/roster.ts), stopped cleanly or
 * silent, with the messages waiting for it. `--forget ID` deletes the queue of a weave that is
 * not live (retired for good), so it is listed no more.
 */
export async function weaves(o: WeavesOptions): Promise<number> {
  const url = brokerUrl(o)
  if (url === undefined) throw new InvalidArgument("'raiment weaves' asks the broker: pass --amqp URL (or set RAIMENT_AMQP_URL)")
  const topology = new Topology(namespaceOf(o))
  if (o.forget !== undefined) {
    const bad = checkName('--forget', o.forget)
    if (bad) throw new InvalidArgument(bad)
  } else if (o.force === true) throw new InvalidArgument('--force goes with --forget ID (it deletes the messages waiting for that weave)')
  const broker = await BrokerConnection.open(url, note)
  try {
    const members = new Membership(topology, null, 1_000)
    await members.attach(broker.connection!)
    members.probe()
    // Live weaves answer a probe at once; there is no event for "everyone has answered".
    await new Promise((r) => setTimeout(r, LISTEN_MS))
    const live = members.live()
    // Replicated weaves registered up that answer nothing and no live weave hosts: lost, or frozen.
    const silent = await silentReplicated(broker.connection!, topology.ns, live)
    if (o.forget !== undefined) return await forgetWeave(broker, topology, o.forget, o.force === true, live, silent)
    // Every other weave the namespace knows that is not live, and not retired (its queue exists).
    const absent = await absentWeaves(broker.connection!, topology, live, new Set(silent.map((w) => w.id)))
    if (o.json) {
      // `passivated` is null for a weave of an earlier build (its heartbeat does not say).
      say(JSON.stringify([...live.map(({ id, host, pid, threads, passivated, at, replication, journals, hostedBy }) => ({ id, host, pid, threads, passivated: passivated ?? null, lastHeartbeat: new Date(at).toISOString(), replicated: replication !== undefined, ...(replication !== undefined ? { replication } : {}), journals: journals ?? [id], ...(hostedBy !== undefined ? { hostedBy } : {}) })), ...silent.map(silentJson), ...absent.map(absentJson)]))
      return 0
    }
    for (const line of silent.map(silentLine)) note(line)
    for (const w of absent) note(absentLine(w, topology.ns))
    if (live.length === 0) {
      note(`no live weave in namespace '${topology.ns}' (start one with raiment start --amqp URL; weaves started with --namespace NS are listed with --namespace NS)`)
      return 0
    }
    const now = Date.now()
    const rows = live.map((b) => {
      const r = b.replication
      return [
        b.id,
        b.host,
        String(b.pid),
        // In memory, and passivated (running, out of memory until what they wait for comes).
        b.passivated === undefined || b.passivated === 0 ? String(b.threads) : `${b.threads} (+${b.passivated} passivated)`,
        `${age(b.at, now)} ago`,
        r === undefined ? 'no' : `yes (epoch ${r.epoch})`,
        r === undefined ? '-' : `${r.lag.entries} / ${bytes(r.lag.bytes)}`,
        r === undefined ? '-' : bytes(r.streamBytes),
        // A weave taken over runs in the process of the weave that took it (whose JOURNALS list it).
        b.hostedBy !== undefined ? `(hosted by ${b.hostedBy})` : (b.journals ?? [b.id]).join(','),
      ]
    })
    for (const line of table(['ID', 'HOST', 'PID', 'THREADS', 'LAST HEARTBEAT', 'REPLICATED', 'LAG (ENTRIES / BYTES)', 'STREAM', 'JOURNALS'], rows)) say(line)
    return 0
  } finally {
    await broker.close()
  }
}

/** `raiment weaves --forget ID`: deletes the queue of weave `id`, which is not live (see `forget`). */
async function forgetWeave(broker: BrokerConnection, topology: Topology, id: string, force: boolean, live: readonly Beat[], silent: readonly Silent[]): Promise<number> {
  const running = live.find((b) => b.id === id || (b.journals ?? []).includes(id))
  if (running !== undefined) {
    const where = running.id === id ? `on host ${running.host}, pid ${running.pid}` : `hosted by weave ${running.id} on host ${running.host}`
    throw new ForgetRefused('RAIMENT_WEAVE_LIVE', `weave ${id} is live (it answers, ${where}): nothing was deleted. --forget is for a weave retired for good: stop it first (SIGTERM), then forget it`)
  }
  if (silent.some((w) => w.id === id)) {
    throw new ForgetRefused(
      'RAIMENT_WEAVE_REPLICATED',
      `weave ${id} is a silent replicated weave, which a live weave of the namespace is to take over (its threads run on): nothing was deleted. Start it again (raiment start --replicate --db ITS_FILE --id ${id}), or remove it with its streams as docs/many-weaves.md (Topology) says`,
    )
  }
  const deleted = await forget(broker.connection!, topology, id, force)
  if (deleted === null) note(`weave ${id} has no queue in namespace '${topology.ns}' (${topology.queue(id)}): nothing to forget; raiment weaves does not list it`)
  else note(`forgot weave ${id}: deleted its queue ${topology.queue(id)}${deleted > 0 ? ` and the ${plural(deleted, 'message')} waiting in it` : ''}; raiment weaves lists it no more (started again, it is)`)
  return 0
}

/** "1 message", "3 messages". */
function plural(n: number, what: string): string {
  return `${n} ${what}${n === 1 ? '' : 's'}`
}

/** A weave that is not live, nor silent replicated, in `raiment weaves --json`. */
function absentJson(w: Absent): Record<string, unknown> {
  return { id: w.id, live: false, stopped: w.stopped, lastHeard: new Date(w.lastHeard).toISOString(), queued: w.queued, ...(w.host !== undefined ? { host: w.host } : {}), ...(w.pid !== undefined ? { pid: w.pid } : {}), ...(w.db !== undefined ? { db: w.db } : {}) }
}

/** The line `raiment weaves` says of a weave that is not live, nor silent replicated. */
function absentLine(w: Absent, ns: string): string {
  const waits = w.queued === 0 ? 'no message waits in its queue' : `${plural(w.queued, 'message')} ${w.queued === 1 ? 'waits' : 'wait'} in its queue`
  const start = `raiment start --amqp URL${ns === DEFAULT_NAMESPACE ? '' : ` --namespace ${ns}`} --db ${w.db ?? 'ITS_FILE'} --id ${w.id}${w.host !== undefined ? ` (on host ${w.host})` : ''}`
  const at = new Date(w.lastHeard).toISOString()
  if (w.stopped === 'clean') return `weave ${w.id} stopped cleanly at ${at}; ${waits}. Retired for good? raiment weaves --forget ${w.id} deletes its queue`
  return `weave ${w.id} is silent since ${at} (last heard; killed, frozen or cut off from the broker); ${waits}. Start it again on its journal: ${start}`
}

/** A silent replicated weave in `raiment weaves --json`. */
function silentJson(w: Silent): Record<string, unknown> {
  return { id: w.id, silent: true, replicated: true, ...(w.takeoverAfterMs !== undefined ? { takeoverAfterMs: w.takeoverAfterMs } : {}), ...(w.streamGoneFor !== undefined ? { streamGone: true, streamGoneSeenBy: w.streamGoneFor } : {}), ...(w.noCandidate === true ? { noCandidate: true } : {}), ...(w.declinedByAll === true ? { declinedByAll: true } : {}) }
}

/** The line `raiment weaves` says of a silent replicated weave. */
function silentLine(w: Silent): string {
  const after = w.takeoverAfterMs !== undefined ? `${w.takeoverAfterMs / 1000} s` : 'its takeover time'
  if (w.streamGoneFor !== undefined) {
    return (
      `RAIMENT_JOURNAL_STREAM_GONE: weave ${w.id} (replicated) is silent, and cannot be taken over: weave ${w.streamGoneFor} found its journal stream gone. ` +
      `Its threads are in its own journal file only: start it again on its own disk (raiment start --replicate --id ${w.id} --db ITS_FILE); weave ${w.streamGoneFor}'s log says what to do if that file is lost too`
    )
  }
  if (w.declinedByAll === true) {
    return `weave ${w.id} (replicated) is silent, and every live weave declines to take it over: each lacks one of the thread types its journal holds (their logs name them); start a weave that runs them all (it takes ${w.id} over after ${after} of silence), or start ${w.id} again (raiment start --db its journal --replicate)`
  }
  return w.noCandidate === true
    ? `weave ${w.id} (replicated) is silent: it answers nothing, and no live weave can take it over (none runs with raiment start --replicate); start it again (raiment start --db its journal --replicate), or a replicated weave of its namespace to take it over after ${after} of silence`
    : `weave ${w.id} (replicated) is silent: it answers nothing and no weave hosts it yet; a live weave takes it over after ${after} of silence (one that lacks its thread types declines)`
}

/** The db file of weave i of N: raiment.db → raiment-1.db. */
export function nthDb(db: string, i: number | string): string {
  const ext = extname(db)
  return join(dirname(db), `${basename(db, ext)}-${i}${ext || '.db'}`)
}

/** The exit status of a weave fenced by a takeover (raiment start --replicate): its slot starts it again, to be handed back. */
export const FENCED_EXIT = 3

const RESTART_FIRST_MS = 200
/** A weave started again to be handed back that exits 3 within this long was not (ms). */
const RECLAIM_RUN_MS = 60_000
const RESTART_MAX_MS = 10_000

/**
 * `raiment start --weaves N`: runs N weave processes (`raiment start --db <db>-i.db`, the same
 * other options), prefixes their output with `[i]`, restarts one that dies (it resumes its
 * threads; quick repeated deaths back off), stops them all on SIGINT/SIGTERM, and passes SIGHUP
 * on to each (a reload).
 *
 * Signals: each weave runs in its own process group, so a signal for this process's group
 * (Ctrl-C in a terminal, `kill -- -PGID`) reaches the weaves only as this process forwards it:
 * once each, whether it came to the group or to this pid alone. A second signal is forwarded too
 * (the weaves then exit without waiting). A weave watches its IPC channel to this process, so it
 * stops as well if this process dies, even by SIGKILL, without retiring: no `down` in the roster
 * or registry, so it is listed silent and a replicated one is taken over. The broker URL reaches the weaves
 * in their environment (RAIMENT_AMQP_URL), never on their command lines.
 */
export async function startMany(o: BrokerOptions & { db: string; moduleSchedulesOn?: string }, argv: readonly string[]): Promise<number> {
  const n = Number(o.weaves)
  if (!(Number.isInteger(n) && n >= 1 && n <= 64)) throw new InvalidArgument(`--weaves must be a whole number from 1 to 64, got ${JSON.stringify(o.weaves)}`)
  const url = brokerUrl(o)
  if (url === undefined) {
    throw new InvalidArgument('--weaves runs weaves that talk to each other through a broker: pass --amqp URL (or set RAIMENT_AMQP_URL), e.g. --amqp amqp://127.0.0.1:5672 (the guest login of a RabbitMQ on this host)')
  }
  // Fail here, once, on a bad URL or password, rather than in N restarting children.
  const probe = await BrokerConnection.open(url, note)
  await probe.close()
  const base = o.id ?? `${hostname().split('.')[0] ?? 'host'}-${basename(o.db, extname(o.db))}`.replace(/[^A-Za-z0-9_.-]/g, '-')
  const rest = withoutOptions(argv, ['--weaves', '--db', '--id', '--amqp'])
  const script = process.argv[1]!
  const env = { ...process.env, RAIMENT_AMQP_URL: url, [CHILD_OF_WEAVES]: '1' }
  const children = new Map<number, ChildProcess>()
  const restarts = new Set<NodeJS.Timeout>()
  let stopping = false
  let unclean = 0
  let resolveDone: (code: number) => void = () => {}
  const done = new Promise<number>((r) => (resolveDone = r))

  /** Slots whose weave was started again after it was taken over (fenced), to be handed back. */
  const reclaiming = new Set<number>()
  /** Per slot, which weave it runs: 1, then 2, 3, ... after a weave of the slot was taken over and not handed back. */
  const gens = new Map<number, number>()
  const slot = (i: number): { db: string; id: string } => {
    const g = gens.get(i) ?? 1
    return g === 1 ? { db: nthDb(o.db, i), id: `${base}-${i}` } : { db: nthDb(o.db, `${i}.${g}`), id: `${base}-${i}.${g}` }
  }
  const run = (i: number, delay: number): void => {
    const { db, id } = slot(i)
    // The schedules the thread modules declare fire on the slot's first weave alone (its journal
    // wherever it runs: taken over, it is hosted under that id), not once per weave.
    const schedulesOn = o.moduleSchedulesOn === undefined ? ['--module-schedules-on', `${base}-1`] : []
    const args = [...process.execArgv, script, 'start', ...rest, ...schedulesOn, '--db', db, '--id', id]
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe', 'ipc'], detached: true, env })
    const began = Date.now()
    children.set(i, child)
    for (const [stream, write] of [[child.stdout!, say], [child.stderr!, note]] as const) {
      createInterface({ input: stream }).on('line', (l) => write(`[${i}] ${l}`))
    }
    child.on('error', (e) => note(`[${i}] ${errorLine(e)}`))
    child.on('exit', (code, signal) => {
      children.delete(i)
      if (stopping) {
        if (code === 0) note(`[${i}] weave stopped`)
        else {
          unclean++
          note(`[${i}] weave ended (${signal ?? `code ${code}`}) while stopping`)
        }
        if (children.size === 0) resolveDone(unclean === 0 ? 0 : 1)
        return
      }
      if (code === FENCED_EXIT) {
        // Its threads run on the weave that took it over. Started again, it gets them back (that
        // weave hands it back: src/replication/host.ts); one started so that exits 3 again soon
        // (not handed back) leaves the slot to a fresh weave, with none.
        if (!(reclaiming.has(i) && Date.now() - began < RECLAIM_RUN_MS)) {
          reclaiming.add(i)
          note(`[${i}] weave ${id} was taken over by another (exit ${code}); starting it again: the weave that took it over hands it back`)
          run(i, RESTART_FIRST_MS)
          return
        }
        reclaiming.delete(i)
        gens.set(i, (gens.get(i) ?? 1) + 1)
        const fresh = slot(i)
        note(`[${i}] weave ${id} was not handed back (exit ${code}); starting a fresh weave ${fresh.id} on ${fresh.db}`)
        run(i, RESTART_FIRST_MS)
        return
      }
      // A weave that ran a while restarts at once; one that keeps dying backs off.
      const next = Date.now() - began > 10_000 ? RESTART_FIRST_MS : Math.min(delay * 2, RESTART_MAX_MS)
      note(`[${i}] weave exited (${signal ?? `code ${code}`}); restarting in ${(next / 1000).toFixed(1)} s`)
      const timer = setTimeout(() => {
        restarts.delete(timer)
        run(i, next)
      }, next)
      restarts.add(timer)
    })
  }
  for (let i = 1; i <= n; i++) run(i, RESTART_FIRST_MS)
  note(`running ${n} weaves (${base}-1 … ${base}-${n}); SIGINT or SIGTERM stops them all`)

  const stop = (sig: NodeJS.Signals): void => {
    if (!stopping) {
      stopping = true
      for (const t of restarts) clearTimeout(t)
      restarts.clear()
      note(`${sig}: stopping ${children.size} weaves`)
      if (children.size === 0) resolveDone(0)
    } else note(`${sig} again: the weaves exit without waiting`)
    for (const c of children.values()) c.kill(sig)
  }
  // SIGHUP: each weave loads its changed thread files (as `raiment start` alone does).
  const reload = (): void => {
    for (const c of children.values()) c.kill('SIGHUP')
  }
  process.on('SIGINT', stop)
  process.on('SIGTERM', stop)
  process.on('SIGHUP', reload)
  try {
    return await done
  } finally {
    process.off('SIGINT', stop)
    process.off('SIGTERM', stop)
    process.off('SIGHUP', reload)
  }
}

/** `argv` without the named options and their values (`--x v` and `--x=v`). */
function withoutOptions(argv: readonly string[], names: readonly string[]): string[] {
  const out: string[] = []
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    if (names.some((n) => a.startsWith(n + '='))) continue
    if (names.includes(a)) {
      i++
      continue
    }
    out.push(a)
  }
  return out
}

/** A byte count for people: 512 B, 3.2 KiB, 41.0 MiB. */
function bytes(n: number): string {
  if (n < 1024) return `${n} B`
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`
  return `${(n / 1024 / 1024).toFixed(1)} MiB`
}

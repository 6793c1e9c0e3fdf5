/**
 * How a RabbitMQ node of Raiment's own is configured, started and asked things: one place, used
 * by the test support (test/support/rabbit-nodes.ts: nodes that are children of a test and die
 * with it) and by scripts/rabbitmq-cluster.ts (three detached nodes that outlive the script).
 *
 * Nodes run the real server scripts (RABBITMQ_BIN, default /usr/lib/rabbitmq/bin; the /usr/sbin
 * wrappers would switch to the rabbitmq user and its cookie), with everything of theirs under one
 * directory: HOME holding a fresh `.erlang.cookie` (so neither the nodes nor their `rabbitmqctl`
 * can reach the service node rabbit@localhost), node name `<prefix><amqp port>@localhost`, AMQP
 * and distribution ports, mnesia, log and pid files, an empty env file (else
 * /etc/rabbitmq/rabbitmq-env.conf is read), a config file and an empty plugin list; epmd and
 * distribution on 127.0.0.1 only. `rabbitmqctl` gets a distribution port range of its own
 * (`ctlDistPort`.. +9), apart from the service's (35672..35682).
 *
 * Every node's VM carries RAIMENT_RABBIT_NODE=<mark of its set>:<node name> in its environment; a
 * pid is signalled only after /proc/<pid>/environ shows that mark, so a stale pid file can never
 * make us kill another process (the service node above all).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { join } from 'node:path'

export const RABBITMQ_BIN = process.env['RABBITMQ_BIN'] ?? '/usr/lib/rabbitmq/bin'
/** The server scripts are installed here. */
export const rabbitInstalled = existsSync(join(RABBITMQ_BIN, 'rabbitmq-server')) && existsSync(join(RABBITMQ_BIN, 'rabbitmqctl'))

export interface NodeSetOptions {
  /** Everything of the set lives here (created if missing; an existing cookie and mark are kept). */
  dir: string
  /** How many nodes, 1 to 9. */
  count: number
  /** Node i's AMQP port is amqpPort + i. */
  amqpPort: number
  /** Node i's Erlang distribution port is distPort + i. */
  distPort: number
  /** rabbitmqctl takes its distribution port from ctlDistPort..ctlDistPort + 9 (default amqpPort + 40000). */
  ctlDistPort?: number
  /** Node names are `<prefix><amqp port>@localhost`. */
  prefix: string
}

export interface NodeSpec {
  /** Erlang node name. */
  readonly name: string
  readonly amqpPort: number
  readonly distPort: number
  /** amqp://guest:guest@127.0.0.1:<amqp port> */
  readonly url: string
  /** The node's own files (config, mnesia, log, pid). */
  readonly dir: string
  readonly pidFile: string
  /** The environment its `rabbitmq-server` runs with. */
  readonly env: NodeJS.ProcessEnv
  /** RAIMENT_RABBIT_NODE=<this value> is in its VM's environment. */
  readonly mark: string
}

export interface NodeSet {
  readonly nodes: readonly NodeSpec[]
  /** The environment `rabbitmqctl` runs with (the set's cookie, its distribution port range). */
  readonly ctlEnv: NodeJS.ProcessEnv
}

/** Writes the files of a set of nodes under `o.dir` and says how to run them. */
export function layoutNodes(o: NodeSetOptions): NodeSet {
  if (!Number.isInteger(o.count) || o.count < 1 || o.count > 9) throw new Error(`count must be 1 to 9, got ${o.count}`)
  const home = join(o.dir, 'home')
  mkdirSync(home, { recursive: true })
  writeOnce(join(home, '.erlang.cookie'), randomBytes(20).toString('hex').toUpperCase(), 0o600)
  const mark = writeOnce(join(o.dir, 'mark'), randomBytes(6).toString('hex'))
  const envFile = join(o.dir, 'rabbitmq-env.conf')
  writeIfChanged(envFile, '')
  const ctlDist = o.ctlDistPort ?? o.amqpPort + 40_000
  const ctlEnv: NodeJS.ProcessEnv = {
    PATH: process.env['PATH'],
    LANG: 'C.UTF-8',
    HOME: home,
    RABBITMQ_CONF_ENV_FILE: envFile,
    ERL_EPMD_ADDRESS: '127.0.0.1',
    ERL_FLAGS: '-kernel inet_dist_use_interface {127,0,0,1}',
    RABBITMQ_CTL_DIST_PORT_MIN: String(ctlDist),
    RABBITMQ_CTL_DIST_PORT_MAX: String(ctlDist + 9),
  }
  const nodes: NodeSpec[] = []
  for (let i = 0; i < o.count; i++) {
    const amqpPort = o.amqpPort + i
    const name = `${o.prefix}${amqpPort}@localhost`
    const dir = join(o.dir, `${o.prefix}${amqpPort}`)
    mkdirSync(join(dir, 'log'), { recursive: true })
    // pause_minority: in a partition only the majority side keeps serving, so a lease (an
    // exclusive queue) can never be granted on both sides (docs/host-loss.md).
    const partitions = o.count > 1 ? 'cluster_partition_handling = pause_minority\n' : ''
    writeIfChanged(join(dir, 'rabbitmq.conf'), `listeners.tcp.1 = 127.0.0.1:${amqpPort}\n${partitions}`)
    writeIfChanged(join(dir, 'enabled_plugins'), '[].\n')
    const pidFile = join(dir, 'pid')
    const env: NodeJS.ProcessEnv = {
      ...ctlEnv,
      RAIMENT_RABBIT_NODE: `${mark}:${name}`,
      RABBITMQ_NODENAME: name,
      RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
      RABBITMQ_NODE_PORT: String(amqpPort),
      RABBITMQ_DIST_PORT: String(o.distPort + i),
      RABBITMQ_MNESIA_BASE: join(dir, 'mnesia'),
      RABBITMQ_MNESIA_DIR: join(dir, 'mnesia', name),
      RABBITMQ_LOG_BASE: join(dir, 'log'),
      RABBITMQ_PID_FILE: pidFile,
      RABBITMQ_CONFIG_FILE: join(dir, 'rabbitmq.conf'),
      RABBITMQ_ADVANCED_CONFIG_FILE: join(dir, 'advanced.config'),
      RABBITMQ_ENABLED_PLUGINS_FILE: join(dir, 'enabled_plugins'),
      // A node that dies writes its crash dump here, not in the caller's working directory.
      ERL_CRASH_DUMP: join(dir, `erl_crash-${name}.dump`),
    }
    nodes.push({ name, amqpPort, distPort: o.distPort + i, url: `amqp://guest:guest@127.0.0.1:${amqpPort}`, dir, pidFile, env, mark: `${mark}:${name}` })
  }
  return { nodes, ctlEnv }
}

/** The content of `file`, created with `content` unless it exists (so two processes laying out one set agree). */
function writeOnce(file: string, content: string, mode = 0o644): string {
  try {
    writeFileSync(file, content, { mode, flag: 'wx' })
    return content
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e
    return readFileSync(file, 'utf8').trim()
  }
}

/** Writes `file` only when its content differs (a node starting meanwhile never reads it half-written). */
function writeIfChanged(file: string, content: string): void {
  if (existsSync(file) && readFileSync(file, 'utf8') === content) return
  writeFileSync(file, content)
}

/**
 * Starts node n's `rabbitmq-server`. As a child (`detached` false) its output is piped to the
 * caller; detached, it runs in a session of its own with its output in `<node dir>/server.out`,
 * and outlives the caller.
 */
export function spawnNode(n: NodeSpec, detached: boolean): ChildProcess {
  const bin = join(RABBITMQ_BIN, 'rabbitmq-server')
  if (!detached) return spawn(bin, [], { env: n.env, cwd: n.dir, stdio: ['ignore', 'pipe', 'pipe'] })
  const out = openSync(join(n.dir, 'server.out'), 'a')
  const proc = spawn(bin, [], { env: n.env, cwd: n.dir, stdio: ['ignore', out, out], detached: true })
  proc.unref()
  return proc
}

/** Runs `rabbitmqctl -n <node> ARGS` in the set's environment; resolves to its output, rejects with its error output. */
export function rabbitmqctl(set: NodeSet, n: NodeSpec, args: readonly string[], timeoutMs = 60_000): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(join(RABBITMQ_BIN, 'rabbitmqctl'), ['-n', n.name, ...args], { env: set.ctlEnv, timeout: timeoutMs }, (err, out, errText) =>
      err ? reject(new Error(`rabbitmqctl -n ${n.name} ${args.join(' ')}: ${(errText || err.message).trim()}`)) : resolve(out),
    ),
  )
}

/** Resolves once node n's pid file is there and its broker application runs (`rabbitmqctl wait`). */
export async function waitNode(set: NodeSet, n: NodeSpec, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs
  for (;;) {
    const left = Math.max(1, Math.ceil((end - Date.now()) / 1000))
    try {
      await rabbitmqctl(set, n, ['wait', n.pidFile, '--timeout', String(left)], left * 1000 + 5_000)
      return
    } catch (e) {
      // The server writes its pid file in two steps: read between them, it is empty
      // (`garbage_in_pid_file`). Ask again until it is whole.
      if (!/garbage_in_pid_file/.test(String(e)) || Date.now() > end) throw e
      await new Promise((r) => setTimeout(r, 100))
    }
  }
}

/** Node `joiner` leaves whatever it was and joins the cluster of node `to`. */
export async function joinCluster(set: NodeSet, joiner: NodeSpec, to: NodeSpec): Promise<void> {
  await rabbitmqctl(set, joiner, ['stop_app'])
  await rabbitmqctl(set, joiner, ['join_cluster', to.name])
  await rabbitmqctl(set, joiner, ['start_app'])
}

/** The pid of node n's VM, if its pid file names a live process that carries n's mark. */
export function markedPid(n: NodeSpec): number | null {
  let pid: number
  try {
    pid = Number(readFileSync(n.pidFile, 'utf8').trim())
  } catch {
    return null
  }
  if (!Number.isInteger(pid) || pid <= 1) return null
  try {
    const env = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0')
    return env.includes(`RAIMENT_RABBIT_NODE=${n.mark}`) ? pid : null
  } catch {
    return null // gone
  }
}

/** Whether process `pid` is there (one this process may not signal is there too). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'
  }
}

export interface PidLockOptions {
  /** How long to wait for a live holder before `tooLong`'s error is thrown. */
  timeoutMs: number
  /** How often to look again while a live process holds it (no event says it let go). */
  pollMs: number
  /** Told at each look while `holder` holds it. */
  waiting?: (holder: number) => void
  tooLong: (holder: number) => Error
}

/**
 * Takes lock `file`, made holding this pid (`wx`: made by one process only), waiting while a live
 * process holds it; a lock a dead process left is taken over. An empty file is one being written
 * by its maker: looked at again, never taken over. Returns its release.
 */
export async function takePidLock(file: string, o: PidLockOptions): Promise<() => void> {
  const until = Date.now() + o.timeoutMs
  for (;;) {
    try {
      writeFileSync(file, String(process.pid), { flag: 'wx' })
      return () => rmSync(file, { force: true })
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e
    }
    let text: string
    try {
      text = readFileSync(file, 'utf8').trim()
    } catch {
      continue // released meanwhile
    }
    const holder = Number(text)
    if (text !== '' && (!Number.isInteger(holder) || holder <= 1 || !pidAlive(holder))) {
      rmSync(file, { force: true })
      continue
    }
    if (Date.now() > until) throw o.tooLong(holder)
    o.waiting?.(holder)
    await new Promise((r) => setTimeout(r, o.pollMs))
  }
}

/** SIGKILLs a pid, if it is still there. */
export function killPid(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL')
  } catch {
    // gone already
  }
}

/** Whether something accepts a TCP connection on host:port within a second. */
export function portAnswers(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host, port, timeout: 1_000 })
    s.once('connect', () => {
      s.destroy()
      resolve(true)
    })
    s.once('error', () => resolve(false))
    s.once('timeout', () => {
      s.destroy()
      resolve(false)
    })
  })
}

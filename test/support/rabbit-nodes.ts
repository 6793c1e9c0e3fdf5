/**
 * RabbitMQ nodes of a test's own, for tests that stop, kill or disconnect a broker: the service
 * broker (rabbit@localhost, 127.0.0.1:5672) is shared by every other test running in parallel and
 * is never touched here.
 *
 * Each node runs the real server scripts (RABBITMQ_BIN, default /usr/lib/rabbitmq/bin; the
 * /usr/sbin wrappers would switch to the rabbitmq user and its cookie) as a child of the test
 * process, with everything of its own under one temp dir: HOME holding a fresh `.erlang.cookie`
 * (so neither the nodes nor their `rabbitmqctl` can reach the service node), node name
 * `rt<amqp port>@localhost`, AMQP and distribution ports, mnesia, log and pid files, an empty
 * env file (else /etc/rabbitmq/rabbitmq-env.conf is read), its own config file and an empty
 * plugin list; epmd and distribution on 127.0.0.1 only. `rabbitmqctl` gets a distribution port
 * range of its own (`ctlDistPort`.. +9), apart from the service's (35672..35682).
 *
 * Node i (0-based) listens for AMQP on `amqpPort + i` and for distribution on `distPort + i`.
 * With `count` > 1 the nodes form one cluster (nodes 2..n join node 1 one at a time).
 *
 * Every node's VM carries RAIMENT_TEST_RABBIT=<token of this set>:<node name> in its environment;
 * a pid is signalled only after /proc/<pid>/environ shows that mark, so a stale pid file can
 * never make this kill another process (the service node above all).
 *
 * @example
 * const nodes = await startRabbitNodes({ count: 1, amqpPort: 5681, distPort: 25681, ctlDistPort: 45681 })
 * await nodes.stopApp(0); await nodes.startApp(0); await nodes.closeAllConnections(0)
 * await nodes.stopAll()
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export const RABBITMQ_BIN = process.env['RABBITMQ_BIN'] ?? '/usr/lib/rabbitmq/bin'
/** The server scripts are installed here (else tests that need nodes of their own skip, or fail under CI). */
export const rabbitInstalled = existsSync(join(RABBITMQ_BIN, 'rabbitmq-server')) && existsSync(join(RABBITMQ_BIN, 'rabbitmqctl'))

const CI = process.env['CI'] === 'true'

export interface RabbitNodesOptions {
  /** How many nodes, 1 to 9; more than one form a cluster. */
  count: number
  /** Node i's AMQP port is amqpPort + i. */
  amqpPort: number
  /** Node i's Erlang distribution port is distPort + i. */
  distPort: number
  /** rabbitmqctl takes its distribution port from ctlDistPort..ctlDistPort + 9 (default amqpPort + 40000). */
  ctlDistPort?: number
  /** How long one node may take to start (default 60 s). */
  startTimeoutMs?: number
}

export interface RabbitNode {
  /** Erlang node name, `rt<amqp port>@localhost`. */
  readonly name: string
  readonly amqpPort: number
  readonly distPort: number
  /** amqp://guest:guest@127.0.0.1:<amqp port> */
  readonly url: string
}

interface NodeState extends RabbitNode {
  dir: string
  env: NodeJS.ProcessEnv
  pidFile: string
  /** The `rabbitmq-server` script process while it runs. */
  proc: ChildProcess | null
  exited: Promise<void>
  output: string
}

/** Every set started by this process, killed on exit if a test did not stop them. */
const live = new Set<RabbitNodes>()
process.on('exit', () => {
  for (const s of live) s.killAllNow()
})

export class RabbitNodes {
  readonly nodes: readonly RabbitNode[]
  readonly #nodes: NodeState[]
  readonly #dir: string
  readonly #mark: string
  readonly #ctlEnv: NodeJS.ProcessEnv
  readonly #startTimeoutMs: number

  private constructor(o: RabbitNodesOptions) {
    if (!Number.isInteger(o.count) || o.count < 1 || o.count > 9) throw new Error(`count must be 1 to 9, got ${o.count}`)
    this.#dir = mkdtempSync(join(tmpdir(), 'raiment-rabbit-'))
    this.#mark = randomBytes(6).toString('hex')
    this.#startTimeoutMs = o.startTimeoutMs ?? 60_000
    const home = join(this.#dir, 'home')
    mkdirSync(home)
    writeFileSync(join(home, '.erlang.cookie'), randomBytes(20).toString('hex').toUpperCase(), { mode: 0o600 })
    const envFile = join(this.#dir, 'rabbitmq-env.conf')
    writeFileSync(envFile, '')
    const ctlDist = o.ctlDistPort ?? o.amqpPort + 40_000
    const common: NodeJS.ProcessEnv = {
      PATH: process.env['PATH'],
      LANG: 'C.UTF-8',
      HOME: home,
      RABBITMQ_CONF_ENV_FILE: envFile,
      ERL_EPMD_ADDRESS: '127.0.0.1',
      ERL_FLAGS: '-kernel inet_dist_use_interface {127,0,0,1}',
      RABBITMQ_CTL_DIST_PORT_MIN: String(ctlDist),
      RABBITMQ_CTL_DIST_PORT_MAX: String(ctlDist + 9),
    }
    this.#ctlEnv = common
    this.#nodes = []
    for (let i = 0; i < o.count; i++) {
      const amqpPort = o.amqpPort + i
      const name = `rt${amqpPort}@localhost`
      const dir = join(this.#dir, `rt${amqpPort}`)
      mkdirSync(join(dir, 'log'), { recursive: true })
      writeFileSync(join(dir, 'rabbitmq.conf'), `listeners.tcp.1 = 127.0.0.1:${amqpPort}\n`)
      writeFileSync(join(dir, 'enabled_plugins'), '[].\n')
      const pidFile = join(dir, 'pid')
      const env: NodeJS.ProcessEnv = {
        ...common,
        RAIMENT_TEST_RABBIT: `${this.#mark}:${name}`,
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
      }
      this.#nodes.push({ name, amqpPort, distPort: o.distPort + i, url: `amqp://guest:guest@127.0.0.1:${amqpPort}`, dir, env, pidFile, proc: null, exited: Promise.resolve(), output: '' })
    }
    this.nodes = this.#nodes
  }

  /**
   * Starts `count` nodes (clustered when more than one) and resolves once every one takes AMQP
   * connections. Rejects (after stopping what it started) when a node does not start, with the
   * end of its output.
   */
  static async start(o: RabbitNodesOptions): Promise<RabbitNodes> {
    if (!rabbitInstalled) throw new Error(`no RabbitMQ server scripts in ${RABBITMQ_BIN} (set RABBITMQ_BIN)`)
    const set = new RabbitNodes(o)
    live.add(set)
    try {
      await Promise.all(set.#nodes.map((_, i) => set.start(i)))
      const first = set.#nodes[0]!.name
      for (let i = 1; i < set.#nodes.length; i++) {
        await set.ctl(i, 'stop_app')
        await set.ctl(i, 'join_cluster', first)
        await set.ctl(i, 'start_app')
      }
    } catch (e) {
      await set.stopAll()
      throw e
    }
    return set
  }

  /** amqp://guest:guest@127.0.0.1:<port of node i> */
  url(i = 0): string {
    return this.#node(i).url
  }

  #node(i: number): NodeState {
    const n = this.#nodes[i]
    if (n === undefined) throw new Error(`no node ${i}: this set has ${this.#nodes.length}`)
    return n
  }

  /** Starts node i's VM (again, after `kill`: same name, same data) and waits until it runs. */
  async start(i: number): Promise<void> {
    const n = this.#node(i)
    if (n.proc !== null) throw new Error(`node ${n.name} is running already`)
    rmSync(n.pidFile, { force: true })
    n.output = ''
    const proc = spawn(join(RABBITMQ_BIN, 'rabbitmq-server'), [], { env: n.env, stdio: ['ignore', 'pipe', 'pipe'] })
    n.proc = proc
    const keep = (d: Buffer): void => void (n.output = (n.output + d.toString()).slice(-4_000))
    proc.stdout.on('data', keep)
    proc.stderr.on('data', keep)
    n.exited = new Promise((resolve) =>
      proc.on('exit', () => {
        if (n.proc === proc) n.proc = null
        resolve()
      }),
    )
    const died = n.exited.then(() => {
      throw new Error(`RabbitMQ node ${n.name} exited while starting: ${n.output.trim().split('\n').slice(-8).join(' | ')}`)
    })
    // `wait` returns once the pid file is there and the broker application runs.
    const up = this.ctl(i, 'wait', n.pidFile, '--timeout', String(Math.ceil(this.#startTimeoutMs / 1000)))
    await Promise.race([up, died])
  }

  /**
   * Runs `rabbitmqctl -n <node i> ARGS` with this set's cookie; resolves to its output, rejects
   * with its error output.
   */
  ctl(i: number, ...args: string[]): Promise<string> {
    const n = this.#node(i)
    return new Promise((resolve, reject) =>
      execFile(join(RABBITMQ_BIN, 'rabbitmqctl'), ['-n', n.name, ...args], { env: this.#ctlEnv, timeout: this.#startTimeoutMs }, (err, out, errText) =>
        err ? reject(new Error(`rabbitmqctl -n ${n.name} ${args.join(' ')}: ${(errText || err.message).trim()}`)) : resolve(out),
      ),
    )
  }

  /** Stops the broker application on node i (every connection to it closes; the VM stays). */
  async stopApp(i: number): Promise<void> {
    await this.ctl(i, 'stop_app')
  }

  /** Starts the broker application on node i again. */
  async startApp(i: number): Promise<void> {
    await this.ctl(i, 'start_app')
  }

  /** Node i closes every client connection, as an operator would. */
  async closeAllConnections(i: number, reason = 'closed by a Raiment test'): Promise<void> {
    await this.ctl(i, 'close_all_connections', reason)
  }

  /** SIGKILLs node i's VM (and its script) and waits for it to be gone. */
  async kill(i: number): Promise<void> {
    const n = this.#node(i)
    this.#killNow(n)
    await n.exited
  }

  /** Kills every node and removes their files. */
  async stopAll(): Promise<void> {
    this.killAllNow()
    await Promise.all(this.#nodes.map((n) => n.exited))
    live.delete(this)
    rmSync(this.#dir, { recursive: true, force: true })
  }

  /** SIGKILLs every node now, synchronously (from an exit handler too). */
  killAllNow(): void {
    for (const n of this.#nodes) this.#killNow(n)
  }

  #killNow(n: NodeState): void {
    const vm = this.#vmPid(n)
    if (vm !== null) signal(vm)
    if (n.proc?.pid !== undefined) signal(n.proc.pid)
  }

  /** The pid of node n's VM, if its pid file names a live process that carries this set's mark for it. */
  #vmPid(n: NodeState): number | null {
    let pid: number
    try {
      pid = Number(readFileSync(n.pidFile, 'utf8').trim())
    } catch {
      return null
    }
    if (!Number.isInteger(pid) || pid <= 1) return null
    try {
      const env = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0')
      return env.includes(`RAIMENT_TEST_RABBIT=${this.#mark}:${n.name}`) ? pid : null
    } catch {
      return null // gone
    }
  }
}

function signal(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL')
  } catch {
    // gone already
  }
}

/**
 * Starts nodes for a test file, or says why not: under CI=true a node that does not start is an
 * error; elsewhere it prints one line (once per run) and resolves to null, and the test skips.
 */
export async function rabbitNodesOrSkip(o: RabbitNodesOptions, what: string): Promise<RabbitNodes | null> {
  try {
    return await RabbitNodes.start(o)
  } catch (e) {
    if (CI) throw e
    try {
      closeSync(openSync(join(tmpdir(), `raiment-no-rabbit-nodes-${process.ppid}`), 'wx'))
      console.log(`${what} skipped: could not start a RabbitMQ node of its own (${(e as Error).message.split('\n')[0]}); install rabbitmq-server (with CI=true they fail instead)`)
    } catch {
      // another file said it
    }
    return null
  }
}

/** Starts `count` RabbitMQ nodes of the test's own (see RabbitNodes.start). */
export function startRabbitNodes(o: RabbitNodesOptions): Promise<RabbitNodes> {
  return RabbitNodes.start(o)
}

/**
 * RabbitMQ nodes of a test's own, for tests that stop, kill or disconnect a broker: the service
 * broker (rabbit@localhost, 127.0.0.1:5672) is shared by every other test running in parallel and
 * is never touched here.
 *
 * How a node is configured and started (its own HOME and cookie, ports, files, the mark a pid
 * must carry before it is signalled) is scripts/rabbit-node.ts, shared with
 * scripts/rabbitmq-cluster.sh; here the nodes are children of the test process, named
 * `rt<amqp port>@localhost`, under one temp dir removed by `stopAll`, and die with the test.
 *
 * Node i (0-based) listens for AMQP on `amqpPort + i` and for distribution on `distPort + i`.
 * With `count` > 1 the nodes form one cluster (nodes 2..n join node 1 one at a time).
 *
 * @example
 * const nodes = await startRabbitNodes({ count: 1, amqpPort: 5681, distPort: 25681, ctlDistPort: 45681 })
 * await nodes.stopApp(0); await nodes.startApp(0); await nodes.closeAllConnections(0)
 * await nodes.stopAll()
 */
import { type ChildProcess } from 'node:child_process'
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { joinCluster, killPid, layoutNodes, markedPid, pidAlive, rabbitInstalled, rabbitmqctl, RABBITMQ_BIN, spawnNode, waitNode, type NodeSet, type NodeSpec } from '../../scripts/rabbit-node.js'

export { RABBITMQ_BIN, rabbitInstalled }

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
  spec: NodeSpec
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
  readonly #set: NodeSet
  readonly #startTimeoutMs: number

  private constructor(o: RabbitNodesOptions) {
    this.#dir = mkdtempSync(join(tmpdir(), 'raiment-rabbit-'))
    this.#startTimeoutMs = o.startTimeoutMs ?? 60_000
    this.#set = layoutNodes({ dir: this.#dir, count: o.count, amqpPort: o.amqpPort, distPort: o.distPort, ctlDistPort: o.ctlDistPort, prefix: 'rt' })
    this.#nodes = this.#set.nodes.map((spec) => ({ name: spec.name, amqpPort: spec.amqpPort, distPort: spec.distPort, url: spec.url, spec, proc: null, exited: Promise.resolve(), output: '' }))
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
      const first = set.#nodes[0]!.spec
      for (const n of set.#nodes.slice(1)) await joinCluster(set.#set, n.spec, first)
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
    await killLeftovers(n.name)
    rmSync(n.spec.pidFile, { force: true })
    n.output = ''
    const proc = spawnNode(n.spec, false)
    n.proc = proc
    const keep = (d: Buffer): void => void (n.output = (n.output + d.toString()).slice(-4_000))
    proc.stdout?.on('data', keep)
    proc.stderr?.on('data', keep)
    n.exited = new Promise((resolve) =>
      proc.on('exit', () => {
        if (n.proc === proc) n.proc = null
        resolve()
      }),
    )
    const died = n.exited.then(() => {
      throw new Error(`RabbitMQ node ${n.name} exited while starting: ${n.output.trim().split('\n').slice(-8).join(' | ')}`)
    })
    const up = waitNode(this.#set, n.spec, this.#startTimeoutMs)
    await Promise.race([up, died])
  }

  /**
   * Runs `rabbitmqctl -n <node i> ARGS` with this set's cookie; resolves to its output, rejects
   * with its error output.
   */
  ctl(i: number, ...args: string[]): Promise<string> {
    return rabbitmqctl(this.#set, this.#node(i).spec, args, this.#startTimeoutMs)
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
    const vm = markedPid(n.spec)
    if (vm !== null) killPid(vm)
    if (n.proc?.pid !== undefined) killPid(n.proc.pid)
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

/**
 * Kills the VMs a test run killed before its nodes' stop (its worker SIGKILLed: `process.on('exit')`
 * never ran) left running under node name `name`: they hold its distribution port, and a node of
 * that name could not start (`dist_port_already_used`). Only a VM carrying a test set's mark for
 * that name (RAIMENT_RABBIT_NODE=<mark>:<name>, scripts/rabbit-node.ts) is ever signalled.
 */
async function killLeftovers(name: string): Promise<void> {
  const tail = `:${name}`
  const pids = readdirSync('/proc').filter((d) => /^\d+$/.test(d)).map(Number).filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').some((e) => e.startsWith('RAIMENT_RABBIT_NODE=') && e.endsWith(tail))
    } catch {
      return false // gone, or not ours to read
    }
  })
  for (const pid of pids) killPid(pid)
  // Gone once signal 0 finds no such process (the VM's epmd entry goes with it).
  for (const pid of pids) {
    for (let i = 0; i < 100 && pidAlive(pid); i++) await new Promise((resolve) => setTimeout(resolve, 50))
  }
}


/** Starts `count` RabbitMQ nodes of the test's own (see RabbitNodes.start). */
export function startRabbitNodes(o: RabbitNodesOptions): Promise<RabbitNodes> {
  return RabbitNodes.start(o)
}

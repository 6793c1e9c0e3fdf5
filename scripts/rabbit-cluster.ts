/**
 * A 3-node RabbitMQ cluster on 127.0.0.1 for tests and benchmarks (streams get 3 replicas):
 * `start` (idempotent), `status`, `stop`, `clean`, run by scripts/rabbitmq-cluster.sh (entry
 * scripts/rabbitmq-cluster.ts); the tests ask it for a stream's replicas (test/support/cluster.ts).
 *
 * The nodes are configured and started by scripts/rabbit-node.ts (as the test support's nodes
 * are), but detached: they outlive this process. Node i is `rc<port>@localhost`, AMQP on
 * RAIMENT_CLUSTER_PORT + i (default 5691..5693), distribution on that + 20000, rabbitmqctl's
 * distribution ports at that + 40000..+9; their files (cookie, mnesia, logs) under
 * RAIMENT_CLUSTER_DIR (default $TMPDIR/raiment-cluster), kept by `stop`, removed by `clean`.
 * The service broker rabbit@localhost (5672) is never touched: another cookie, other ports.
 */
import amqp from 'amqplib'
import { existsSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { joinCluster, killPid, layoutNodes, portAnswers, markedPid, rabbitInstalled, rabbitmqctl, RABBITMQ_BIN, spawnNode, takePidLock, waitNode, type NodeSet, type NodeSpec } from './rabbit-node.js'

export const DIR = process.env['RAIMENT_CLUSTER_DIR'] || join(tmpdir(), 'raiment-cluster')
const PORT = Number(process.env['RAIMENT_CLUSTER_PORT'] || 5691)
const START_TIMEOUT_MS = 90_000
/** A stream declared at `start` and looked at by `status`: its replicas show the cluster works. */
const CHECK_STREAM = 'raiment-cluster-check'

export class ClusterError extends Error {
  readonly code = 'RAIMENT_CLUSTER'
}

/** RAIMENT_CLUSTER_PORT (default 5691), checked. */
function basePort(): number {
  if (!Number.isInteger(PORT) || PORT < 1024 || PORT > 65535 - 40_010) throw new ClusterError(`RAIMENT_CLUSTER_PORT must be a port from 1024 to ${65535 - 40_010}, got ${process.env['RAIMENT_CLUSTER_PORT']}`)
  return PORT
}

/** The cluster's nodes (their files written under DIR if missing). */
export function layout(): NodeSet {
  basePort()
  return layoutNodes({ dir: DIR, count: 3, amqpPort: PORT, distPort: PORT + 20_000, ctlDistPort: PORT + 40_000, prefix: 'rc' })
}

/** The cluster's URLs, comma-separated (without touching its files). */
export const urls = (): string => [0, 1, 2].map((i) => `amqp://guest:guest@127.0.0.1:${basePort() + i}`).join(',')

function printUrls(set: NodeSet): void {
  for (const n of set.nodes) console.log(`  ${n.name}  ${n.url}`)
  console.log(`RAIMENT_CLUSTER_URLS=${urls()}`)
}

/** The last lines a node wrote, to say why it did not start. */
function tail(n: NodeSpec): string {
  const f = join(n.dir, 'server.out')
  if (!existsSync(f)) return ''
  return readFileSync(f, 'utf8').trim().split('\n').slice(-6).join(' | ')
}

/** The nodes node n counts in its cluster (`cluster_status`), running or not. */
async function members(set: NodeSet, n: NodeSpec): Promise<string[]> {
  const s = JSON.parse(await rabbitmqctl(set, n, ['cluster_status', '--formatter', 'json'])) as { disk_nodes?: string[]; ram_nodes?: string[] }
  return [...(s.disk_nodes ?? []), ...(s.ram_nodes ?? [])]
}

/** Declares the check stream (through the first node that answers) and says on which nodes its replicas are. */
async function checkStream(set: NodeSet): Promise<string[]> {
  const up = set.nodes.filter((n) => markedPid(n) !== null)
  const first = up[0]
  if (first === undefined) return []
  const conn = await amqp.connect(first.url)
  try {
    const ch = await conn.createChannel()
    await ch.assertQueue(CHECK_STREAM, { durable: true, arguments: { 'x-queue-type': 'stream', 'x-max-length-bytes': 1_000_000 } })
  } finally {
    await conn.close()
  }
  return streamReplicas(set, CHECK_STREAM)
}

/** The nodes holding a replica of stream (or quorum queue) `name` of the default vhost, asked of the first node that runs. */
export async function streamReplicas(set: NodeSet, name: string): Promise<string[]> {
  const first = set.nodes.find((n) => markedPid(n) !== null)
  if (first === undefined) throw new ClusterError(`no node of the cluster in ${DIR} runs`)
  const out = await rabbitmqctl(set, first, ['list_queues', 'name', 'members', '--formatter', 'json'])
  const q = (JSON.parse(out) as { name: string; members?: string[] }[]).find((r) => r.name === name)
  return q?.members ?? []
}

export async function start(): Promise<number> {
  if (!rabbitInstalled) throw new ClusterError(`no RabbitMQ server scripts in ${RABBITMQ_BIN}; install rabbitmq-server or set RABBITMQ_BIN`)
  const set = layout()
  const lock = join(DIR, 'start.lock')
  let said = false
  // A script, not a test: it looks twice a second.
  const release = await takePidLock(lock, {
    timeoutMs: START_TIMEOUT_MS,
    pollMs: 500,
    waiting: (holder) => {
      if (!said) console.log(`another start (pid ${holder}) is under way; waiting for it`)
      said = true
    },
    tooLong: (holder) => new ClusterError(`another start (pid ${holder}) holds ${lock} for too long; stop it, or remove the file if that pid is not a start`),
  })
  try {
    return await startLocked(set)
  } finally {
    release()
  }
}

async function startLocked(set: NodeSet): Promise<number> {
  const down = set.nodes.filter((n) => markedPid(n) === null)
  if (down.length === 0) {
    // Started by another `start` that may still be at it: wait until each node runs.
    const ok = await Promise.all(set.nodes.map((n) => portAnswers('127.0.0.1', n.amqpPort)))
    if (ok.includes(false)) await Promise.all(set.nodes.map((n) => waitNode(set, n, START_TIMEOUT_MS)))
    console.log(`cluster already running (data in ${DIR}):`)
    printUrls(set)
    return 0
  }
  for (const n of down) {
    if (await portAnswers('127.0.0.1', n.amqpPort)) throw new ClusterError(`port ${n.amqpPort} is taken by a process that is not node ${n.name} of ${DIR}; stop it or set RAIMENT_CLUSTER_PORT`)
  }
  const fresh = new Set(down.filter((n) => !existsSync(n.env['RABBITMQ_MNESIA_DIR']!)).map((n) => n.name))
  console.log(`starting ${down.map((n) => n.name).join(', ')} (data in ${DIR})`)
  for (const n of down) {
    rmSync(n.pidFile, { force: true })
    spawnNode(n, true)
  }
  try {
    await Promise.all(
      down.map((n) =>
        waitNode(set, n, START_TIMEOUT_MS).catch((e: Error) => {
          throw new ClusterError(`node ${n.name} did not start: ${e.message.split('\n')[0]} ${tail(n)}`)
        }),
      ),
    )
    const first = set.nodes[0]!
    const known = await members(set, first)
    for (const n of set.nodes.slice(1)) {
      if (known.includes(n.name) && !fresh.has(n.name)) continue
      console.log(`${n.name} joins ${first.name}`)
      await joinCluster(set, n, first)
    }
  } catch (e) {
    for (const n of down) {
      const pid = markedPid(n)
      if (pid !== null) killPid(pid)
    }
    throw e
  }
  const replicas = await checkStream(set)
  console.log(`cluster running; stream ${CHECK_STREAM} has ${replicas.length} replicas:`)
  printUrls(set)
  return replicas.length === set.nodes.length ? 0 : 1
}

export async function status(): Promise<number> {
  const set = layout()
  let upCount = 0
  for (const n of set.nodes) {
    const pid = markedPid(n)
    const ok = pid !== null && (await portAnswers('127.0.0.1', n.amqpPort))
    if (ok) upCount++
    console.log(`${n.name}  ${n.url}  ${ok ? `up (pid ${pid})` : pid !== null ? `starting (pid ${pid})` : 'down'}`)
  }
  if (upCount === 0) {
    console.log(`cluster not running (data in ${DIR}); start it with scripts/rabbitmq-cluster.sh start`)
    return 1
  }
  const replicas = await checkStream(set)
  console.log(`stream ${CHECK_STREAM}: ${replicas.length} replicas (${replicas.join(', ')})`)
  return upCount === set.nodes.length && replicas.length === set.nodes.length ? 0 : 1
}

export async function stop(): Promise<number> {
  if (!existsSync(DIR)) {
    console.log(`cluster not running (no ${DIR})`)
    return 0
  }
  const set = layout()
  const up = set.nodes.filter((n) => markedPid(n) !== null)
  if (up.length === 0) console.log('cluster not running')
  await Promise.all(
    up.map(async (n) => {
      try {
        await rabbitmqctl(set, n, ['stop', n.pidFile], 60_000)
      } catch {
        const pid = markedPid(n)
        if (pid !== null) killPid(pid)
      }
      console.log(`stopped ${n.name}`)
    }),
  )
  return 0
}

/** Stops the nodes and removes their files. */
export async function clean(): Promise<number> {
  await stop()
  rmSync(DIR, { recursive: true, force: true })
  console.log(`removed ${DIR}`)
  return 0
}

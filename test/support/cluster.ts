/**
 * The 3-node RabbitMQ cluster of scripts/rabbitmq-cluster.sh, for the tests and benchmarks that
 * need streams with 3 replicas. Its URLs come from RAIMENT_CLUSTER_URLS (comma-separated; set by
 * .ci/run), else the script's defaults (127.0.0.1:5691..5693). Under CI=true a cluster that does
 * not answer fails the test file; elsewhere it skips, and one line per run says how to start it.
 */
import { closeSync, existsSync, openSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DIR, layout, streamReplicas as replicas } from '../../scripts/rabbit-cluster.js'
import { portAnswers } from '../../scripts/rabbit-node.js'

const CI = process.env['CI'] === 'true'
const URLS = (process.env['RAIMENT_CLUSTER_URLS'] || [5691, 5692, 5693].map((p) => `amqp://guest:guest@127.0.0.1:${p}`).join(','))
  .split(',')
  .map((u) => u.trim())
  .filter((u) => u !== '')

function answers(url: string): Promise<boolean> {
  const u = new URL(url)
  return portAnswers(u.hostname, Number(u.port || 5672))
}

/**
 * A `scripts/rabbitmq-cluster.sh start` under way (.ci/run starts the cluster in the background
 * while `npm test` lints and typechecks) holds start.lock until the cluster is formed: wait for
 * it, up to two minutes, before asking whether the nodes answer.
 */
async function startFinished(): Promise<void> {
  const lock = join(DIR, 'start.lock')
  const until = Date.now() + 120_000
  while (existsSync(lock) && Date.now() < until) await new Promise((r) => setTimeout(r, 250))
}

await startFinished()
const down = (await Promise.all(URLS.map(async (u) => ((await answers(u)) ? null : new URL(u).host)))).filter((h) => h !== null)

/**
 * The cluster's AMQP URLs, or null (the test skips) when a node does not answer; under CI=true
 * that throws instead.
 */
export function clusterUrls(): string[] | null {
  if (down.length === 0) return URLS
  const why = `no RabbitMQ cluster node at ${down.join(', ')}`
  if (CI) throw new Error(`${why}: .ci/run starts it with scripts/rabbitmq-cluster.sh start`)
  try {
    closeSync(openSync(join(tmpdir(), `raiment-no-cluster-${process.ppid}`), 'wx'))
    console.log(`cluster tests skipped: ${why}; start it with 'scripts/rabbitmq-cluster.sh start' (with CI=true they fail instead)`)
  } catch {
    // another file said it
  }
  return null
}

/** The nodes holding a replica of stream `name` (asked with rabbitmqctl of the script's cluster). */
export function streamReplicas(name: string): Promise<string[]> {
  return replicas(layout(), name)
}

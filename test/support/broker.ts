/**
 * What the broker tests share: whether RabbitMQ answers (with CI=true a missing broker fails the
 * suite; elsewhere the broker tests skip, and one line says how to start one), a fresh namespace
 * per test, and removing a namespace's queues and exchanges afterwards.
 */
import amqp from 'amqplib'
import { afterEach, beforeAll } from 'vitest'
import { execFile } from 'node:child_process'
import { openSync, closeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { portAnswers } from '../../scripts/rabbit-node.js'
import { Topology } from '../../src/amqp/topology.js'
import { rosterStream } from '../../src/amqp/roster.js'

export const AMQP_URL = process.env['RAIMENT_TEST_AMQP_URL'] ?? 'amqp://guest:guest@127.0.0.1:5672'

function answers(): Promise<boolean> {
  const u = new URL(AMQP_URL)
  return portAnswers(u.hostname, Number(u.port || 5672))
}

export const brokerUp = await answers()
export const CI = process.env['CI'] === 'true'

if (!brokerUp && !CI) {
  // One line per test run, not one per file: the first file to get here says it.
  try {
    closeSync(openSync(join(tmpdir(), `raiment-no-broker-${process.ppid}`), 'wx'))
    console.log(`amqp tests skipped: no RabbitMQ at ${new URL(AMQP_URL).host}; start one with 'rabbitmq-server -detached' (with CI=true they fail instead)`)
  } catch {
    // another file said it
  }
}

/** In a broker test: fails it when no broker answers (under CI=true; elsewhere the suite is skipped). */
export function requireBroker(): void {
  if (!brokerUp) throw new Error(`CI=true and no RabbitMQ answers at ${new URL(AMQP_URL).host}: start it (rabbitmq-server -detached)`)
}

/**
 * In a `describe.skipIf(!brokerUp && !CI)` of broker tests: requires the broker before them, and
 * returns the list a test pushes its clean-ups to, run after it, last first.
 */
export function brokerTests(): Array<() => Promise<void>> {
  beforeAll(requireBroker)
  const cleanups: Array<() => Promise<void>> = []
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c()
  })
  return cleanups
}

/** A namespace no other test (or run) uses. */
export function freshNamespace(): string {
  return `t-${randomBytes(5).toString('hex')}`
}

/** Declares the queues of these weaves in a namespace (as their first start would). */
export async function declareWeaves(ns: string, ids: readonly string[], url = AMQP_URL): Promise<void> {
  const conn = await amqp.connect(url, { noDelay: true })
  try {
    const ch = await conn.createChannel()
    const t = new Topology(ns)
    await t.exchanges(ch)
    for (const id of ids) await t.weaveQueue(ch, id)
  } finally {
    await conn.close()
  }
}

/** Deletes the queues of these weaves and the namespace's exchanges. */
export async function removeNamespace(ns: string, ids: readonly string[]): Promise<void> {
  const conn = await amqp.connect(AMQP_URL, { noDelay: true })
  try {
    const ch = await conn.createChannel()
    const t = new Topology(ns)
    for (const id of ids) await ch.deleteQueue(t.queue(id))
    await ch.deleteQueue(rosterStream(ns))
    await ch.deleteExchange(t.exchange)
    await ch.deleteExchange(t.beat)
  } finally {
    await conn.close()
  }
}

/** Runs `rabbitmqctl` with these arguments; rejects with its error output if it fails. */
export function rabbitmqctl(...args: string[]): Promise<void> {
  return new Promise((resolve, reject) => execFile('rabbitmqctl', args, (err, _out, errText) => (err ? reject(new Error(`rabbitmqctl ${args.join(' ')}: ${errText}`)) : resolve())))
}

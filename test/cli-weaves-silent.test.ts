/**
 * `raiment weaves` and a replicated weave that answers nothing (killed, frozen, cut off): it was
 * not listed at all until a live weave took it over, so an operator could not tell a weave lost
 * (and one nobody is left to take over) from one that never ran. It is now named as silent, with
 * its takeover time; and looking at a namespace with no replicated weave creates nothing there.
 */
import amqp from 'amqplib'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { registryStream } from '../src/replication/registry.js'
import { AMQP_URL, brokerTests, brokerUp, CI, freshNamespace } from './support/broker.js'
import { raiment, raimentProcess, THREADS } from './support/raiment-process.js'
import { removeReplNamespace } from './support/repl-cluster.js'
import { tempDir } from './support/tmp.js'

/** Whether queue `name` exists on the broker. */
async function queueExists(name: string): Promise<boolean> {
  const conn = await amqp.connect(AMQP_URL)
  try {
    const ch = await conn.createChannel()
    ch.on('error', () => {})
    return await ch.checkQueue(name).then(
      () => true,
      () => false,
    )
  } finally {
    await conn.close().catch(() => {})
  }
}

describe.skipIf(!brokerUp && !CI)('raiment weaves and silent replicated weaves', () => {
  const cleanups = brokerTests()

  it('names a replicated weave killed with nobody to take it over as silent, with its takeover time; --json too', async () => {
    const dir = tempDir()
    const ns = freshNamespace()
    cleanups.push(() => removeReplNamespace(AMQP_URL, ns, ['s']))
    // A live weave that is not replicated: it cannot take a replicated one over.
    const plain = raimentProcess(dir, ['start', '--db', join(dir, 'p.db'), '--id', 'p', '--amqp', AMQP_URL, '--namespace', ns, '--heartbeat', '100', '--threads', THREADS])
    cleanups.push(async () => {
      if (plain.child.exitCode === null && plain.child.signalCode === null) plain.child.kill('SIGKILL')
      await plain.ended
    })
    await plain.until((out) => out.includes(`joined namespace '${ns}'`))
    const run = raimentProcess(dir, ['start', '--db', join(dir, 's.db'), '--id', 's', '--amqp', AMQP_URL, '--namespace', ns, '--replicate', '--heartbeat', '100', '--takeover-after', '60000', '--threads', THREADS])
    cleanups.push(async () => {
      if (run.child.exitCode === null && run.child.signalCode === null) run.child.kill('SIGKILL')
      await run.ended
    })
    await run.until((out) => out.includes(`joined namespace '${ns}'`))
    const before = await raiment(dir, 'weaves', '--amqp', AMQP_URL, '--namespace', ns)
    expect(before.code, before.stderr).toBe(0)
    expect(before.stdout).toMatch(/^s\s/m)
    expect(before.stderr).not.toContain('silent')

    run.child.kill('SIGKILL')
    await run.ended
    const after = await raiment(dir, 'weaves', '--amqp', AMQP_URL, '--namespace', ns)
    expect(after.code, after.stderr).toBe(0)
    expect(after.stdout).toMatch(/^p\s/m)
    expect(after.stderr).toContain('weave s (replicated) is silent: it answers nothing, and no live weave can take it over (none runs with raiment start --replicate); start it again')
    const json = await raiment(dir, 'weaves', '--amqp', AMQP_URL, '--namespace', ns, '--json')
    expect(json.code, json.stderr).toBe(0)
    expect((JSON.parse(json.stdout) as Array<{ id: string }>).find((w) => w.id === 's')).toEqual({ id: 's', silent: true, replicated: true, takeoverAfterMs: 60_000, noCandidate: true })
  }, 60_000)

  it('looking at a namespace without replicated weaves declares nothing there', async () => {
    const ns = freshNamespace()
    const r = await raiment(tempDir(), 'weaves', '--amqp', AMQP_URL, '--namespace', ns)
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr).toContain(`no live weave in namespace '${ns}'`)
    expect(await queueExists(registryStream(ns))).toBe(false)
  }, 30_000)
})

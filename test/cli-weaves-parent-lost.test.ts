/**
 * `raiment start --weaves 2 --replicate` whose own process dies by SIGKILL: its weaves stop, but
 * not as retired (nothing stopped them on purpose): `raiment weaves` does not say they stopped
 * cleanly, and a replicated weave started afterwards in the namespace takes them over, so a
 * thread of one of them runs to its end there. Real processes, on the broker.
 */
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, test } from 'vitest'
import { AMQP_URL, brokerUp, CI, freshNamespace, brokerTests } from './support/broker.js'
import { raiment, raimentProcess, THREADS, type Running } from './support/raiment-process.js'
import { removeReplNamespace } from './support/repl-cluster.js'
import { tempDir } from './support/tmp.js'

const SLOW = 120_000

/** Resolves once process `pid` (not a child of this one: no exit event reaches us) is gone. */
async function gone(pid: number): Promise<void> {
  const deadline = Date.now() + 30_000
  while (existsSync(`/proc/${pid}`) && !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z ')) {
    if (Date.now() > deadline) throw new Error(`process ${pid} is still running`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

describe.skipIf(!brokerUp && !CI)('raiment start --weaves N --replicate whose process is killed', () => {
  const cleanups = brokerTests()

  test('its weaves are not retired: a replicated weave started later takes them over and their threads end there', async () => {
    const dir = tempDir()
    const ns = freshNamespace()
    cleanups.push(() => removeReplNamespace(AMQP_URL, ns, ['w-1', 'w-2', 'h']))
    const procs: Running[] = []
    cleanups.push(async () => {
      for (const p of procs) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL')
      await Promise.all(procs.map((p) => p.ended))
    })
    const common = ['--amqp', AMQP_URL, '--namespace', ns, '--heartbeat', '100', '--replicate', '--durability', 'replicated', '--takeover-after', '1000', '--threads', THREADS]
    const run = raimentProcess(dir, ['start', '--weaves', '2', '--id', 'w', '--db', join(dir, 'w.db'), ...common], { group: true })
    procs.push(run)
    cleanups.push(async () => {
      if (run.child.exitCode === null && run.child.signalCode === null) process.kill(-run.child.pid!, 'SIGKILL')
    })
    await run.until((out) => out.includes(`[1] joined namespace '${ns}'`) && out.includes(`[2] joined namespace '${ns}'`))
    const pids = [1, 2].map((i) => Number(new RegExp(`\\[${i}\\] weave w-${i} on \\S+ \\(pid (\\d+)\\)`).exec(run.stdout)![1]))
    const spawned = await raiment(dir, 'spawn', 'sleeper', '{"steps":1,"ms":5000}', '--db', join(dir, 'w-2.db'))
    expect(spawned.code, spawned.stderr).toBe(0)
    await run.until((out) => /^\[2\] started w-2\/1 sleeper/m.test(out))

    run.child.kill('SIGKILL')
    for (const pid of pids) await gone(pid)

    // Not retired: listed as silent (replicated), not as stopped cleanly.
    const look = await raiment(dir, 'weaves', '--amqp', AMQP_URL, '--namespace', ns)
    expect(look.stderr).not.toContain('stopped cleanly')
    expect(look.stderr).toMatch(/weave w-2 \(replicated\) is silent/)

    const dirH = tempDir()
    const h = raimentProcess(dirH, ['start', '--id', 'h', '--db', join(dirH, 'h.db'), ...common])
    procs.push(h)
    await h.until((out) => out.includes('took over weave w-2') && out.includes('took over weave w-1') && /^done w-2\/1 sleeper/m.test(out))
  }, SLOW)
})

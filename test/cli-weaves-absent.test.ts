/**
 * `raiment weaves` and weaves that are not replicated and not live: one killed, frozen or stopped
 * was absent from the list, though messages for it kept waiting in its queue. Every weave now
 * writes itself in the namespace's roster (src/amqp/roster.ts), and the command names each weave
 * that is not live and whose queue exists: stopped cleanly or silent, since when, and how many
 * messages wait for it; `--forget ID` deletes the queue of one retired for good.
 */
import amqp from 'amqplib'
import { hostname } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { Topology } from '../src/amqp/topology.js'
import { registryStream } from '../src/replication/registry.js'
import { AMQP_URL, brokerTests, brokerUp, CI, freshNamespace, removeNamespace } from './support/broker.js'
import { raiment, raimentProcess, THREADS, type Running } from './support/raiment-process.js'
import { tempDir } from './support/tmp.js'

/** Whether queue `name` exists on the broker, and how many messages it holds. */
async function queueHolds(name: string): Promise<number | null> {
  const conn = await amqp.connect(AMQP_URL)
  try {
    const ch = await conn.createChannel()
    ch.on('error', () => {})
    return await ch.checkQueue(name).then(
      (q) => q.messageCount,
      () => null,
    )
  } finally {
    await conn.close().catch(() => {})
  }
}

/** Sends one message to weave `id`'s queue as a weave would (through the namespace's exchange), confirmed by the broker. */
async function sendTo(ns: string, id: string): Promise<void> {
  const conn = await amqp.connect(AMQP_URL)
  try {
    const ch = await conn.createConfirmChannel()
    ch.publish(new Topology(ns).exchange, id, Buffer.from(JSON.stringify({ k: 'msg', from: null, to: `${id}/1`, body: '"hi"' })), { persistent: true, mandatory: true })
    await ch.waitForConfirms()
  } finally {
    await conn.close().catch(() => {})
  }
}

interface Listed {
  id: string
  live?: false
  stopped?: 'clean' | 'silent'
  lastHeard?: string
  queued?: number
}

describe.skipIf(!brokerUp && !CI)('raiment weaves and weaves that are not live', () => {
  const cleanups = brokerTests()

  /** Starts weave `id` on `dir/<id>.db` in namespace `ns`, and waits until it joined. */
  async function start(dir: string, ns: string, id: string): Promise<Running> {
    const p = raimentProcess(dir, ['start', '--db', join(dir, `${id}.db`), '--id', id, '--amqp', AMQP_URL, '--namespace', ns, '--heartbeat', '100', '--threads', THREADS])
    cleanups.push(async () => {
      if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL')
      await p.ended
    })
    await p.until((out) => out.includes(`joined namespace '${ns}'`))
    return p
  }

  const weaves = (dir: string, ns: string, ...more: string[]) => raiment(dir, 'weaves', '--amqp', AMQP_URL, '--namespace', ns, ...more)

  it('names a plain weave killed by SIGKILL as silent, since its last heartbeat, with the messages waiting for it, and one frozen by SIGSTOP; --json too', async () => {
    const dir = tempDir()
    const ns = freshNamespace()
    cleanups.push(() => removeNamespace(ns, ['p', 'x', 'f']))
    await start(dir, ns, 'p')
    const x = await start(dir, ns, 'x')
    const f = await start(dir, ns, 'f')
    // x answers this probe: a heartbeat p hears too, later than x's joining.
    const listing = Date.now()
    const before = await weaves(dir, ns)
    expect(before.code, before.stderr).toBe(0)
    expect(before.stdout).toMatch(/^x\s/m)
    expect(before.stderr).not.toContain('weave x')

    const killed = Date.now()
    x.child.kill('SIGKILL')
    await x.ended
    // Frozen: its connection stays open (until the broker's heartbeat timeout), but it answers nothing.
    f.child.kill('SIGSTOP')
    await sendTo(ns, 'x')
    const after = await weaves(dir, ns)
    expect(after.code, after.stderr).toBe(0)
    expect(after.stdout).toMatch(/^p\s/m)
    expect(after.stdout).not.toMatch(/^x\s/m)
    const line = after.stderr.split('\n').find((l) => l.startsWith('weave x '))
    expect(line, after.stderr).toMatch(/^weave x is silent since \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \(last heard; killed, frozen or cut off from the broker\); 1 message waits in its queue\. /)
    expect(line).toContain(`Start it again on its journal: raiment start --amqp URL --namespace ${ns} --db ${join(dir, 'x.db')} --id x (on host ${hostname()})`)

    const json = await weaves(dir, ns, '--json')
    expect(json.code, json.stderr).toBe(0)
    const listed = JSON.parse(json.stdout) as Listed[]
    const w = listed.find((l) => l.id === 'x')
    expect(w).toEqual({ id: 'x', live: false, stopped: 'silent', lastHeard: expect.any(String), queued: 1, host: hostname(), pid: x.child.pid, db: join(dir, 'x.db') })
    // Its last heartbeat p heard: after its answer to the first listing's probe, before the kill.
    const heard = Date.parse(w!.lastHeard!)
    expect(heard).toBeGreaterThanOrEqual(listing)
    expect(heard).toBeLessThanOrEqual(killed)
    expect(line).toContain(`silent since ${w!.lastHeard}`)
    expect(listed.find((l) => l.id === 'f')).toMatchObject({ id: 'f', live: false, stopped: 'silent', queued: 0 })
    expect(after.stderr).toMatch(/^weave f is silent since .*; no message waits in its queue\. Start it again on its journal: /m)
    // The live weave's fields are as before.
    expect(Object.keys(listed.find((l) => l.id === 'p')!).sort()).toEqual(['host', 'id', 'journals', 'lastHeartbeat', 'passivated', 'pid', 'replicated', 'threads'])
    // Plain weaves are not in the registry of replicated weaves: none is to be taken over.
    expect(await queueHolds(registryStream(ns))).toBeNull()
  }, 90_000)

  it('names a weave stopped by SIGTERM as stopped cleanly, at its stop; --forget removes it from the list (refused while it is live or messages wait)', async () => {
    const dir = tempDir()
    const ns = freshNamespace()
    cleanups.push(() => removeNamespace(ns, ['y', 'z']))
    const y = await start(dir, ns, 'y')
    const z = await start(dir, ns, 'z')

    const live = await weaves(dir, ns, '--forget', 'y')
    expect(live.code).toBe(1)
    expect(live.stderr).toContain('RAIMENT_WEAVE_LIVE: weave y is live')
    expect(await queueHolds(new Topology(ns).queue('y'))).toBe(0)

    const stopping = Date.now()
    y.child.kill('SIGTERM')
    expect((await y.ended).code).toBe(0)
    const stopped = Date.now()
    z.child.kill('SIGKILL')
    await z.ended
    await sendTo(ns, 'z')

    const json = await weaves(dir, ns, '--json')
    expect(json.code, json.stderr).toBe(0)
    const listed = JSON.parse(json.stdout) as Listed[]
    const w = listed.find((l) => l.id === 'y')
    expect(w).toEqual({ id: 'y', live: false, stopped: 'clean', lastHeard: expect.any(String), queued: 0, host: hostname(), pid: y.child.pid, db: join(dir, 'y.db') })
    expect(Date.parse(w!.lastHeard!)).toBeGreaterThanOrEqual(stopping)
    expect(Date.parse(w!.lastHeard!)).toBeLessThanOrEqual(stopped)
    expect(listed.find((l) => l.id === 'z')).toMatchObject({ stopped: 'silent', queued: 1 })

    const text = await weaves(dir, ns)
    expect(text.code, text.stderr).toBe(0)
    expect(text.stderr).toContain(`weave y stopped cleanly at ${w!.lastHeard}; no message waits in its queue. Retired for good? raiment weaves --forget y deletes its queue`)
    expect(text.stderr).toContain(`no live weave in namespace '${ns}'`)

    // Retired: its queue goes, and the list names it no more.
    const forgot = await weaves(dir, ns, '--forget', 'y')
    expect(forgot.code, forgot.stderr).toBe(0)
    expect(forgot.stderr).toContain(`forgot weave y: deleted its queue ${ns}.weave.y`)
    expect(await queueHolds(new Topology(ns).queue('y'))).toBeNull()
    // A message waits for z: kept unless --force.
    const waits = await weaves(dir, ns, '--forget', 'z')
    expect(waits.code).toBe(1)
    expect(waits.stderr).toContain('RAIMENT_MESSAGES_WAITING: 1 message waits for weave z')
    expect(await queueHolds(new Topology(ns).queue('z'))).toBe(1)
    const forced = await weaves(dir, ns, '--forget', 'z', '--force')
    expect(forced.code, forced.stderr).toBe(0)
    expect(forced.stderr).toContain(`forgot weave z: deleted its queue ${ns}.weave.z and the 1 message waiting in it`)

    const after = await weaves(dir, ns, '--json')
    expect(after.code, after.stderr).toBe(0)
    expect(JSON.parse(after.stdout)).toEqual([])
  }, 90_000)

  it('--forget refuses a weave whose queue has a consumer (one that started after the probe, or did not answer it), with --force too: its queue stays', async () => {
    const dir = tempDir()
    const ns = freshNamespace()
    cleanups.push(() => removeNamespace(ns, ['s']))
    const topology = new Topology(ns)
    // As a weave starting does, answering no probe yet: its queue declared, and taken from.
    const conn = await amqp.connect(AMQP_URL)
    cleanups.push(() => conn.close().catch(() => {}))
    const ch = await conn.createChannel()
    await topology.exchanges(ch)
    await topology.weaveQueue(ch, 's')
    await ch.consume(topology.queue('s'), () => {})
    for (const more of [[], ['--force']]) {
      const refused = await weaves(dir, ns, '--forget', 's', ...more)
      expect(refused.code, refused.stderr).toBe(1)
      expect(refused.stderr).toContain(`RAIMENT_WEAVE_LIVE: weave s takes from its queue ${ns}.weave.s (1 consumer: it has just started, or did not answer the probe): nothing was deleted`)
      expect(await queueHolds(topology.queue('s'))).toBe(0)
    }
  }, 90_000)
})

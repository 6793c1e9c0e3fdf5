/**
 * Which weave takes a silent one over: only a weave that holds its journal's lease (a
 * ReplicatedHost's) and runs every thread type the lost one runs. A weave opened with `replicate`
 * outside a host has no lease to fence it: it neither takes over (it has no takeover to make, and
 * the lost weave would wait for good) nor is taken over (two copies of its threads would run). A
 * weave of another app would end the lost weave's threads of a type it lacks failed, for good.
 * The ids are chosen so that the ring, over every live replicated weave, gives `a` to the plain
 * weave, or, without it, to the weave that lacks a type: only the full host `b` may take it.
 */
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import amqp from 'amqplib'
import { Weave } from 'raiment'
import { AmqpLink } from '../src/amqp/link.js'
import { Ring } from '../src/amqp/ring.js'
import { TakeoverLacksTypes } from '../src/replication/errors.js'
import { register } from '../src/replication/registry.js'
import { AMQP_URL, brokerTests, brokerUp, CI, freshNamespace } from './support/broker.js'
import { raiment } from './support/raiment-process.js'
import { deadline, lineFrom, removeReplNamespace, startReplWeave, type WeaveProc } from './support/repl-cluster.js'
import { tempDir } from './support/tmp.js'

/** Ids where the ring over b, c and p gives `a` to c, and over b and p to p. */
function ids(): { c: string; p: string } {
  for (let i = 0; i < 100; i++) {
    for (let j = 0; j < 100; j++) {
      const c = `c${i}`
      const p = `p${j}`
      if (new Ring(['b', c, p]).owner('a') === c && new Ring(['b', p]).owner('a') === p) return { c, p }
    }
  }
  throw new Error('no such ids')
}

describe.skipIf(!brokerUp && !CI)('takeover candidates', () => {
  const cleanups = brokerTests()

  /**
   * A namespace of its own, and `start(id, env)` for a weave process in it (no storm, no saga;
   * takeover after 1 s unless `env` says); every process is killed, and the namespace removed,
   * after the test.
   */
  function namespace(ids: string[]): { dir: string; ns: string; procs: WeaveProc[]; start: (id: string, env?: Record<string, string>) => WeaveProc } {
    const dir = tempDir()
    const ns = freshNamespace()
    const procs: WeaveProc[] = []
    const start = (id: string, env: Record<string, string> = {}): WeaveProc => {
      const w = startReplWeave({ dir, id, ns, url: AMQP_URL, peers: [], count: 0, steps: 0, effects: 'http://127.0.0.1:9/', env: { REPL_TAKEOVER_MS: '1000', ...env } }, () => {})
      procs.push(w)
      return w
    }
    cleanups.push(async () => {
      for (const w of procs) {
        w.proc.kill('SIGKILL')
        await w.exited
      }
      await removeReplNamespace(AMQP_URL, ns, ids)
    })
    return { dir, ns, procs, start }
  }

  /** Starts weave `a`, with its `waiter` asleep 4 s, and SIGKILLs it once ready: lost before another weave heard it. */
  async function lostBeforeHeard(start: (id: string, env?: Record<string, string>) => WeaveProc): Promise<void> {
    const a = start('a', { REPL_WAITER_MS: '4000' })
    await lineFrom(a, 'ready a')
    a.proc.kill('SIGKILL')
    await a.exited
  }

  /**
   * Waits for `b` to take `a` over and run its `waiter` to its end (within `limit`); `other` ran
   * nothing of `a`, and (`rebuilt` false) did not even begin to take it over: it knew `a`'s types.
   */
  async function takenByB(b: WeaveProc, other: WeaveProc, limit: Promise<never>, rebuilt = false): Promise<void> {
    await Promise.race([Promise.all([lineFrom(b, 'took a'), lineFrom(b, 'done a/4 "woke"')]), limit])
    expect(other.lines.filter((l) => l.includes(' a/') || l === 'took a')).toEqual([])
    if (!rebuilt) expect(other.lines.filter((l) => l.includes('taking it over'))).toEqual([])
    // At the epoch after a's: nothing a weave that declined did wrote one.
    expect(b.lines.some((l) => l.startsWith('log raiment: took over weave a at epoch 2:'))).toBe(true)
  }

  /** Runs `steps` bounded by 30 s for the takeover of `a` (`limit` rejects then, with what `procs` printed last). */
  async function takeoverOfA(procs: readonly WeaveProc[], steps: (limit: Promise<never>) => Promise<void>): Promise<void> {
    const limit = deadline(30_000, procs, 'the takeover of a')
    try {
      await steps(limit.promise)
    } finally {
      limit.clear()
    }
  }

  /** The id of a weave of another app, such that the ring over it and `b` gives `a` to it. */
  const otherApp = (): string => Array.from({ length: 100 }, (_, i) => `c${i}`).find((c) => new Ring(['b', c]).owner('a') === c)!

  it('a lost weave goes to a weave holding a lease that runs all its types: not to a plain replicated weave, nor to one of another app', async () => {
    const { c, p } = ids()
    const { dir, ns, procs, start } = namespace(['a', 'b', c, p])
    const a = start('a', { REPL_WAITER_MS: '4000' })
    const b = start('b')
    // Another app: it has no `waiter`.
    const other = start(c, { REPL_TYPES: 'storm,saga' })
    await Promise.all([lineFrom(a, 'ready a'), lineFrom(b, 'ready b'), lineFrom(other, `ready ${c}`)])
    // A weave replicated through Weave.open alone, beating every 100 ms as the hosts do.
    const link = await AmqpLink.connect({ url: AMQP_URL, namespace: ns, heartbeatMs: 100, log: () => {} })
    const plain = await Weave.open({ db: join(dir, `${p}.db`), weaveId: p, remote: link, replicate: true, threads: {}, ioLibs: false, dumps: false })
    await link.start(plain)
    cleanups.push(async () => {
      await link.close()
      await plain.close()
    })
    a.proc.kill('SIGKILL')
    await takeoverOfA(procs, (limit) => takenByB(b, other, limit))
  }, 60_000)

  it('a lost weave known only from the registry goes to a weave that runs all its types: its record says them', async () => {
    const other = otherApp()
    const { dir, ns, procs, start } = namespace(['a', 'b', other])
    await lostBeforeHeard(start)
    // Neither heard a beat: only its registry record tells them of `a`. The weave of another app
    // starts first, and is alone on the ring for a while.
    const c = start(other, { REPL_TYPES: 'storm,saga' })
    await lineFrom(c, `ready ${other}`)
    await lineFrom(c, 'log raiment: weave a is silent, and runs thread types this weave does not (waiter): left to a weave that runs them all')
    // An operator who looks meanwhile is told that no live weave will take it over, and what to do.
    const look = await raiment(dir, 'weaves', '--amqp', AMQP_URL, '--namespace', ns)
    expect(look.code, look.stderr).toBe(0)
    expect(look.stderr).toContain('weave a (replicated) is silent, and every live weave declines to take it over: each lacks one of the thread types its journal holds')
    const json = await raiment(dir, 'weaves', '--amqp', AMQP_URL, '--namespace', ns, '--json')
    expect((JSON.parse(json.stdout) as Array<{ id: string }>).find((w) => w.id === 'a')).toMatchObject({ id: 'a', silent: true, declinedByAll: true })
    const b = start('b')
    await takeoverOfA(procs, (limit) => takenByB(b, c, limit))
  }, 60_000)

  it('a candidate whose rebuild finds threads of a type it does not run gives the lease back, and says so in its heartbeats: a weave that runs them takes over', async () => {
    const other = otherApp()
    const { dir, ns, procs, start } = namespace(['a', 'b', other])
    await lostBeforeHeard(start)
    // The registry's last record of `a` names no types, as one written by an older version.
    const conn = await amqp.connect(AMQP_URL)
    try {
      await register(conn, ns, 'a', 'up', { afterMs: 1_000 })
    } finally {
      await conn.close()
    }
    const c = start(other, { REPL_TYPES: 'storm,saga' })
    await takeoverOfA(procs, async (limit) => {
      const declined = `log raiment: RAIMENT_TAKEOVER_LACKS_TYPES: ${new TakeoverLacksTypes('a', ['waiter']).message}`
      await Promise.race([lineFrom(c, declined), limit])
      // It gave the lease back, and left nothing of its rebuild behind.
      expect(existsSync(join(dir, 'a.taken.db'))).toBe(false)
      // The ring over b and c gives `a` to c; b hears from c's heartbeats that it declines.
      await takenByB(start('b'), c, limit, true)
      expect(c.lines.filter((l) => l === declined)).toHaveLength(1)
    })
  }, 60_000)

  it("a weave is taken over only after its own takeover time, when it is longer than the taker's", async () => {
    const { procs, start: startIn } = namespace(['a', 'b'])
    const start = (id: string, after: number): WeaveProc => startIn(id, { REPL_TAKEOVER_MS: String(after) })
    // a first: b, as it starts, reads a's takeover time from the registry, whether or not it has heard a yet.
    const a = start('a', 4_000)
    await lineFrom(a, 'ready a')
    const b = start('b', 1_000)
    await lineFrom(b, 'ready b')
    a.proc.kill('SIGKILL')
    const killed = Date.now()
    await takeoverOfA(procs, (limit) => Promise.race([lineFrom(b, 'took a'), limit]))
    // Its last heartbeat came at most 100 ms before the kill.
    expect(Date.now() - killed).toBeGreaterThanOrEqual(4_000 - 200)
  }, 60_000)
})

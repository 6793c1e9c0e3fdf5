/**
 * A weave calls another silent only as far as it has read its heartbeat queue. Its silence
 * timer runs before it reads its sockets: after its event loop stalled (a long synchronous
 * task, a paused VM), the heartbeats another weave sent meanwhile are still unread, and counting
 * the silence up to now would call a running weave silent, and begin its takeover while its gate
 * is still open. So the silence counts up to the moment the weave's own latest heartbeat came
 * back through the broker. Weave a is a real replicated weave process; the observer is a weave
 * of this process with the takeover's hooks on its link.
 */
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { Weave } from 'raiment'
import { AmqpLink } from '../src/amqp/link.js'
import { Takeovers } from '../src/replication/takeover.js'
import { AMQP_URL, brokerTests, brokerUp, CI, freshNamespace } from './support/broker.js'
import { lineFrom, removeReplNamespace, startReplWeave, type WeaveProc } from './support/repl-cluster.js'
import { tempDir } from './support/tmp.js'

const AFTER = 1_000

/** The event loop held for `ms`: nothing is read from any socket meanwhile. */
function stall(ms: number): void {
  const until = Date.now() + ms
  while (Date.now() < until);
}

describe.skipIf(!brokerUp && !CI)('counting a weave silent', () => {
  const cleanups = brokerTests()

  it('a stalled event loop does not make a heartbeating weave silent; a killed one is', async () => {
    const dir = tempDir()
    const ns = freshNamespace()
    const a: WeaveProc = startReplWeave({ dir, id: 'a', ns, url: AMQP_URL, peers: [], count: 0, steps: 0, effects: 'http://127.0.0.1:9/' }, () => {})
    cleanups.push(async () => {
      a.proc.kill('SIGKILL')
      await a.exited
      await removeReplNamespace(AMQP_URL, ns, ['a', 'c'])
    })
    await lineFrom(a, 'ready a')
    const takeovers = new Takeovers({ takeoverAfterMs: AFTER, takeOver: () => Promise.resolve(false), hosted: () => new Set(), types: () => [], log: () => {} })
    const link = await AmqpLink.connect({
      url: AMQP_URL,
      namespace: ns,
      heartbeatMs: 100,
      log: () => {},
      lease: { heard: (b, own) => !own && takeovers.heard(b), members: (m) => takeovers.start(m) },
    })
    const weave = await Weave.open({ db: join(dir, 'c.db'), weaveId: 'c', threads: {}, ioLibs: false, dumps: false, remote: link })
    await link.start(weave)
    cleanups.push(async () => {
      takeovers.stop()
      await link.close()
      await weave.close()
    })
    // Silence is time: listening for longer than the takeover time, a heartbeating every 100 ms.
    await new Promise((r) => setTimeout(r, 2 * AFTER))
    expect([...takeovers.silent().keys()]).toEqual([])
    // Stalled past the takeover time: a's heartbeats wait unread in the socket.
    stall(AFTER + 500)
    expect([...takeovers.silent().keys()]).toEqual([])
    await new Promise((r) => setTimeout(r, 300))
    expect([...takeovers.silent().keys()]).toEqual([])
    // A weave that is really gone is silent once the takeover time has passed (counted up to this
    // weave's own latest heartbeat back from the broker, which a loaded machine delays: looked at
    // until then, never before the takeover time).
    const killed = Date.now()
    a.proc.kill('SIGKILL')
    await a.exited
    while (!takeovers.silent().has('a') && Date.now() - killed < 15_000) await new Promise((r) => setTimeout(r, 50))
    expect([...takeovers.silent().keys()]).toEqual(['a'])
    expect(Date.now() - killed).toBeGreaterThanOrEqual(AFTER)
  }, 60_000)
})

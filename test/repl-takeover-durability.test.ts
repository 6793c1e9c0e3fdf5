/**
 * A weave taken over keeps the durability it ran with, which its journal records and replicates:
 * before, it ran with its host's, so a 'replicated' weave hosted by a 'sync' one released
 * outcomes and acknowledged messages before the stream had them, and a second host loss could
 * lose what its threads had seen. Two real weave processes on the service broker: a
 * ('replicated') is killed; b ('sync') takes it over and opens it 'replicated'.
 */
import { describe, expect, it } from 'vitest'
import { AMQP_URL, brokerTests, brokerUp, CI, freshNamespace } from './support/broker.js'
import { lineFrom, removeReplNamespace, startReplWeave, type WeaveProc } from './support/repl-cluster.js'
import { tempDir } from './support/tmp.js'

describe.skipIf(!brokerUp && !CI)('the durability of a weave taken over', () => {
  const cleanups = brokerTests()

  it("is its own ('replicated'), not its host's ('sync')", async () => {
    const dir = tempDir()
    const ns = freshNamespace()
    const start = (id: string, durability: string, peers: string[]): WeaveProc => {
      const p = startReplWeave({ dir, id, ns, url: AMQP_URL, peers, count: 0, steps: 0, effects: 'http://127.0.0.1:9/', env: { REPL_DURABILITY: durability, REPL_TAKEOVER_MS: '1000' } }, () => {})
      cleanups.push(async () => {
        p.proc.kill('SIGKILL')
        await p.exited
      })
      return p
    }
    cleanups.push(() => removeReplNamespace(AMQP_URL, ns, ['a', 'b']))
    const a = start('a', 'replicated', ['b'])
    await lineFrom(a, 'ready a')
    const b = start('b', 'sync', ['a'])
    await lineFrom(b, 'ready b')
    expect(a.lines).toContain('opened a replicated')
    expect(b.lines).toContain('opened b sync')
    a.proc.kill('SIGKILL')
    await a.exited
    await lineFrom(b, 'took a')
    expect(b.lines).toContain('opened a replicated')
  }, 60_000)
})

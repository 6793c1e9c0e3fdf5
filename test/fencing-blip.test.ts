/**
 * A lost connection alone does not fence a weave. When its connection drops on its side only
 * (a lost route), the broker keeps the old connection, and with it the weave's lease, until its
 * heartbeat timeout (~5 s): longer than a short `--takeover-after`. The weave, back on a new
 * connection, waits for its lease with its threads held, and goes on once it has it and the
 * stream's epoch is still its own: nobody took it over. (It was fenced as soon as its last
 * heartbeat was older than 70 % of the takeover time, with no other weave anywhere.)
 */
import { describe, expect, it } from 'vitest'
import { AMQP_URL, brokerTests, brokerUp, CI, freshNamespace } from './support/broker.js'
import { brokerProxy } from './support/broker-proxy.js'
import { deadline, lineFrom, removeReplNamespace, startReplWeave } from './support/repl-cluster.js'
import { tempDir } from './support/tmp.js'

describe.skipIf(!brokerUp && !CI)('fencing and a dropped connection', () => {
  const cleanups = brokerTests()

  it('a lone weave whose connection drops goes on once it has its lease back: not fenced', async () => {
    const proxy = await brokerProxy()
    const ns = freshNamespace()
    const a = startReplWeave({ dir: tempDir(), id: 'a', ns, url: proxy.url, peers: [], count: 0, steps: 0, effects: 'http://127.0.0.1:9/', env: { REPL_TAKEOVER_MS: '2000', REPL_WAITER_MS: '3000' } }, () => {})
    cleanups.push(async () => {
      a.proc.kill('SIGKILL')
      await a.exited
      await proxy.close()
      await removeReplNamespace(AMQP_URL, ns, ['a'])
    })
    await lineFrom(a, 'ready a')
    proxy.drop()
    const limit = deadline(40_000, [a], 'the waiter of a')
    try {
      await Promise.race([lineFrom(a, 'done a/4 "woke"'), limit.promise])
    } finally {
      limit.clear()
    }
    expect(a.lines.filter((l) => l.startsWith('fenced'))).toEqual([])
  }, 60_000)
})

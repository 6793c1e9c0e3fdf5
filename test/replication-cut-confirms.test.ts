/**
 * A lost connection is not a refusal. When the connection of a replicating weave goes while
 * records wait for their confirms, amqplib calls each of them back with 'channel closed': the
 * weave said "RAIMENT_REPLICATION_REFUSED: the broker refused a record … (nack)" on every loss
 * (a proxy cut, a node killed, a full outage), though the broker refused nothing. Only the loss is
 * logged now, and the records are published again on the next connection.
 */
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { thread, Weave } from 'raiment'
import { AmqpLink } from '../src/amqp/link.js'
import { brokerTests, brokerUp, CI, freshNamespace, removeNamespace } from './support/broker.js'
import { brokerProxy } from './support/broker-proxy.js'
import { dropStreams } from './support/replication.js'
import { tempDir } from './support/tmp.js'

const waits = thread({
  uses: ['clock', 'mailbox'],
  async does() {
    await this.clock.now()
    return await this.mailbox.receive()
  },
})

describe.skipIf(!brokerUp && !CI)('records unconfirmed when the connection goes', () => {
  const cleanups = brokerTests()

  it('logs the lost connection, no refusal, and publishes them again once back', async () => {
    const proxy = await brokerProxy()
    const ns = freshNamespace()
    const lines: string[] = []
    const link = await AmqpLink.connect({ url: proxy.url, namespace: ns, log: (l) => lines.push(l) })
    const weave = await Weave.open({ db: join(tempDir(), 'c.db'), weaveId: 'c', threads: { waits }, ioLibs: false, dumps: false, remote: link, replicate: true, durability: 'replicated' })
    await link.start(weave)
    cleanups.push(async () => {
      await weave.close()
      await link.close()
      await proxy.close()
      await dropStreams(ns, 'c')
      await removeNamespace(ns, ['c'])
    })
    // The broker's confirms stop here: the spawn's batch is published and waits for its confirm.
    proxy.hold()
    const id = weave.spawn('waits')
    // Committed here, held for its confirm (polled: nothing tells when the batch was published).
    for (let i = 0; i < 100_000 && link.replicator!.lag().entries === 0; i++) await new Promise((r) => setImmediate(r))
    expect(link.replicator!.lag().entries).toBeGreaterThan(0)
    const down = new Promise<void>((r) => link.broker.once('down', () => r()))
    proxy.cut()
    await down
    expect(lines.filter((l) => l.includes('broker connection lost'))).toHaveLength(1)
    expect(lines.filter((l) => l.includes('REFUSED') || l.includes('nack'))).toEqual([])
    const up = new Promise<void>((r) => link.broker.once('up', () => r()))
    proxy.restore()
    await up
    weave.send(id, 'after')
    const end = await weave.join(id)
    expect(end.status === 'done' ? end.result : end).toBe('after')
    expect(lines.filter((l) => l.includes('REFUSED') || l.includes('nack'))).toEqual([])
  }, 60_000)
})

// The 3-node cluster of scripts/rabbitmq-cluster.sh: a stream declared on it has a replica on
// every node, takes publishes with confirms, and gives them back in order from any node.
import amqp from 'amqplib'
import { randomBytes } from 'node:crypto'
import { afterAll, describe, expect, it } from 'vitest'
import { clusterUrls, streamReplicas } from './support/cluster.js'

const urls = clusterUrls()

describe.skipIf(urls === null)('the 3-node RabbitMQ cluster', () => {
  const stream = `t-stream-${randomBytes(5).toString('hex')}`
  const n = 200

  afterAll(async () => {
    if (urls === null) return
    const conn = await amqp.connect(urls[0]!)
    await (await conn.createChannel()).deleteQueue(stream)
    await conn.close()
  })

  it('replicates a stream on 3 nodes; what was confirmed reads back in order from every node', async () => {
    const [first] = urls!
    const conn = await amqp.connect(first!)
    try {
      const ch = await conn.createConfirmChannel()
      await ch.assertQueue(stream, { durable: true, arguments: { 'x-queue-type': 'stream' } })
      for (let i = 0; i < n; i++) ch.sendToQueue(stream, Buffer.from(String(i)), { persistent: true })
      await ch.waitForConfirms()
    } finally {
      await conn.close()
    }
    expect(await streamReplicas(stream)).toHaveLength(3)

    for (const url of urls!) {
      const c = await amqp.connect(url)
      try {
        const ch = await c.createChannel()
        await ch.prefetch(50)
        const got: number[] = []
        await new Promise<void>((resolve, reject) => {
          ch.consume(
            stream,
            (m) => {
              if (m === null) return reject(new Error('consumer cancelled'))
              got.push(Number(m.content.toString()))
              ch.ack(m)
              if (got.length === n) resolve()
            },
            { noAck: false, arguments: { 'x-stream-offset': 'first' } },
          ).catch(reject)
        })
        expect(got).toEqual(Array.from({ length: n }, (_, i) => i))
      } finally {
        await c.close()
      }
    }
  })
})

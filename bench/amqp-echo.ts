// The echo server of raw amqplib's request/reply in a process of its own (bench/amqp.ts), as the
// round trip of Raiment crosses two weave processes. Run it with
//   node --import tsx bench/amqp-echo.ts URL REQUEST REPLY
// It answers each message of queue REQUEST on queue REPLY, persistent, with its correlation id,
// and acks it after the publish, as the in-process echo of bench/amqp.ts does. Prints `ready`
// once consuming; SIGTERM closes it.
import amqp from 'amqplib'

const [url, request, reply] = process.argv.slice(2)
if (!url || !request || !reply) throw new Error('usage: amqp-echo.ts URL REQUEST REPLY')
const conn = await amqp.connect(url, { noDelay: true })
const server = await conn.createChannel()
await server.consume(request, (m) => {
  if (m === null) return
  server.sendToQueue(reply, m.content, { persistent: true, correlationId: m.properties.correlationId as string })
  server.ack(m)
})
process.on('SIGTERM', () => void conn.close().finally(() => process.exit(0)))
process.stdout.write('ready\n')

// The Restate service endpoint, run as its own process by restate.ts: one service `Steps` whose
// handler `run(n)` makes n `ctx.run` steps, step i returning i. Served as h2c on 127.0.0.1 only
// (`restate.serve()` would bind every interface), on a port the OS picks; the port is sent to the
// parent over IPC once listening.
import http2 from 'node:http2'
import { loadRestateSdk } from './deps.js'

// restate-sdk 1.17 calls Promise.withResolvers (ES2024, Node 22+) for every invocation; Node 20
// lacks it, and without it each invocation fails and Restate retries it forever.
const promise = Promise as unknown as { withResolvers?: unknown }
if (typeof promise.withResolvers !== 'function') {
  promise.withResolvers = function withResolvers<T>(this: PromiseConstructor) {
    let resolve!: (value: T) => void
    let reject!: (reason: unknown) => void
    const p = new this<T>((res, rej) => {
      resolve = res
      reject = rej
    })
    return { promise: p, resolve, reject }
  }
}

const restate = await loadRestateSdk()
const steps = restate.service({
  name: 'Steps',
  handlers: {
    async run(ctx, n) {
      let sum = 0
      for (let i = 0; i < n; i++) sum += await ctx.run('step', async () => i)
      return sum
    },
  },
})

const server = http2.createServer(restate.createEndpointHandler({ services: [steps] }))
server.listen(0, '127.0.0.1', () => {
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('Expected a TCP address')
  process.send?.({ port: address.port })
})

// The server keeps its HTTP/2 connection open, so server.close() never finishes: just exit.
process.on('SIGTERM', () => process.exit(0))
process.on('SIGINT', () => process.exit(0))

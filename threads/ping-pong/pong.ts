/**
 * ping-pong/pong: registers itself as `name`, tells the thread `ready` (if given) that it is
 * ready, then answers each `{ ping: n, from }` with `{ pong: n }` sent to `from`, until it gets
 * `{ stop: true }`. Returns how many pings it served. Its name is freed when it ends.
 */
import { thread } from 'raiment'

type Msg = { ping: number; from: string } | { stop: true }

export default thread({
  uses: ['log', 'mailbox', 'registry'],
  async does(params: { name: string; ready?: string }) {
    const { name, ready } = params ?? {}
    if (typeof name !== 'string' || name === '') throw new TypeError(`ping-pong/pong expects params { name: string, ready?: thread id }, got ${JSON.stringify(params)}`)
    await this.registry.register(name)
    if (ready !== undefined) await this.mailbox.send(ready, { ready: name })
    let served = 0
    for (;;) {
      const m = await this.mailbox.receive<Msg>()
      if ('stop' in m) return { served }
      if (typeof m?.ping !== 'number' || typeof m.from !== 'string') {
        await this.log.warn(`pong '${name}' ignores a message it does not understand`, { message: m })
        continue
      }
      await this.mailbox.send(m.from, { pong: m.ping })
      served++
    }
  },
})

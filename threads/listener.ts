/**
 * listener: waits for one message and returns it. Give it a `name` to reach it by name, and a
 * `timeout` (ms) to have it give up. A quick way to try `raiment send`:
 *
 *     npx raiment spawn listener '{"name":"ear"}'
 *     npx raiment send ear '{"hello":"world"}'     # the listener ends with {"received":{"hello":"world"}}
 */
import { thread, TIMED_OUT } from 'raiment'

export default thread({
  uses: ['mailbox', 'registry'],
  async does(params: { name?: string; timeout?: number } | undefined) {
    const { name, timeout } = params ?? {}
    if (name !== undefined) await this.registry.register(name)
    const m = await this.mailbox.receive(timeout === undefined ? {} : { timeout })
    return m === TIMED_OUT ? { timedOut: true } : { received: m }
  },
})

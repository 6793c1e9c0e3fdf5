/**
 * tally: registers under a name (`tally` unless `params.name` says otherwise), adds up the numbers
 * it is sent, and returns the total when told to stop, or after a minute without a message.
 * `{"fail":true}` makes it throw, to watch a supervisor restart it (the example of the manual's
 * supervision section):
 *
 *     npx raiment spawn raiment/supervisor '{"children":[{"type":"tally","restart":"transient"}]}'
 *     npx raiment send tally '{"add":2}'
 *     npx raiment send tally '{"fail":true}'   # it fails; after its back-off a new tally starts
 *     npx raiment send tally '{"stop":true}'   # it ends done, so (transient) it stays ended
 */
import { thread, TIMED_OUT } from 'raiment'

type Message = { add: number } | { fail: true } | { stop: true }

export default thread({
  uses: ['mailbox', 'registry'],
  async does(params: { name?: string } | undefined) {
    await this.registry.register(params?.name ?? 'tally')
    let total = 0
    for (;;) {
      const m = await this.mailbox.receive<Message>({ timeout: 60_000 })
      if (m === TIMED_OUT || 'stop' in m) return total
      if ('fail' in m) throw new Error(`tally failed on purpose, holding ${total}`)
      total += m.add
    }
  },
})

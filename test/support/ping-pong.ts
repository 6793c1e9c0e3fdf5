// Two threads that play ping-pong by message, for tests of the round trip (test/early-outcomes.test.ts,
// test/amqp-deletes.test.ts): in one weave or across two.
import { thread } from 'raiment'

/** Answers `n` messages, each with its `k`, to its `from`. */
export const pong = thread({
  uses: ['mailbox'],
  async does(p: { n: number }) {
    for (let i = 0; i < p.n; i++) {
      const m = await this.mailbox.receive<{ from: string; k: number }>()
      await this.mailbox.send(m.from, { k: m.k })
    }
  },
})

/** Pings `to` `n` times, each after the reply to the one before; returns the replies' `k`. */
export const ping = thread({
  uses: ['mailbox', 'threads'],
  async does(p: { to: string; n: number }) {
    const self = await this.threads.self()
    const got: number[] = []
    for (let k = 0; k < p.n; k++) {
      await this.mailbox.send(p.to, { from: self, k })
      got.push((await this.mailbox.receive<{ k: number }>()).k)
    }
    return got
  },
})

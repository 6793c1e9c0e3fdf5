/**
 * Thread types and checks the message tests share: a source that sends numbered messages, a sink
 * that takes them and returns their numbers in the order taken, and the result of a thread that
 * must have ended well.
 */
import { thread, type ThreadEnd } from 'raiment'

/** Sends `n` messages `{ i }` to `to`, `inFlight` at a time (1: each awaited, its own commit). */
export const source = thread({
  uses: ['mailbox'],
  async does(p: { to: string; n: number; inFlight: number }) {
    for (let i = 0; i < p.n; i += p.inFlight) {
      const sends: Array<Promise<unknown>> = []
      for (let j = i; j < Math.min(i + p.inFlight, p.n); j++) sends.push(this.mailbox.send(p.to, { i: j }))
      await Promise.all(sends)
    }
  },
})

/** Takes `n` messages; returns their `i` in the order taken. */
export const sink = thread({
  uses: ['mailbox'],
  async does(p: { n: number }) {
    const got: number[] = []
    for (let k = 0; k < p.n; k++) got.push((await this.mailbox.receive<{ i: number }>()).i)
    return got
  },
})

/** The result of a thread that ended 'done'; throws, saying how it ended, otherwise. */
export function resultOf(end: ThreadEnd): unknown {
  if (end.status !== 'done') throw new Error(`thread ${end.id} ended ${end.status}: ${JSON.stringify(end)}`)
  return end.result
}

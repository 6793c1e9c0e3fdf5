// Messages between threads of one weave (issue 3): each part on a fresh journal per run.
// - stream: one thread sends N messages to another, which receives them and checks their order;
//   once with each send and receive awaited in turn (one message per commit at best: a send is
//   released only once durable), and once with WINDOW sends and WINDOW receives in flight
//   (`Promise.all`), as a producer that does not wait for each message would;
// - ping-pong: two threads, one message each way per round; the round-trip time is the time
//   between the pinger's consecutive sends (a round: send, its commit, the partner's take and
//   reply, their commit, the pinger's take and its commit);
// - ring: RING threads in a ring pass one token LAPS times around (RING x LAPS messages, one
//   after another), the ring built by its first thread spawning the others;
// - spawn: one thread spawns SPAWNS short threads one after another (each spawn durable before
//   the next, as `threads.spawn` is), timed until the last of them has ended.
import { thread, Weave, type Durability } from '../src/index.js'
import { nowMs, tempDir } from './common.js'

interface Token {
  i: number
}

/** Sends `n` messages `{ i }` to `to`, keeping `window` sends in flight. */
export const streamSender = thread({
  uses: ['mailbox'],
  async does(p: { to: string; n: number; window: number }) {
    for (let i = 0; i < p.n; i += p.window) {
      const sends: Array<Promise<unknown>> = []
      for (let j = i; j < Math.min(p.n, i + p.window); j++) sends.push(this.mailbox.send(p.to, { i: j }))
      await Promise.all(sends)
    }
  },
})

/** Receives `n` messages, `window` receives in flight; fails unless they came in send order. */
export const streamReceiver = thread({
  uses: ['mailbox'],
  async does(p: { n: number; window: number }) {
    let next = 0
    while (next < p.n) {
      const takes: Array<Promise<unknown>> = []
      for (let j = 0; j < Math.min(p.window, p.n - next); j++) takes.push(this.mailbox.receive<Token>())
      for (const m of await Promise.all(takes)) {
        if ((m as Token).i !== next) throw new Error(`stream: expected message ${next}, got ${JSON.stringify(m)}`)
        next++
      }
    }
    return next
  },
})

/** Plays `rounds` rounds with the thread `partner`: sends `{ i, from }`, waits for `{ i }` back. */
export const pinger = thread({
  uses: ['mailbox', 'threads'],
  async does(p: { partner: string; rounds: number }) {
    const self = await this.threads.self()
    for (let i = 0; i < p.rounds; i++) {
      await this.mailbox.send(p.partner, { i, from: self })
      const back = await this.mailbox.receive<Token>()
      if (back.i !== i) throw new Error(`ping-pong: expected ${i}, got ${JSON.stringify(back)}`)
    }
    await this.mailbox.send(p.partner, { stop: true })
  },
})

/** Answers each `{ i, from }` with `{ i }` until `{ stop: true }`. */
export const ponger = thread({
  uses: ['mailbox'],
  async does() {
    for (;;) {
      const m = await this.mailbox.receive<{ i: number; from: string } | { stop: true }>()
      if ('stop' in m) return
      await this.mailbox.send(m.from, { i: m.i })
    }
  },
})

/** A ring member: forwards the token `{ lap }` to `next` until `{ stop }` comes by. */
export const ringNode = thread({
  uses: ['mailbox'],
  async does(p: { next: string }) {
    for (;;) {
      const m = await this.mailbox.receive<{ lap: number } | { stop: true }>()
      await this.mailbox.send(p.next, m)
      if ('stop' in m) return
    }
  },
})

/**
 * The ring's first thread: spawns the other `size - 1` (each told the id of the one after it,
 * the last told this one's), sends the token round `laps` times, then sends `{ stop }` round.
 * Returns the ms the laps took (from the first send to the token's last return).
 */
export const ringRoot = thread({
  uses: ['mailbox', 'threads', 'clock'],
  async does(p: { size: number; laps: number }) {
    const self = await this.threads.self()
    let next = self
    for (let k = p.size - 1; k >= 1; k--) next = await this.threads.spawn('ringNode', { next })
    const t0 = await this.clock.now()
    for (let lap = 0; lap < p.laps; lap++) {
      await this.mailbox.send(next, { lap })
      const m = await this.mailbox.receive<{ lap: number }>()
      if (m.lap !== lap) throw new Error(`ring: lap ${lap} brought back ${JSON.stringify(m)}`)
    }
    const ms = (await this.clock.now()) - t0
    await this.mailbox.send(next, { stop: true })
    await this.mailbox.receive({ match: { stop: true } })
    return ms
  },
})

/** A thread that ends at once. */
export const short = thread({
  uses: [],
  async does() {
    return 1
  },
})

/** Spawns `n` short threads one after another. */
export const spawner = thread({
  uses: ['threads'],
  async does(p: { n: number }) {
    for (let i = 0; i < p.n; i++) await this.threads.spawn('short')
  },
})

const TYPES = { streamSender, streamReceiver, pinger, ponger, ringNode, ringRoot, short, spawner }

async function withWeave<T>(durability: Durability, run: (weave: Weave) => Promise<T>): Promise<T> {
  const tmp = tempDir()
  const weave = await Weave.open({ db: tmp.file('messages.db'), durability, threads: TYPES, ioLibs: false, dumps: false })
  try {
    return await run(weave)
  } finally {
    await weave.close()
    tmp.done()
  }
}

async function ended(weave: Weave, id: string): Promise<unknown> {
  const end = await weave.join(id)
  if (end.status !== 'done') throw new Error(`bench thread ${id} (${end.type}) ended ${end.status}: ${end.status === 'failed' ? String(end.error) : ''}`)
  return end.result
}

/** Messages per second from one thread to another, `window` sends and receives in flight. */
export function streamRun(durability: Durability, n: number, window: number): Promise<number> {
  return withWeave(durability, async (weave) => {
    const t0 = nowMs()
    const receiver = weave.spawn('streamReceiver', { n, window })
    const sender = weave.spawn('streamSender', { to: receiver, n, window })
    await ended(weave, sender)
    const got = await ended(weave, receiver)
    const ms = nowMs() - t0
    if (got !== n) throw new Error(`stream: received ${String(got)} of ${n}`)
    return n / (ms / 1000)
  })
}

/** Round-trip times (ms) of `rounds` ping-pong rounds. */
export function pingPongRun(durability: Durability, rounds: number): Promise<number[]> {
  return withWeave(durability, async (weave) => {
    const partner = weave.spawn('ponger', undefined)
    const id = weave.spawn('pinger', { partner, rounds })
    // The pinger's sends, as they reach the mailbox (each the moment the thread makes the call).
    const stamps: number[] = []
    const messages = weave.messages
    const send = messages.send.bind(messages)
    messages.send = (from, to, value, msgId) => {
      if (from === id) stamps.push(nowMs())
      return send(from, to, value, msgId)
    }
    await ended(weave, id)
    await ended(weave, partner)
    const rtt: number[] = []
    for (let i = 1; i < stamps.length; i++) rtt.push(stamps[i]! - stamps[i - 1]!)
    return rtt
  })
}

/** The ring: ms for the laps, and the whole run (spawning the ring and stopping it included). */
export function ringRun(durability: Durability, size: number, laps: number): Promise<{ lapsMs: number; totalMs: number }> {
  return withWeave(durability, async (weave) => {
    const t0 = nowMs()
    const lapsMs = (await ended(weave, weave.spawn('ringRoot', { size, laps }))) as number
    return { lapsMs, totalMs: nowMs() - t0 }
  })
}

/** Threads per second: `n` short threads spawned one after another by a thread, until all ended. */
export function spawnRun(durability: Durability, n: number): Promise<number> {
  return withWeave(durability, async (weave) => {
    let left = n
    const all = new Promise<void>((resolve) =>
      weave.on('thread-end', (e) => {
        if (e.type === 'short' && --left === 0) resolve()
      }),
    )
    const t0 = nowMs()
    await ended(weave, weave.spawn('spawner', { n }))
    await all
    return n / ((nowMs() - t0) / 1000)
  })
}

/**
 * What the conversation crash test runs: a conductor thread spawns receivers (each registers a
 * name and says it is ready), then senders, each of which sends a numbered sequence of messages
 * to several receivers, by id or by registered name, and then one to a name nobody holds (a dead
 * letter); receivers take their messages in styles
 * that mix plain, pattern, predicate and timed receives, and end with what they got; the
 * conductor collects every child's exit message.
 *
 * Every live call of the message libraries (mailbox, registry, threads) is announced on stdout
 * by `announced()`: `call <lib.method> <callId>` when it starts and `done <lib.method> <callId>
 * <outcome json>` when it completes (just before the weft records it), so a test can SIGKILL the
 * weave after a chosen number of them and tell which calls the weft had completed.
 */
import { callContext, thread, TIMED_OUT, type LibraryModule, type WeaveConfig } from 'raiment'
import mailbox, { threadSide as mailboxThreadSide } from '../../io-libs/mailbox.js'
import registry from '../../io-libs/registry.js'
import threads from '../../io-libs/threads.js'

/** How a receiver takes its next message. */
export type Style =
  /** `receive()`: the first message from anyone. */
  | 'any'
  /** `receive({ match: { s } })`: the first from one sender (taking turns among senders). */
  | 'pattern'
  /** `receive({ match: (m) => m.s === s })`: the same with a predicate (peek and take). */
  | 'predicate'
  /** `receive({ timeout: 2 })` until a message comes: durable timeouts, most of them passing. */
  | 'timed'

export interface Plan {
  /** One list per sender: its sends in order; `to` is a receiver's index. */
  senders: Array<Array<{ to: number; byName: boolean }>>
  /**
   * Per sender: send in rounds of concurrent sends (Promise.all) to distinct receivers, a round
   * ending where a receiver would repeat, instead of one send at a time. Each pair's order holds.
   */
  parallel: boolean[]
  /** One list per receiver: the styles it cycles through. */
  receivers: Style[][]
}

/** A conversation message: sender `s`'s `k`-th message to receiver `r`. */
export interface ConvMsg {
  s: number
  k: number
  r: number
}

export const receiverName = (r: number): string => `r${r}`

/** A name no thread registers: each sender's last message goes there, and to the dead letters. */
export const NOBODY = 'nobody'

/** How many messages sender `s` sends receiver `r`. */
export function count(plan: Plan, s: number, r: number): number {
  return plan.senders[s]!.filter((x) => x.to === r).length
}

/** What receiver `r` must end with, grouped by sender: each sender's messages once, in order. */
export function expectedBySender(plan: Plan, r: number): ConvMsg[][] {
  return plan.senders.map((_, s) => Array.from({ length: count(plan, s, r) }, (_, k) => ({ s, k, r })))
}

export const receiver = thread({
  uses: ['mailbox', 'registry'],
  async does(p: { r: number; boss: string; styles: Style[]; from: number[] }) {
    await this.registry.register(receiverName(p.r))
    await this.mailbox.send(p.boss, { ready: receiverName(p.r) })
    const left = [...p.from]
    const got: ConvMsg[] = []
    let turn = 0
    const total = left.reduce((a, b) => a + b, 0)
    for (let i = 0; i < total; i++) {
      const style = p.styles[i % p.styles.length]!
      // Whose message to ask for, for the selective styles: the next sender, in turn, with any left.
      let s = turn % left.length
      while (left[s] === 0) s = (s + 1) % left.length
      turn = s + 1
      let m: ConvMsg | typeof TIMED_OUT
      if (style === 'any') m = await this.mailbox.receive<ConvMsg>()
      else if (style === 'pattern') m = await this.mailbox.receive<ConvMsg>({ match: { s } })
      else if (style === 'predicate') m = await this.mailbox.receive<ConvMsg>({ match: (x) => x.s === s })
      else do m = await this.mailbox.receive<ConvMsg>({ timeout: 2 })
      while (m === TIMED_OUT)
      left[m.s]!--
      got.push(m)
    }
    return got
  },
})

export const sender = thread({
  uses: ['mailbox'],
  async does(p: { s: number; parallel: boolean; sends: Array<{ to: string; r: number }> }) {
    const next = new Map<number, number>()
    const numbered = p.sends.map(({ to, r }) => {
      const k = next.get(r) ?? 0
      next.set(r, k + 1)
      return { to, msg: { s: p.s, k, r } satisfies ConvMsg }
    })
    const send = async ({ to, msg }: (typeof numbered)[number]): Promise<void> => {
      const res = await this.mailbox.send(to, msg)
      if (!res.delivered) throw new Error(`sender ${p.s}: message ${msg.k} to ${to} was not delivered: ${res.reason}`)
    }
    let round: typeof numbered = []
    for (const x of numbered) {
      if (!p.parallel) await send(x)
      else if (round.some((y) => y.msg.r === x.msg.r)) {
        await Promise.all(round.map(send))
        round = [x]
      } else round.push(x)
    }
    await Promise.all(round.map(send))
    // One message no thread can take: it must reach the dead letters exactly once.
    const bye = await this.mailbox.send(NOBODY, { s: p.s, bye: true })
    if (bye.delivered) throw new Error(`sender ${p.s}: a message to '${NOBODY}' was delivered`)
    return p.sends.length
  },
})

export const conductor = thread({
  uses: ['threads', 'mailbox'],
  async does(plan: Plan) {
    const self = await this.threads.self()
    const rs: string[] = []
    for (let r = 0; r < plan.receivers.length; r++) {
      const from = plan.senders.map((_, s) => count(plan, s, r))
      rs.push(await this.threads.spawn('receiver', { r, boss: self, styles: plan.receivers[r]!, from }))
    }
    // Senders start once every receiver holds its name.
    for (let r = 0; r < rs.length; r++) await this.mailbox.receive({ match: { ready: receiverName(r) } })
    const ss: string[] = []
    for (let s = 0; s < plan.senders.length; s++) {
      const sends = plan.senders[s]!.map(({ to, byName }) => ({ to: byName ? receiverName(to) : rs[to]!, r: to }))
      ss.push(await this.threads.spawn('sender', { s, parallel: plan.parallel[s] ?? false, sends }))
    }
    const exits: Record<string, unknown> = {}
    for (const id of [...ss, ...rs]) exits[id] = await this.mailbox.receive({ match: { exit: id } })
    return { receivers: rs, senders: ss, exits }
  },
})

/** A library module whose every live call is announced with `say` as it starts and completes. */
function announcing(lib: string, factory: (config: WeaveConfig) => Record<string, unknown>, say: (line: string) => void, threadSide?: object): LibraryModule {
  return {
    default: (config: WeaveConfig) => {
      const real = factory(config)
      const out: Record<string, unknown> = {}
      for (const [method, f] of Object.entries(real)) {
        if (typeof f !== 'function') continue
        const name = `${lib}.${method}`
        out[method] = (...args: unknown[]) => {
          const { callId } = callContext()
          say(`call ${name} ${callId}`)
          const done = (outcome: unknown): void => say(`done ${name} ${callId} ${JSON.stringify(outcome ?? null)}`)
          return Promise.resolve((f as (...a: unknown[]) => unknown)(...args)).then(
            (v) => (done(v), v),
            (e: unknown) => {
              done({ error: (e as Error).message })
              throw e
            },
          )
        }
      }
      return out
    },
    ...(threadSide ? { threadSide: threadSide as LibraryModule['threadSide'] } : {}),
  }
}

/** mailbox, registry and threads, announced. */
export function announced(say: (line: string) => void): Record<string, LibraryModule> {
  return {
    mailbox: announcing('mailbox', mailbox, say, mailboxThreadSide),
    registry: announcing('registry', registry, say),
    threads: announcing('threads', threads, say),
  }
}

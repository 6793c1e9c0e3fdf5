/**
 * mailbox: messages between threads. `send` puts a message in the receiver's inbox in the same
 * transaction that records the send; `receive` takes the first message, in arrival order, that
 * matches a pattern or predicate, and what it took is recorded, so replay hands the thread the
 * same messages.
 */
import { callContext, InvalidArgument, realClock, TIMED_OUT, weaveOf, type LibraryApi, type ScheduleClock, type SendResult, type WeaveConfig } from 'raiment'
import { describe } from './_describe.js'

interface Received {
  n: number
  from: string | null
  message: unknown
}
type Waited = Received | { timedOut: true }

const mailbox = (config: WeaveConfig) => {
  const messages = () => weaveOf(config).messages
  // The weave's clock: a receive's timeout is counted by it (the real one by default).
  const time = (config.weave as { clock?: ScheduleClock } | undefined)?.clock ?? realClock
  return {
    /**
     * Sends `message` to a thread id or registered name. Resolves to `{ delivered: true, to }`, or
     * `{ delivered: false, to, reason }` when the receiver has ended or never existed (the message
     * then goes to the dead letters).
     */
    async send(to: string, message: unknown): Promise<SendResult> {
      const ctx = callContext()
      if (typeof to !== 'string' || to === '') throw new InvalidArgument(`mailbox.send: 'to' must be a thread id or a registered name, got ${String(to)}`)
      // The call id (a digest) is made only if the message needs an id stored.
      return messages().send(ctx.threadId, to, message, () => ctx.callId, ctx.traceparent)
    },
    /** Takes the first message matching `match` (deep partial equality), waiting until `until`. */
    take(opts: { match?: unknown; until?: number }): Promise<Waited> {
      const ctx = callContext()
      return messages().take(ctx.threadId, opts.match, opts.until ?? null, (fn) => ctx.onAbort(fn))
    },
    /** The first message numbered after `after`, left in the inbox; waits until `until`. */
    peek(after: number, until?: number): Promise<Waited> {
      const ctx = callContext()
      return messages().peek(ctx.threadId, after, until ?? null, (fn) => ctx.onAbort(fn))
    },
    /** Takes message number `n`, found by peek. */
    async takeNumber(n: number): Promise<Received> {
      const ctx = callContext()
      return messages().takeNumber(ctx.threadId, n, (fn) => ctx.onAbort(fn))
    },
    async now(): Promise<number> {
      return time.now()
    },
  }
}
export default mailbox

/**
 * Every method touches only the journal: a send's message commits with the step (a message to
 * another weave leaves from the outbox once committed), a take is recorded in it.
 */
export const journalOnly = ['send', 'take', 'peek', 'takeNumber', 'now']

type Live = LibraryApi<ReturnType<typeof mailbox>>

export interface ReceiveOptions<T> {
  /** A pattern (deep partial equality) or a predicate; the first message that matches is taken. */
  match?: Partial<T> | Record<string, unknown> | ((message: T) => boolean)
  /** Give up after this many ms (durable: a resumed thread waits only the remainder). */
  timeout?: number
}

export const threadSide = {
  /**
   * Takes the first message in arrival order that matches, leaving the others in order; waits
   * for one. Resolves to the message, or to `TIMED_OUT` when `timeout` ms pass first.
   */
  async receive<T = unknown>(this: Live, opts: ReceiveOptions<T> = {}): Promise<T | typeof TIMED_OUT> {
    const { match, timeout } = opts
    if (timeout !== undefined && !(typeof timeout === 'number' && timeout >= 0)) {
      throw new InvalidArgument(`mailbox.receive: timeout must be a number of ms >= 0, got ${describe(timeout)}`)
    }
    const until = timeout === undefined ? undefined : (await this.now()) + timeout
    if (typeof match !== 'function') {
      const r = await this.take(until === undefined ? (match === undefined ? {} : { match }) : match === undefined ? { until } : { match, until })
      return 'timedOut' in r ? TIMED_OUT : (r.message as T)
    }
    const test = match
    let after = 0
    for (;;) {
      const r = await this.peek(after, ...(until === undefined ? [] : [until]))
      if ('timedOut' in r) return TIMED_OUT
      if (test(r.message as T)) return (await this.takeNumber(r.n)).message as T
      after = r.n
    }
  },
}

export type MailboxApi = Live & {
  /** With no `timeout`, it waits as long as it takes: it resolves to a message, never to `TIMED_OUT`. */
  receive<T = unknown>(opts?: ReceiveOptions<T> & { timeout?: undefined }): Promise<T>
  /** With a `timeout`, it resolves to `TIMED_OUT` when `timeout` ms pass first. */
  receive<T = unknown>(opts: ReceiveOptions<T> & { timeout: number }): Promise<T | typeof TIMED_OUT>
  receive<T = unknown>(opts?: ReceiveOptions<T>): Promise<T | typeof TIMED_OUT>
}

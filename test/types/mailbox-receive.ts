/**
 * Type tests of `this.mailbox.receive`, checked by `tsc --noEmit` (the typecheck of `npm test`;
 * nothing here runs): without a timeout it resolves to a message only, so an actor reads the
 * message's fields at once; with one, to the message or `TIMED_OUT`, which it must tell apart.
 */
import { expectTypeOf } from 'vitest'
import { thread, TIMED_OUT } from 'raiment'

interface Ping {
  from: string
  n: number
}

export const actor = thread({
  uses: ['mailbox'],
  async does() {
    const m = await this.mailbox.receive<Ping>()
    expectTypeOf(m).toEqualTypeOf<Ping>()
    const matched = await this.mailbox.receive<Ping>({ match: { n: 1 } })
    expectTypeOf(matched).toEqualTypeOf<Ping>()
    const any = await this.mailbox.receive()
    expectTypeOf(any).toEqualTypeOf<unknown>()

    const timed = await this.mailbox.receive<Ping>({ timeout: 1000 })
    expectTypeOf(timed).toEqualTypeOf<Ping | typeof TIMED_OUT>()
    // @ts-expect-error TIMED_OUT has no `from`: a receive with a timeout must be told apart from it first
    void timed.from
    const maybe = await this.mailbox.receive<Ping>({ timeout: Math.random() > 0.5 ? 1000 : undefined })
    expectTypeOf(maybe).toEqualTypeOf<Ping | typeof TIMED_OUT>()
    return { from: m.from, n: matched.n, timedOut: timed === TIMED_OUT }
  },
})

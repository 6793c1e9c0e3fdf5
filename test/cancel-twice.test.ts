/**
 * A second cancel that comes after the first's failure is recorded, but before that failure is
 * released to the thread (an outcome reaches its thread after its commit), is the same cancel:
 * the thread has not seen the first yet, so its catch and compensation run as for one. Before, it
 * was put off to the thread's next call, and the compensation's first call threw ThreadCancelled
 * (a saga cancelled twice made no refund). A cancel after the thread has seen the first is a new
 * one and interrupts again (it may have caught it and gone on waiting).
 *
 * The second cancel is made from an OpenTelemetry span processor's onEnd, called as the failed
 * call's outcome is recorded: the instant between its record and its release.
 */
import type { ReadableSpan, SpanProcessor } from '@opentelemetry/sdk-trace-base'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { thread, ThreadCancelled, Weave, type AnyThreadType } from 'raiment'
import { pendingSleeps } from '../io-libs/clock.js'
import { withSpanProcessor } from './support/otel.js'
import { tempDir } from './support/tmp.js'
import { until } from './support/until.js'

const asked: string[] = []
let opened: (() => void) | null = null
const bank = {
  async deposit(): Promise<string> { asked.push('deposit'); return 'd' },
  async refund(): Promise<string> { asked.push('refund'); return 'r' },
}
/** A call that cannot be aborted: it settles when the test opens it. */
const gate = { open: (): Promise<void> => new Promise<void>((r) => (opened = r)) }
interface Bank { deposit(): Promise<string>; refund(): Promise<string> }

const saga = thread({
  uses: ['bank' as 'clock', 'gate' as 'clock', 'mailbox', 'clock'],
  async does(p: { wait: 'sleep' | 'gate' | 'loop' }) {
    const t = this as unknown as { bank: Bank; gate: { open(): Promise<void> }; mailbox: { receive(): Promise<unknown> }; clock: { sleep(ms: number): Promise<void> } }
    if (p.wait === 'loop') {
      // Catches each cancel and waits again: a later cancel is a new one.
      const caught: string[] = []
      for (;;) {
        try {
          await t.clock.sleep(3_600_000)
          return caught
        } catch (e) {
          if (!(e instanceof ThreadCancelled)) throw e
          caught.push(e.reason)
          if (caught.length === 2) return caught
        }
      }
    }
    try {
      if (p.wait === 'sleep') await t.clock.sleep(3_600_000)
      else await t.gate.open()
      await t.bank.deposit()
      return 'done'
    } catch (e) {
      if (!(e instanceof ThreadCancelled)) throw e
      await t.bank.refund()
      return `refunded (${e.reason})`
    }
  },
})

/** When set, called once as a span of this name ends (its call's outcome recorded, not yet released). */
let onEnd: { name: string; then: () => void } | null = null
const processor: SpanProcessor = {
  onStart() {},
  onEnd(span: ReadableSpan) {
    if (onEnd === null || span.name !== onEnd.name) return
    const then = onEnd.then
    onEnd = null
    then()
  },
  async forceFlush() {},
  async shutdown() {},
}

withSpanProcessor(processor)

function open(db: string): Promise<Weave> {
  return Weave.open({ db, threads: { saga: saga as AnyThreadType }, libraries: { bank, gate }, dumps: false, durability: 'sync', passivateAfter: false })
}

describe('a cancel before the thread has seen the first is that one', () => {
  /**
   * Cancels a saga waiting in `wait` once, and again as the call `failing` fails (recorded, not yet
   * released): the refund runs, once, and no cancel is left in the journal.
   */
  async function twice(wait: 'sleep' | 'gate', waiting: () => boolean, failing: string, release = (): void => {}): Promise<void> {
    asked.length = 0
    const weave = await open(join(tempDir(), 'w.db'))
    try {
      const id = weave.spawn('saga', { wait })
      await until(`the thread in its ${wait}`, waiting)
      let second: boolean | undefined
      onEnd = { name: failing, then: () => (second = weave.cancel(id, 'twice')) }
      expect(weave.cancel(id, 'once')).toBe(true)
      release()
      expect(await weave.join(id)).toMatchObject({ status: 'done', result: 'refunded (once)' })
      expect(second).toBe(true)
      expect(asked).toEqual(['refund'])
      await weave.committed()
      expect(weave.journal.db.prepare("SELECT count(*) FROM meta WHERE k LIKE 'cancel:%'").pluck().get()).toBe(0)
    } finally {
      await weave.close()
    }
  }

  it('a sleep aborted: a second cancel as its failure is recorded leaves the refund alone', async () => {
    await twice('sleep', () => pendingSleeps() > 0, 'clock.sleepUntil')
  })

  it('put off to the next call (in a call that cannot be aborted): a second cancel as that call fails leaves the refund alone', async () => {
    opened = null
    await twice('gate', () => opened !== null, 'bank.deposit', () => opened!())
  })

  it('a cancel after the thread has seen the first interrupts again', async () => {
    const weave = await open(join(tempDir(), 'w.db'))
    try {
      const id = weave.spawn('saga', { wait: 'loop' })
      await until('the thread sleeping', () => pendingSleeps() > 0)
      expect(weave.cancel(id, 'first')).toBe(true)
      // Its catch has run and it sleeps again: a new sleep.
      await until('the thread sleeping again', () => pendingSleeps() > 0 && weave.journal.db.prepare('SELECT count(*) FROM journal WHERE thread = ?').pluck().get(id) === 3)
      expect(weave.cancel(id, 'second')).toBe(true)
      expect(await weave.join(id)).toMatchObject({ status: 'done', result: ['first', 'second'] })
    } finally {
      await weave.close()
    }
  })
})

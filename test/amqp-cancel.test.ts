/**
 * Cancel across weaves (a Temporal user's trial: `threads.cancel` reached this weave's threads
 * only). `weave.cancel(id)` and `this.threads.cancel(id)` of a thread of another weave send the
 * request there, durable like a message, and that weave cancels it: the call it waits on throws
 * ThreadCancelled and it compensates (`weave.kill` reaches it so too). A thread that moved away is
 * cancelled where it runs, also by `raiment cancel` beside the weave it moved from.
 */
import { describe, expect, it } from 'vitest'
import { thread, ThreadCancelled, type AnyThreadType } from 'raiment'
import { pendingSleeps } from '../io-libs/clock.js'
import { brokerTests, brokerUp, CI, freshNamespace, removeNamespace } from './support/broker.js'
import { cliRun } from './support/cli-in-process.js'
import { tempDir } from './support/tmp.js'
import { until } from './support/until.js'
import { openWeave } from './support/weaves.js'

/** What each saga was asked to do, in this process. */
const asked: string[] = []
const bank = {
  async refund(who: string): Promise<string> { asked.push(`refund ${who}`); return 'r' },
}

/** Sleeps an hour; cancelled, refunds. */
const saga = thread({
  uses: ['bank' as 'clock', 'clock'],
  async does(p: { who: string }) {
    const t = this as unknown as { bank: { refund(who: string): Promise<string> }; clock: { sleep(ms: number): Promise<void> } }
    try {
      await t.clock.sleep(3_600_000)
      return 'slept'
    } catch (e) {
      if (!(e instanceof ThreadCancelled)) throw e
      await t.bank.refund(p.who)
      return `refunded (${e.reason})`
    }
  },
})

/** Cancels a thread (of any weave) and joins it. */
const canceller = thread({
  uses: ['threads'],
  async does(p: { target: string }) {
    const sent = await this.threads.cancel(p.target, 'by a thread')
    return { sent, end: await this.threads.join(p.target) }
  },
})

const threads = { saga: saga as AnyThreadType, canceller: canceller as AnyThreadType }
const libraries = { bank }

describe.skipIf(!brokerUp && !CI)('cancel a thread of another weave', () => {
  const cleanups = brokerTests()

  it('weave.cancel and threads.cancel of a thread of another weave cancel it there: it compensates once', async () => {
    const ns = freshNamespace()
    cleanups.push(() => removeNamespace(ns, ['x', 'y']))
    const x = await openWeave(cleanups, tempDir(), ns, 'x', threads, { libraries })
    const y = await openWeave(cleanups, tempDir(), ns, 'y', threads, { libraries })
    asked.length = 0
    const a = y.weave.spawn('saga', { who: 'a' })
    const b = y.weave.spawn('saga', { who: 'b' })
    await until('both sleeping', () => pendingSleeps() >= 2)

    expect(x.weave.cancel(a, 'from x')).toBe(true)
    expect(await x.weave.join(a)).toMatchObject({ status: 'done', result: 'refunded (from x)' })

    const c = x.weave.spawn('canceller', { target: b })
    expect(await x.weave.join(c)).toMatchObject({ status: 'done', result: { sent: true, end: 'refunded (by a thread)' } })
    expect(asked.sort()).toEqual(['refund a', 'refund b'])
    // Ended: a cancel sent now is taken there, and does nothing.
    expect(x.weave.cancel(a)).toBe(true)
    await x.weave.committed()
    await x.link.outboxEmpty()
    expect(await y.weave.join(a)).toMatchObject({ status: 'done', result: 'refunded (from x)' })
    expect(asked.sort()).toEqual(['refund a', 'refund b'])
    // weave.kill reaches it there too (it threw UnknownThread): ended where it is, no refund.
    const killed = y.weave.spawn('saga', { who: 'c' })
    await until('it sleeping', () => pendingSleeps() >= 1 && y.weave.journal.thread(killed)?.status === 'running')
    expect(x.weave.kill(killed)).toBe(true)
    expect(await x.weave.join(killed)).toMatchObject({ status: 'killed' })
    expect(asked.sort()).toEqual(['refund a', 'refund b'])
  })

  it('a thread that moved away is cancelled where it runs, by weave.cancel and by raiment cancel beside the weave it left', async () => {
    const ns = freshNamespace()
    cleanups.push(() => removeNamespace(ns, ['x', 'y']))
    const dir = tempDir()
    const x = await openWeave(cleanups, dir, ns, 'x', threads, { libraries })
    const y = await openWeave(cleanups, tempDir(), ns, 'y', threads, { libraries })
    asked.length = 0
    const a = x.weave.spawn('saga', { who: 'a' })
    const b = x.weave.spawn('saga', { who: 'b' })
    await until('both sleeping', () => pendingSleeps() >= 2)
    await x.weave.migrate(a, 'y')
    await x.weave.migrate(b, 'y')
    await until('both sleeping on y', () => y.weave.journal.thread(a)?.status === 'running' && y.weave.journal.thread(b)?.status === 'running' && pendingSleeps() >= 2)

    expect(x.weave.cancel(a, 'after its move')).toBe(true)
    expect(await y.weave.join(a)).toMatchObject({ status: 'done', result: 'refunded (after its move)' })

    const cli = await cliRun(['cancel', b, '--db', `${dir}/x.db`, '--reason', 'from the CLI'])
    expect(cli.code, cli.printed.join('')).toBe(0)
    expect(cli.printed.join('')).toContain(`cancel of ${b} sent to weave y, where it moved`)
    expect(await y.weave.join(b)).toMatchObject({ status: 'done', result: 'refunded (from the CLI)' })
    expect(asked.sort()).toEqual(['refund a', 'refund b'])
  })
})

/**
 * A batch (rows for one weave packed into one AMQP message, up to 96 KiB) bigger than the
 * broker's max_message_size, of messages that each fit: the relay publishes its rows again, each
 * alone, and they arrive; only a message itself over the limit is a dead letter. Before, the
 * whole batch was dead-lettered. Weaves a and b in this process, on a real broker whose limit is
 * lowered to 90 KiB for the few seconds of the exchange (always restored).
 */
import { describe, expect, it } from 'vitest'
import { thread } from 'raiment'
import { brokerUp, CI, freshNamespace, removeNamespace, brokerTests } from './support/broker.js'
import { lowerMaxMessageSize } from './support/broker-limit.js'
import { linkedWeave } from './support/linked-weave.js'
import { tempDir } from './support/tmp.js'

const BROKER_MAX = 90 * 1024

/** Takes `n` messages; returns each, or its length when long. */
const sink = thread({
  uses: ['mailbox'],
  async does(p: { n: number }) {
    const got: Array<string | number> = []
    for (let i = 0; i < p.n; i++) {
      const m = await this.mailbox.receive<string>()
      got.push(m.length > 100 ? m.length : m)
    }
    return got
  },
})
const threads = { sink }

describe.skipIf(!brokerUp && !CI)('a batch bigger than the broker takes, of messages that each fit', () => {
  const cleanups = brokerTests()

  it('goes again message by message: only one itself over the limit is a dead letter', async () => {
    const dir = tempDir()
    const ns = freshNamespace()
    cleanups.push(() => removeNamespace(ns, ['a', 'b']))
    const b = await linkedWeave({ dir, ns, id: 'b', weave: { threads } }, cleanups)
    const to = b.weave.spawn('sink', { n: 4 })
    await b.weave.committed()
    const restore = await lowerMaxMessageSize(BROKER_MAX, cleanups)
    let dead: Array<{ reason: string; len: number }> = []
    try {
      // a's relay opens its channels under the lowered limit.
      const a = await linkedWeave({ dir, ns, id: 'a', weave: { threads } }, cleanups)
      // One commit: 'before' and two of 47,000 (each fits; together, one batch of ~94 KB, do not),
      // then one of 93,000 (over the limit alone; in one batch with 'after').
      for (const m of ['before', 'x'.repeat(47_000), 'y'.repeat(47_000), 'z'.repeat(93_000), 'after']) a.weave.send(to, m)
      await a.weave.committed()
      await Promise.race([a.link.outboxEmpty(), new Promise((resolve) => setTimeout(resolve, 15_000))])
      expect(a.link.pending()).toBe(0)
      dead = a.weave.journal.db.prepare('SELECT reason, length(body) AS len FROM dead_letters').all() as typeof dead
    } finally {
      await restore()
    }
    expect(await b.weave.join(to)).toMatchObject({ status: 'done', result: ['before', 47_000, 47_000, 'after'] })
    expect(dead).toHaveLength(1)
    expect(dead[0]!.len).toBeGreaterThan(93_000)
    expect(dead[0]!.reason).toMatch(new RegExp(`^the broker refused it for its size \\(\\d+ bytes; its max_message_size is ${BROKER_MAX}\\)`))
  }, 60_000)
})

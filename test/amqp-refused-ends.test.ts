/**
 * What waits for a message between weaves that fits maxMessageBytes but that the broker refuses
 * (bigger than its max_message_size) is told so, not left waiting (src/refused-sends.ts): a join
 * of a thread of another weave rejects with RAIMENT_MESSAGE_REFUSED; a parent on another weave
 * gets its child's exit message without the result, saying why; a parent whose spawn on another
 * weave was refused (its params) gets the exit message of a child that failed at once. Before,
 * each was a dead letter on the sending weave, and the join, or the receive, waited for ever.
 * And params bigger than maxMessageBytes are refused at the spawn, before anything is sent.
 * Weaves a and b in this process, on a real broker whose limit is lowered to 1 MiB while they
 * open their relays' channels (test/support/broker-limit.ts).
 */
import { describe, expect, it } from 'vitest'
import { thread, TIMED_OUT } from 'raiment'
import { brokerUp, CI, freshNamespace, removeNamespace, brokerTests } from './support/broker.js'
import { lowerMaxMessageSize } from './support/broker-limit.js'
import { linkedWeave } from './support/linked-weave.js'
import { tempDir } from './support/tmp.js'

const BROKER_MAX = 1024 * 1024

/** Returns `n` characters. */
const big = thread({
  uses: [],
  async does(p: { n: number }) {
    return 'x'.repeat(p.n)
  },
})
/** Spawns on weave b a thread of `type` with `params`, and returns the exit message it gets (or 'timed out'). */
const parent = thread({
  uses: ['threads', 'mailbox'],
  async does(p: { type: string; params: unknown }) {
    let id: string
    try {
      id = await this.threads.spawn(p.type, p.params, { on: 'b' })
    } catch (e) {
      return { threw: (e as { code?: string }).code }
    }
    const m = await this.mailbox.receive({ match: { exit: id }, timeout: 10_000 })
    return m === TIMED_OUT ? 'timed out' : m
  },
})
const threads = { big, parent }

describe.skipIf(!brokerUp && !CI)('a message between weaves that the broker refuses for its size', () => {
  const cleanups = brokerTests()

  it('rejects the join waiting for it; the parent waiting for an exit message or a spawn is told why', async () => {
    const dir = tempDir()
    const ns = freshNamespace()
    cleanups.push(() => removeNamespace(ns, ['a', 'b']))
    const restore = await lowerMaxMessageSize(BROKER_MAX, cleanups)
    let join: unknown, exit: unknown, spawn: unknown
    try {
      const a = await linkedWeave({ dir, ns, id: 'a', weave: { threads } }, cleanups)
      const b = await linkedWeave({ dir, ns, id: 'b', weave: { threads } }, cleanups)
      // Its end, told to a join on a, carries its result of 600 KB twice (the exit message and the outcome).
      const child = b.weave.spawn('big', { n: 600_000 })
      await b.weave.join(child)
      join = await Promise.race([a.weave.join(child).then(() => 'resolved', (e: unknown) => e), new Promise((resolve) => setTimeout(() => resolve('waits'), 10_000))])
      exit = await a.weave.join(a.weave.spawn('parent', { type: 'big', params: { n: 1_200_000 } }))
      spawn = await a.weave.join(a.weave.spawn('parent', { type: 'big', params: { n: 1, pad: 'y'.repeat(1_200_000) } }))
    } finally {
      await restore()
    }
    expect(join).toMatchObject({ code: 'RAIMENT_MESSAGE_REFUSED' })
    expect((join as Error).message).toMatch(new RegExp(`^thread b/1 ended \\(done\\), but its end did not reach this weave: the broker refused it for its size \\(\\d+ bytes; its max_message_size is ${BROKER_MAX}\\)`))
    expect(exit).toMatchObject({ status: 'done', result: { exit: expect.stringMatching(/^b\//), status: 'done', refused: expect.stringMatching(/^its exit message did not reach this weave: the broker refused it for its size/) } })
    expect(spawn).toMatchObject({ status: 'done', result: { exit: expect.stringMatching(/^b\//), status: 'failed', error: { name: 'MessageRefused', code: 'RAIMENT_MESSAGE_REFUSED' } } })
  }, 60_000)

  it('refuses params bigger than maxMessageBytes at the spawn on another weave', async () => {
    const dir = tempDir()
    const ns = freshNamespace()
    cleanups.push(() => removeNamespace(ns, ['a', 'b']))
    const a = await linkedWeave({ dir, ns, id: 'a', weave: { threads, maxMessageBytes: 64 * 1024 } }, cleanups)
    await linkedWeave({ dir, ns, id: 'b', weave: { threads } }, cleanups)
    const p = a.weave.spawn('parent', { type: 'big', params: { n: 1, pad: 'y'.repeat(100_000) } })
    expect(await a.weave.join(p)).toMatchObject({ status: 'done', result: { threw: 'RAIMENT_MESSAGE_TOO_LARGE' } })
    expect(a.link.pending()).toBe(0)
  }, 60_000)
})

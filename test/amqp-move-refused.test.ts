/**
 * A move whose record fits maxMessageBytes but not the broker's max_message_size: the broker
 * refuses it (it closes the relay's channel), and the thread comes back to the weave it was
 * leaving, with its inbox and what was sent to it meanwhile, and runs on there; `migrate` rejects
 * with RAIMENT_MOVE_REFUSED. Before, the relay dead-lettered the record: the thread had left its
 * weave and never arrived anywhere. Weaves a and b in this process, on a real broker whose limit
 * is lowered to 1 MiB while a opens its relay's channel (src/amqp/refusals.ts).
 */
import { describe, expect, it } from 'vitest'
import { MoveRefused, thread } from 'raiment'
import { brokerUp, CI, freshNamespace, removeNamespace, brokerTests } from './support/broker.js'
import { lowerMaxMessageSize } from './support/broker-limit.js'
import { linkedWeave, type LinkedWeave } from './support/linked-weave.js'
import { tempDir } from './support/tmp.js'

const BROKER_MAX = 1024 * 1024

/** Waits for 'stop' (what else comes stays in its inbox), then takes `n` more: each, or its length when long. */
const holder = thread({
  uses: ['mailbox'],
  async does(p: { n: number }) {
    await this.mailbox.receive({ match: 'stop' })
    const got: Array<string | number> = []
    for (let i = 0; i < p.n; i++) {
      const m = await this.mailbox.receive<string>()
      got.push(m.length > 100 ? m.length : m)
    }
    return got
  },
})
const threads = { holder }

describe.skipIf(!brokerUp && !CI)('a move the broker refuses for its size', () => {
  const cleanups = brokerTests()

  it('brings the thread back, with its inbox and what was sent to it meanwhile; migrate rejects with its code', async () => {
    const dir = tempDir()
    const ns = freshNamespace()
    cleanups.push(() => removeNamespace(ns, ['a', 'b']))
    const b = await linkedWeave({ dir, ns, id: 'b', weave: { threads } }, cleanups)
    const restore = await lowerMaxMessageSize(BROKER_MAX, cleanups)
    const lines: string[] = []
    let a: LinkedWeave | undefined
    let refused: unknown
    let id = ''
    try {
      // a's relay opens its channel under the lowered limit.
      a = await linkedWeave({ dir, ns, id: 'a', link: { log: (l) => lines.push(l) }, weave: { threads } }, cleanups)
      const weave = a.weave
      id = weave.spawn('holder', { n: 4 })
      // Its record carries its inbox: 1.35 MB, within maxMessageBytes (16 MiB), over the broker's limit.
      for (const n of [400_000, 450_000, 500_000]) weave.send(id, 'x'.repeat(n))
      await weave.committed()
      // Sent once it has left (keyed: its key is known here already): forwarded to b, or (the refusal first) its own again.
      weave.on('thread-end', (e) => {
        if (e.id === id && e.status === 'moved') weave.send(id, 'while away', { key: 'k1' })
      })
      refused = await weave.migrate(id, 'b').then(
        () => null,
        (e: unknown) => e,
      )
      await Promise.race([a.link.outboxEmpty(), new Promise((resolve) => setTimeout(resolve, 10_000))])
    } finally {
      await restore()
    }
    expect(refused).toMatchObject({ code: 'RAIMENT_MOVE_REFUSED' })
    expect(refused).toBeInstanceOf(MoveRefused)
    expect((refused as Error).message).toMatch(new RegExp(`thread a/1 did not move to weave 'b': the broker refused its record for its size \\(\\d+ bytes; its max_message_size is ${BROKER_MAX}\\)`))
    expect(a.weave.journal.thread(id)?.status).toBe('running')
    expect(a.link.pending()).toBe(0)
    a.weave.send(id, 'stop')
    expect(await a.weave.join(id)).toMatchObject({ status: 'done', result: [400_000, 450_000, 500_000, 'while away'] })
    // Nothing went anywhere else: no dead letter on either weave, no thread on b.
    for (const w of [a.weave, b.weave]) expect(w.journal.db.prepare('SELECT count(*) FROM dead_letters').pluck().get()).toBe(0)
    expect(b.weave.journal.thread(id)).toBeUndefined()
    expect(lines.filter((l) => l.includes('the thread comes back here'))).toHaveLength(1)
  }, 60_000)
})

/**
 * A publish the broker refuses (nacks): the weave's queue is full under a policy with
 * `overflow: reject-publish`. The relay keeps the refused messages in its outbox, says so once,
 * opens its channel again after a back-off and publishes them again; once the queue has room they
 * arrive, each once and in order. Weaves a and b in this process, on a real broker.
 */
import { describe, expect, it } from 'vitest'
import { thread } from 'raiment'
import { brokerUp, CI, freshNamespace, rabbitmqctl, removeNamespace, brokerTests } from './support/broker.js'
import { linkedWeave, type LinkedWeave } from './support/linked-weave.js'
import { resultOf as result, sink } from './support/streams.js'
import { tempDir } from './support/tmp.js'

/**
 * Sends `n` messages to `to`, one every few ms: a queue's limit is checked a little after each
 * message, so messages that came all at once could all be let in (sends reach their thread
 * before their commit, so a thread sends up to 16 in one batch).
 */
const source = thread({
  uses: ['mailbox', 'clock'],
  async does(p: { to: string; n: number }) {
    for (let i = 0; i < p.n; i++) {
      await this.mailbox.send(p.to, { i })
      await this.clock.sleep(5)
    }
  },
})

const types = { source, sink }
/** Messages sent: enough that the queue's loose limit refuses some of them. */
const N = 30

describe.skipIf(!brokerUp && !CI)('a publish the broker refuses', () => {
  const cleanups = brokerTests()

  it('is kept in the outbox, logged once, and published again once the queue has room', async () => {
    const dir = tempDir()
    const ns = freshNamespace()
    const policy = `${ns}-full`
    cleanups.push(() => removeNamespace(ns, ['a', 'b']))
    // b's queue refuses messages once it holds one (a quorum queue's limit is loose: it may take
    // one more first). Set before the queue is declared, so it applies from the start.
    await rabbitmqctl('set_policy', '--apply-to', 'queues', policy, `^${ns}\\.weave\\.b$`, '{"max-length":1,"overflow":"reject-publish"}')
    let policySet = true
    cleanups.push(async () => {
      if (policySet) await rabbitmqctl('clear_policy', policy)
    })

    const open = (id: string, log: (line: string) => void): Promise<LinkedWeave> => linkedWeave({ dir, ns, id, link: { log, batch: 1 }, weave: { threads: types } }, cleanups)

    // b's sink exists, then b stops: nothing takes from its queue.
    let b = await open('b', () => {})
    const to = b.weave.spawn('sink', { n: N })
    await b.weave.committed()
    await b.close()

    const lines: string[] = []
    const waiting: Array<{ text: string; resolve: () => void }> = []
    const a = await open('a', (l) => {
      lines.push(l)
      for (const w of waiting) if (l.includes(w.text)) w.resolve()
    })
    /** Resolves once a's link has logged a line with `text`. */
    const seen = (text: string): Promise<void> =>
      lines.some((l) => l.includes(text)) ? Promise.resolve() : new Promise((resolve) => waiting.push({ text, resolve }))
    const sender = a.weave.spawn('source', { to, n: N })
    // The first few fill the queue (its limit is checked a little after each message); a later one
    // is refused.
    await seen('the broker refused a message')
    expect(a.link.pending()).toBeGreaterThan(0)
    await rabbitmqctl('clear_policy', policy)
    policySet = false
    await seen('the broker takes messages again')
    result(await a.weave.join(sender))
    await a.link.outboxEmpty()
    expect(lines.filter((l) => l.includes('refused')).length).toBe(1)

    b = await open('b', () => {})
    expect(result(await b.weave.join(to))).toEqual(Array.from({ length: N }, (_, i) => i))
  }, 60_000)
})

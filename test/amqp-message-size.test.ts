/**
 * A message bigger than the broker's max_message_size, between weaves (src/amqp/refusals.ts):
 * the broker closes the relay's channel for it; the relay dead-letters that one row, with the
 * reason, and the messages after it still arrive (before, it published the same row again
 * forever and every later message of the weave waited behind it). It travels alone, so its
 * refusal takes no other row with it, even those committed with it for the same weave. And a move whose record is
 * bigger than maxMessageBytes is refused before it leaves: the thread runs on where it was.
 * Weaves a and b in this process, on a real broker whose limit is lowered to 1 MiB while a opens
 * its relay's channel (a channel keeps the limit it opened with; no other test sends 1 MiB).
 */
import { describe, expect, it } from 'vitest'
import { MessageTooLarge, thread } from 'raiment'
import { brokerUp, CI, freshNamespace, removeNamespace, brokerTests } from './support/broker.js'
import { lowerMaxMessageSize } from './support/broker-limit.js'
import { linkedWeave, type LinkedWeave } from './support/linked-weave.js'
import { tempDir } from './support/tmp.js'

const BROKER_MAX = 1024 * 1024

/** Sends 'before', a message of `big` characters, then 'after 1' and 'after 2'. */
const sender = thread({
  uses: ['mailbox'],
  async does(p: { to: string; big: number }) {
    await this.mailbox.send(p.to, 'before')
    await this.mailbox.send(p.to, 'x'.repeat(p.big))
    await this.mailbox.send(p.to, 'after 1')
    await this.mailbox.send(p.to, 'after 2')
  },
})
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
/** Waits for 'stop' (what else comes stays in its inbox); returns how many messages it saw. */
const holder = thread({
  uses: ['mailbox'],
  async does() {
    await this.mailbox.receive({ match: 'stop' })
    return 'stopped'
  },
})
const threads = { sender, sink, holder }

describe.skipIf(!brokerUp && !CI)('a message bigger than the broker takes', () => {
  const cleanups = brokerTests()

  it('is a dead letter with its reason, and the messages after it arrive', async () => {
    const dir = tempDir()
    const ns = freshNamespace()
    cleanups.push(() => removeNamespace(ns, ['a', 'b']))
    const b = await linkedWeave({ dir, ns, id: 'b', weave: { threads } }, cleanups)
    const to = b.weave.spawn('sink', { n: 3 })
    await b.weave.committed()

    // A channel takes the broker's limit when it opens (one open before keeps the old one): a's
    // relay opens its channels under the lowered limit, kept until its outbox is empty, at most 10 s
    // (a relay that published the big row again forever never empties it).
    const restore = await lowerMaxMessageSize(BROKER_MAX, cleanups)
    const lines: string[] = []
    let emptied = false
    let a: LinkedWeave | undefined
    try {
      a = await linkedWeave({ dir, ns, id: 'a', link: { log: (l) => lines.push(l) }, weave: { threads } }, cleanups)
      const s = a.weave.spawn('sender', { to, big: 2 * BROKER_MAX })
      expect(await a.weave.join(s)).toMatchObject({ status: 'done' })
      await Promise.race([a.link.outboxEmpty().then(() => (emptied = true)), new Promise((resolve) => setTimeout(resolve, 10_000))])
    } finally {
      await restore()
    }
    expect(emptied, `the outbox of a is not empty 10 s on: ${lines.join('; ')}`).toBe(true)
    expect(await b.weave.join(to)).toMatchObject({ status: 'done', result: ['before', 'after 1', 'after 2'] })
    const dead = a.weave.journal.db.prepare('SELECT recipient, length(body) AS bytes, reason FROM dead_letters').all() as Array<{ recipient: string; bytes: number; reason: string }>
    expect(dead).toHaveLength(1)
    expect(dead[0]!.recipient).toBe(to)
    expect(dead[0]!.bytes).toBeGreaterThan(2 * BROKER_MAX)
    expect(dead[0]!.reason).toMatch(new RegExp(`the broker refused it for its size \\(\\d+ bytes; its max_message_size is ${BROKER_MAX}\\), so it cannot reach weave 'b'`))
    expect(lines.filter((l) => l.includes('refused it for its size'))).toHaveLength(1)
  }, 60_000)

  it('a big row committed with small ones for the same weave travels alone: its refusal takes none of them', async () => {
    const dir = tempDir()
    const ns = freshNamespace()
    cleanups.push(() => removeNamespace(ns, ['a', 'b']))
    const b = await linkedWeave({ dir, ns, id: 'b', weave: { threads } }, cleanups)
    const to = b.weave.spawn('sink', { n: 4 })
    await b.weave.committed()
    const restore = await lowerMaxMessageSize(BROKER_MAX, cleanups)
    try {
      const a = await linkedWeave({ dir, ns, id: 'a', weave: { threads } }, cleanups)
      // One commit, so one read of the relay: small rows around the big one, which would go in one batch with them.
      for (const m of ['before 1', 'before 2', 'x'.repeat(2 * BROKER_MAX), 'after 1', 'after 2']) a.weave.send(to, m)
      await a.weave.committed()
      await Promise.race([a.link.outboxEmpty(), new Promise((resolve) => setTimeout(resolve, 10_000))])
      const dead = a.weave.journal.db.prepare('SELECT length(body) AS bytes FROM dead_letters').pluck().all()
      expect(dead).toEqual([expect.any(Number)])
      expect(dead[0]).toBeGreaterThan(2 * BROKER_MAX)
    } finally {
      await restore()
    }
    expect(await b.weave.join(to)).toMatchObject({ status: 'done', result: ['before 1', 'before 2', 'after 1', 'after 2'] })
  }, 60_000)

  it('a message committed right after the refusal, before the refused row is deleted, does not wait for it at the receiver', async () => {
    const dir = tempDir()
    const ns = freshNamespace()
    cleanups.push(() => removeNamespace(ns, ['a', 'b']))
    const b = await linkedWeave({ dir, ns, id: 'b', weave: { threads } }, cleanups)
    const to = b.weave.spawn('sink', { n: 2 })
    await b.weave.committed()
    const restore = await lowerMaxMessageSize(BROKER_MAX, cleanups)
    let got: unknown
    try {
      let a: LinkedWeave | undefined = undefined
      // Sent as the relay tells of the refusal: read on its next channel while the refused row waits for its delete.
      const log = (l: string): void => {
        if (l.includes('refused it for its size')) a!.weave.send(to, 'right after')
      }
      a = await linkedWeave({ dir, ns, id: 'a', link: { log }, weave: { threads } }, cleanups)
      a.weave.send(to, 'before')
      a.weave.send(to, 'x'.repeat(2 * BROKER_MAX))
      // (Not 90 s, parked behind the refused row as if it might still come: src/amqp/resequence.ts.)
      got = await Promise.race([b.weave.join(to), new Promise((resolve) => setTimeout(() => resolve('waits'), 15_000))])
    } finally {
      await restore()
    }
    expect(got).toMatchObject({ status: 'done', result: ['before', 'right after'] })
  }, 60_000)

  it('refuses a move whose record is bigger than maxMessageBytes before it leaves; the thread runs on', async () => {
    const dir = tempDir()
    const ns = freshNamespace()
    cleanups.push(() => removeNamespace(ns, ['a', 'b']))
    const a = await linkedWeave({ dir, ns, id: 'a', weave: { threads, maxMessageBytes: 64 * 1024 } }, cleanups)
    await linkedWeave({ dir, ns, id: 'b', weave: { threads } }, cleanups)
    const id = a.weave.spawn('holder')
    // Its inbox goes with its record: three messages within the limit, 90 KB together.
    for (let i = 0; i < 3; i++) a.weave.send(id, `${i}`.repeat(30_000))
    await a.weave.committed()
    await expect(a.weave.migrate(id, 'b')).rejects.toThrow(MessageTooLarge)
    await expect(a.weave.migrate(id, 'b')).rejects.toThrow(/the record of thread a\/1 \(its move to weave 'b'.* more than the limit of 65536 bytes/)
    a.weave.send(id, 'stop')
    expect(await a.weave.join(id)).toMatchObject({ status: 'done', result: 'stopped' })
  }, 60_000)
})

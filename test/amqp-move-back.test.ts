/**
 * A message that chases a thread moving away and back. Thread t of weave a moves to b; a message
 * from weave c for t reaches a (its home) while t is on its way back, so a forwards it to b, and
 * b, which t has left, forwards it back to a. Each hop is a new envelope: a takes it, though it
 * took the message once already on its way to b (before, the copy coming back had the id a had
 * taken, and a dropped it as a copy: lost).
 *
 * The order is made certain by the broker's queue: a is stopped while c sends (the message waits
 * in a's queue) and while b moves t back (the move record waits behind it); a, started again,
 * takes the message first (t is still forwarded to b), then t.
 */
import { describe, expect, it } from 'vitest'
import { thread, type AnyThreadType, type Weave } from 'raiment'
import { brokerTests, brokerUp, CI, freshNamespace, removeNamespace } from './support/broker.js'
import { openWeave, type OpenWeave } from './support/weaves.js'
import { tempDir } from './support/tmp.js'

const collector = thread({
  uses: ['mailbox'],
  async does(p: { n: number }) {
    const got: unknown[] = []
    for (let i = 0; i < p.n; i++) got.push(await this.mailbox.receive<unknown>())
    return got
  },
})

const sender = thread({
  uses: ['mailbox'],
  async does(p: { to: string; message: unknown }) {
    return await this.mailbox.send(p.to, p.message)
  },
})

const threads = { collector, sender } as Record<string, AnyThreadType>

describe.skipIf(!brokerUp && !CI)('a message chasing a thread that moved away and back', () => {
  const cleanups = brokerTests()

  /**
   * Weaves a, b and c on a namespace of their own, and t, a collector of two messages, moved from
   * a to b; then a stopped, c's `first` for t waiting in a's queue, and t's move back from b to
   * a behind it.
   */
  async function movedBack(): Promise<{ open: (id: string) => Promise<OpenWeave>; b: OpenWeave; t: string; send: (message: string) => Promise<void>; outboxOf: (w: Weave) => number }> {
    const dir = tempDir()
    const ns = freshNamespace()
    cleanups.push(() => removeNamespace(ns, ['a', 'b', 'c']))
    const open = (id: string): Promise<OpenWeave> => openWeave(cleanups, dir, ns, id, threads, { durability: 'sync' })
    const a = await open('a')
    const b = await open('b')
    const c = await open('c')
    const t = a.weave.spawn('collector', { n: 2 })
    await a.weave.committed()
    expect(await a.weave.migrate(t, 'b')).toBe('b')
    const outboxOf = (w: Weave): number => w.journal.db.prepare('SELECT count(*) FROM outbox').pluck().get() as number
    /** c sends `message` to t, and the broker has it. */
    const send = async (message: string): Promise<void> => {
      expect(await c.weave.join(c.weave.spawn('sender', { to: t, message }))).toMatchObject({ status: 'done' })
      await expect.poll(() => outboxOf(c.weave), { timeout: 10_000, interval: 20 }).toBe(0)
    }
    // a stops: what comes for it waits in its queue, in order.
    await a.close()
    await send('first')
    expect(await b.weave.migrate(t, 'a')).toBe('a')
    await expect.poll(() => outboxOf(b.weave), { timeout: 10_000, interval: 20 }).toBe(0)
    return { open, b, t, send, outboxOf }
  }

  it('is delivered once, by the weave it came back to', async () => {
    const { open, t } = await movedBack()
    // a again: it takes the message (t is still forwarded to b here: on to b), then t.
    const a = await open('a')
    await expect.poll(() => a.weave.journal.thread(t)?.status, { timeout: 10_000, interval: 20 }).toBe('running')
    a.weave.send(t, 'second')
    const end = await Promise.race([a.weave.join(t), new Promise((r) => setTimeout(() => r('the first message never came back'), 10_000))])
    expect(end).toMatchObject({ status: 'done', result: expect.arrayContaining(['first', 'second']) as unknown })
  }, 60_000)

  it("keeps the sender's order: a later message sent straight to the weave it came back to waits for the one coming back", async () => {
    const { open, b: firstB, t, send, outboxOf } = await movedBack()
    // b stopped: a forwards `first` to b (t was there when it came), where it waits, and t's
    // fence behind it; t runs on a meanwhile.
    await firstB.close()
    const a = await open('a')
    await expect.poll(() => a.weave.journal.thread(t)?.status, { timeout: 10_000, interval: 20 }).toBe('running')
    await expect.poll(() => outboxOf(a.weave), { timeout: 10_000, interval: 20 }).toBe(0)
    // `second` comes to a straight from c, while `first` is still on its way back.
    await send('second')
    const fromC = (): number => a.weave.journal.db.prepare("SELECT count(*) FROM received WHERE src LIKE 'c#%'").pluck().get() as number
    await expect.poll(fromC, { timeout: 10_000, interval: 20 }).toBe(2)
    await open('b')
    const end = await Promise.race([a.weave.join(t), new Promise((r) => setTimeout(() => r('t did not get both'), 20_000))])
    expect(end).toMatchObject({ status: 'done', result: ['first', 'second'] })
  }, 60_000)
})

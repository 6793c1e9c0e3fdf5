/**
 * A supervisor restart loses no message sent from another weave: while a failed worker of weave b
 * waits out its back-off, its name stays held (b does not announce it free), so a send by the name
 * from weave a reaches b and waits for the restarted worker there, instead of being a dead letter
 * on either weave. Weaves in this process, on the service broker.
 */
import { describe, expect, it, vi } from 'vitest'
import { thread, type AnyThreadType, type SendResult } from 'raiment'
import { brokerUp, CI, brokerTests, freshNamespace, removeNamespace } from './support/broker.js'
import { resultOf } from './support/streams.js'
import { tempDir } from './support/tmp.js'
import { openWeave } from './support/weaves.js'

/** Sends 0..n-1 to `to`, one at a time; returns what each send resolved to. */
const sender = thread({
  uses: ['mailbox'],
  async does(p: { to: string; n: number }) {
    const sent: SendResult[] = []
    for (let i = 0; i < p.n; i++) sent.push(await this.mailbox.send(p.to, i))
    return sent
  },
})

/** Registers `name`; fails on 'fail'; returns the first n numbers it receives. */
const worker = thread({
  uses: ['registry', 'mailbox'],
  async does(p: { name: string; n: number }) {
    await this.registry.register(p.name)
    const got: unknown[] = []
    while (got.length < p.n) {
      const m = await this.mailbox.receive()
      if (m === 'fail') throw new Error('the worker fails on purpose')
      got.push(m)
    }
    return got
  },
})

const threads = { sender, worker } as Record<string, AnyThreadType>

describe.skipIf(!brokerUp && !CI)('a supervisor restart across weaves', () => {
  const cleanups = brokerTests()

  it('a send by name from another weave during the back-off waits for the restarted worker', async () => {
    const dir = tempDir()
    const ns = freshNamespace()
    cleanups.push(() => removeNamespace(ns, ['a', 'b']))
    const a = await openWeave(cleanups, dir, ns, 'a', threads)
    const b = await openWeave(cleanups, dir, ns, 'b', threads)
    const sup = b.weave.spawn('raiment/supervisor', { children: [{ type: 'worker', params: { name: 'rw', n: 4 }, restart: 'transient' }], backoff: { initial: 4_000, factor: 1, max: 4_000 } })
    const workers = () => b.weave.journal.threads({ type: 'worker' }).map((t) => t.id)
    await vi.waitFor(() => expect(a.link.resolveName('rw')).toEqual({ thread: workers()[0] }), { timeout: 5_000, interval: 10 })
    const first = workers()[0]!
    const failed = new Promise<void>((resolve) => b.weave.on('thread-end', (e) => e.id === first && resolve()))
    b.weave.send('rw', 'fail')
    await failed
    // During the back-off: a sends by the name; b takes the messages for the held worker.
    const sent = resultOf(await a.weave.join(a.weave.spawn('sender', { to: 'rw', n: 4 }))) as SendResult[]
    expect(sent.every((r) => r.delivered)).toBe(true)
    await a.link.outboxEmpty()
    const held = b.weave.journal.db.prepare('SELECT count(*) FROM inbox WHERE thread = ?').pluck()
    await vi.waitFor(() => expect(held.get(first)).toBe(4), { timeout: 3_000, interval: 10 })
    expect(workers()).toHaveLength(1)
    expect(await b.weave.join(sup)).toMatchObject({ status: 'done', result: { restarted: 1 } })
    expect(resultOf(await b.weave.join(workers()[1]!))).toEqual([0, 1, 2, 3])
    const dead = (w: typeof a.weave): unknown[] => w.journal.db.prepare('SELECT recipient, reason FROM dead_letters').all()
    expect(dead(a.weave)).toEqual([])
    expect(dead(b.weave)).toEqual([])
  }, 30_000)

  it('a supervisor that moves to another weave lets what it holds go there: dead letters, the name free', async () => {
    const { a, sup, first } = await supervisedOnA(cleanups, 'mv')
    const failed = new Promise<void>((resolve) => a.weave.on('thread-end', (e) => e.id === first && resolve()))
    a.weave.send('mv', 'fail')
    a.weave.send('mv', 'kept')
    await failed
    await a.weave.committed()
    const db = a.weave.journal.db
    expect(db.prepare('SELECT count(*) FROM inbox WHERE thread = ?').pluck().get(first)).toBe(1)
    expect(await a.weave.migrate(sup, 'b')).toBe('b')
    await a.weave.committed()
    expect(db.prepare('SELECT recipient, reason FROM dead_letters').all()).toEqual([{ recipient: first, reason: `the recipient ended and its supervisor ${sup} moved to another weave, which cannot restart it with them` }])
    expect(db.prepare('SELECT count(*) FROM inbox').pluck().get()).toBe(0)
    expect(db.prepare('SELECT count(*) FROM names').pluck().get()).toBe(0)
    expect(db.prepare('SELECT count(*) FROM successions').pluck().get()).toBe(0)
  }, 30_000)

  it('a child whose supervisor moved to another weave is not held at its end: dead letters, the name free', async () => {
    const { a, sup, first } = await supervisedOnA(cleanups, 'mv2')
    expect(await a.weave.migrate(sup, 'b')).toBe('b')
    await a.weave.committed()
    const failed = new Promise<void>((resolve) => a.weave.on('thread-end', (e) => e.id === first && resolve()))
    a.weave.send('mv2', 'fail')
    a.weave.send('mv2', 'late')
    await failed
    await a.weave.committed()
    const db = a.weave.journal.db
    expect(db.prepare('SELECT recipient, reason FROM dead_letters').all()).toEqual([{ recipient: first, reason: 'the recipient ended before receiving it' }])
    expect(db.prepare('SELECT count(*) FROM names').pluck().get()).toBe(0)
    expect(db.prepare('SELECT count(*) FROM successions').pluck().get()).toBe(0)
  }, 30_000)
})

/**
 * Weaves a and b of a fresh namespace, and on a a supervisor (a back-off of a minute) of one
 * worker registered as `name`: once the worker holds its name, the supervisor and that worker.
 */
async function supervisedOnA(cleanups: Array<() => Promise<void>>, name: string) {
  const dir = tempDir()
  const ns = freshNamespace()
  cleanups.push(() => removeNamespace(ns, ['a', 'b']))
  const a = await openWeave(cleanups, dir, ns, 'a', threads)
  await openWeave(cleanups, dir, ns, 'b', threads)
  const sup = a.weave.spawn('raiment/supervisor', { children: [{ type: 'worker', params: { name, n: 100 } }], backoff: { initial: 60_000, factor: 1, max: 60_000 } })
  const workers = () => a.weave.journal.threads({ type: 'worker' }).map((t) => t.id)
  await vi.waitFor(() => expect(a.weave.messages.whereis(name)).toBe(workers()[0]), { timeout: 5_000, interval: 10 })
  return { a, sup, first: workers()[0]! }
}

/**
 * What a move carries besides the record: the calls the thread had in flight when it left, and a
 * cancel put off to its next call. Both were dropped: a payment in flight through a move to a
 * weave on patched code was made twice (pay there, authorize here), and a cancel asked before the
 * move was lost, its row left behind to fire into a later wait if the thread came back.
 */
import { describe, expect, it } from 'vitest'
import { callContext, thread, type AnyThreadType, type ThreadEnd, type Weave } from 'raiment'
import { brokerUp, CI, freshNamespace, removeNamespace, brokerTests } from './support/broker.js'
import { tempDir } from './support/tmp.js'
import { until } from './support/until.js'
import { openWeave } from './support/weaves.js'

declare module 'raiment' {
  interface Libraries {
    psp: { pay(what: string): Promise<string>; authorize(what: string): Promise<string> }
  }
}

/** The PSP: what it was asked, by call id; a pay answers when the test says. */
function psp() {
  const asked: string[] = []
  const pays: Array<(v: string) => void> = []
  return {
    asked,
    pays,
    lib: {
      pay: (what: string) => {
        asked.push(`pay ${callContext().callId}`)
        return new Promise<string>((resolve) => pays.push((v) => resolve(`${what}: ${v}`)))
      },
      authorize: async (what: string) => {
        asked.push(`authorize ${callContext().callId}`)
        return `${what}: authorized`
      },
    },
  }
}

const payV1 = thread({
  uses: ['clock', 'psp'],
  async does() {
    await this.clock.now()
    return { version: 1, paid: await this.psp.pay('order-42') }
  },
})

/** The next version: authorize instead of pay, behind a patch. */
const payV2 = thread({
  uses: ['clock', 'patch', 'psp'],
  async does() {
    await this.clock.now()
    if (await this.patch.patched('two-steps')) return { version: 2, paid: await this.psp.authorize('order-42') }
    return { version: 2, paid: await this.psp.pay('order-42') }
  },
})

/** A pay that cannot be aborted, then a second step, which a cancel put off to it fails. */
const job = thread({
  uses: ['psp', 'mailbox'],
  async does() {
    const log: string[] = []
    try {
      log.push(await this.psp.pay('first'))
      log.push(await this.psp.authorize('second'))
      log.push(String(await this.mailbox.receive({ timeout: 2_000 })))
    } catch (e) {
      log.push((e as Error).name)
    }
    return log
  },
})

function result(end: ThreadEnd): unknown {
  expect(end.status, JSON.stringify(end)).toBe('done')
  return (end as Extract<ThreadEnd, { status: 'done' }>).result
}

const rows = (w: Weave, prefix: string): string[] => w.journal.db.prepare('SELECT k FROM meta WHERE substr(k, 1, ?) = ?').pluck().all(prefix.length, prefix) as string[]

describe.skipIf(!brokerUp && !CI)('what a move carries', () => {
  const cleanups = brokerTests()

  /** Weaves `a` and `b` joined to a fresh namespace in this process, each with its own code for type `t`. */
  async function weaves(code: Record<'a' | 'b', AnyThreadType>, lib: ReturnType<typeof psp>['lib']) {
    const dir = tempDir()
    const ns = freshNamespace()
    cleanups.push(() => removeNamespace(ns, ['a', 'b']))
    const open = async (id: 'a' | 'b'): Promise<Weave> => (await openWeave(cleanups, dir, ns, id, { t: code[id] }, { libraries: { psp: lib }, durability: 'batched', passivateAfter: false })).weave
    return { a: await open('a'), b: await open('b') }
  }

  it('a call still in flight after the wait is made again on the target, with its call id, before a patch there may take the new path', async () => {
    const p = psp()
    const { a, b } = await weaves({ a: payV1, b: payV2 }, p.lib)
    const id = a.spawn('t')
    await until('the pay in flight on a, its row written', () => p.asked.length === 1 && rows(a, 'inflight:').length === 1)
    expect(await a.migrate(id, 'b', { wait: 50 })).toBe('b')
    await until('the pay made again on b', () => p.asked.length === 2)
    // The row came with it, and left a with it.
    expect(rows(a, 'inflight:')).toEqual([])
    p.pays[1]!('paid on b')
    expect(result(await b.join(id))).toEqual({ version: 2, paid: 'order-42: paid on b' })
    expect(p.asked).toEqual([p.asked[0], p.asked[0]])
    expect(p.asked[0]).toMatch(/^pay /)
    await b.committed()
    expect(rows(b, 'inflight:')).toEqual([])
  }, 30_000)

  it('a thread moved to a weave that lacks its type waits there, not failed, and moves on to one that has it', async () => {
    const p = psp()
    const dir = tempDir()
    const ns = freshNamespace()
    cleanups.push(() => removeNamespace(ns, ['c', 'd']))
    const c = (await openWeave(cleanups, dir, ns, 'c', { t: job }, { libraries: { psp: p.lib }, durability: 'batched', passivateAfter: false })).weave
    // d runs no type 't'.
    const d = (await openWeave(cleanups, dir, ns, 'd', {}, { libraries: { psp: p.lib }, durability: 'batched', passivateAfter: false, onWarning: () => {} })).weave
    const id = c.spawn('t')
    await until('the first pay asked', () => p.asked.length === 1)
    p.pays[0]!('paid')
    await until('its receive', () => p.asked.length === 2)
    expect(await c.migrate(id, 'd', { wait: 10_000 })).toBe('d')
    await until('it arrived on d', () => d.journal.thread(id)?.status === 'running')
    await d.committed()
    expect(d.journal.thread(id)?.status).toBe('running')
    expect(await d.migrate(id, 'c', { wait: 10_000 })).toBe('c')
    await until('it is back on c', () => c.journal.thread(id)?.status === 'running')
    c.send(id, 'hello')
    expect(result(await c.join(id))).toEqual(['first: paid', 'second: authorized', 'hello'])
  }, 30_000)

  it('a cancel put off to the next call goes with the thread: that call there fails with it, and no request is left behind', async () => {
    const p = psp()
    const { a, b } = await weaves({ a: job, b: job }, p.lib)
    const id = a.spawn('t')
    await until('the first pay asked', () => p.asked.length === 1)
    expect(a.cancel(id, 'user asked')).toBe(true)
    await a.committed()
    expect(rows(a, 'cancel:')).toEqual([`cancel:${id}`])
    // The move waits for the pay (answered meanwhile), and leaves with the cancel untaken.
    const moved = a.migrate(id, 'b', { wait: 10_000 })
    p.pays[0]!('paid')
    expect(await moved).toBe('b')
    expect(result(await b.join(id))).toEqual(['first: paid', 'ThreadCancelled'])
    expect(p.asked).toHaveLength(1)
    await a.committed()
    await b.committed()
    expect(rows(a, 'cancel:')).toEqual([])
    expect(rows(b, 'cancel:')).toEqual([])
  }, 30_000)
})

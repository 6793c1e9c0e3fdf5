/**
 * A remote spawn (`threads.spawn(type, params, { on })`) still waiting for the broker to place it
 * when the weave lets go of its thread. Weave c joined the namespace but is down, and a has lost
 * the broker (a TCP proxy in front of the service broker is cut), so a's spawn on c waits for the
 * broker to say c's queue exists. Meanwhile:
 * - the thread moves to weave b (its wait runs out): the call is made again on b. Before, a spawned
 *   the child once the broker was back, and b spawned another (an id holding the weave that made
 *   the call: `c/a~…`, `c/b~…`): two children for one call. Now a spawns nothing, the child's id
 *   is that of the call wherever it is made (`c/a~…`), and the thread's join gets its result;
 * - the thread is killed: before, a spawned the child all the same; now nothing is spawned.
 */
import { describe, expect, it } from 'vitest'
import { thread, type AnyThreadType, type Weave } from 'raiment'
import { AMQP_URL, brokerTests, brokerUp, CI, declareWeaves, freshNamespace, removeNamespace } from './support/broker.js'
import { brokerProxy, type BrokerProxy } from './support/broker-proxy.js'
import { linkedWeave, type LinkedWeave } from './support/linked-weave.js'
import { tempDir } from './support/tmp.js'
import { until } from './support/until.js'

declare module 'raiment' {
  interface Libraries {
    moveProbe: { before(): Promise<void>; after(id: string): Promise<void> }
  }
}

const child = thread({ uses: [], async does() { return 'child done' } })
const parent = thread({
  uses: ['moveProbe', 'threads'],
  async does() {
    await this.moveProbe.before()
    const id = await this.threads.spawn('child', {}, { on: 'c' })
    await this.moveProbe.after(id)
    return { id, result: await this.threads.join(id) }
  },
})
const types = { child, parent } as Record<string, AnyThreadType>

const outbox = (w: Weave): number => w.journal.db.prepare('SELECT count(*) FROM outbox').pluck().get() as number
const children = (w: Weave): Array<{ id: string; parent: string | null }> =>
  w.journal
    .threads()
    .filter((t) => t.type === 'child')
    .map((t) => ({ id: t.id, parent: t.parent ?? null }))

describe.skipIf(!brokerUp && !CI)('a remote spawn waiting for the broker when its thread leaves the weave', () => {
  const cleanups = brokerTests()

  /** Weaves a (behind the proxy) and b; c declared but down; `asked` once a thread's spawn call is made. */
  async function setUp(): Promise<{ a: LinkedWeave; open: (id: string) => Promise<LinkedWeave>; px: BrokerProxy; asked: () => Promise<void>; spawned: string[] }> {
    const ns = freshNamespace()
    cleanups.push(() => removeNamespace(ns, ['a', 'b', 'c']))
    await declareWeaves(ns, ['c'])
    const px = await brokerProxy()
    cleanups.push(() => px.close())
    const dir = tempDir()
    const spawned: string[] = []
    let ask = (): void => {}
    const libraries = { moveProbe: { before: async () => ask(), after: async (id: string) => void spawned.push(id) } }
    const open = (id: string, url = AMQP_URL): Promise<LinkedWeave> => linkedWeave({ dir, ns, id, link: { url }, weave: { threads: types, libraries } }, cleanups)
    const a = await open('a', px.url)
    const asked = async (): Promise<void> => {
      await new Promise<void>((r) => (ask = r))
      // Its spawn call is made once `before` is answered (committed), on a turn after.
      await a.weave.committed()
      await new Promise((r) => setImmediate(r))
    }
    return { a, open, px, asked, spawned }
  }

  /** Cuts a's broker link and waits until a knows. */
  async function cut(a: LinkedWeave, px: BrokerProxy): Promise<void> {
    const down = new Promise<void>((r) => a.link.broker.once('down', () => r()))
    px.cut()
    await down
  }

  it('moved while its spawn waits: one child, named by the call, and its join gets its result', async () => {
    const { a, open, px, asked, spawned } = await setUp()
    const b = await open('b')
    await expect.poll(() => a.link.live().map((w) => w.id), { timeout: 10_000, interval: 20 }).toContain('b')
    await cut(a, px)
    const calling = asked()
    const id = a.weave.spawn('parent', {})
    await calling
    // The spawn waits for the broker: the move's wait runs out, and the call is made again on b.
    expect(await a.weave.migrate(id, 'b', { wait: 300 })).toBe('b')
    px.restore()
    // b made the call and its spawn is out, and so is all a had in its outbox.
    await until('the spawn made on b', () => spawned.length > 0)
    await until('both outboxes empty', () => outbox(a.weave) === 0 && outbox(b.weave) === 0)
    const c = await open('c')
    const end = await b.weave.join(id)
    expect(end, JSON.stringify(end)).toMatchObject({ status: 'done', result: { result: 'child done' } })
    const childId = (end as { result: { id: string } }).result.id
    await c.weave.committed()
    expect(children(c.weave)).toEqual([{ id: childId, parent: id }])
    expect(spawned).toEqual([childId])
    // Named by the weave the thread's id names, whichever weave made the call.
    expect(childId).toMatch(/^c\/a~/)
  }, 60_000)

  it('killed while its spawn waits: no child', async () => {
    const { a, open, px, asked, spawned } = await setUp()
    await cut(a, px)
    const calling = asked()
    const victim = a.weave.spawn('parent', {})
    await calling
    expect(a.weave.kill(victim)).toBe(true)
    const up = new Promise<void>((r) => a.link.broker.once('up', () => r()))
    px.restore()
    await up
    // A spawn asked for after the broker is back goes out after whatever a's first spawn sent.
    const calling2 = asked()
    const later = a.weave.spawn('parent', {})
    await calling2
    await until('the later spawn made', () => spawned.length > 0)
    await until("a's outbox empty", () => outbox(a.weave) === 0)
    const c = await open('c')
    const end = await a.weave.join(later)
    expect(end, JSON.stringify(end)).toMatchObject({ status: 'done', result: { result: 'child done' } })
    await c.weave.committed()
    expect(children(c.weave).map((t) => t.parent)).toEqual([later])
  }, 60_000)
})

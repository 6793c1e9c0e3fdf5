/**
 * A thread that moved onto a weave catches up there (src/catch-up.ts): sends from that weave are
 * held until a fence sent the way they took before comes back. At the edges, on a real broker
 * with weaves on separate journals: the weave it left is down (the fence does not come back),
 * so the held sends go in once the catch-up gives up, not never; it moves on before it caught
 * up, and what was held travels with it; its weave restarts, and what was held goes in after;
 * it ends, and a send to it is a dead letter, not held.
 * (The order itself: test/amqp-migrate.test.ts.)
 */
import { afterEach, describe, expect, it } from 'vitest'
import { Weave, type AnyThreadType } from 'raiment'
import { catchUp } from '../src/catch-up.js'
import { brokerTests, brokerUp, CI, freshNamespace, removeNamespace } from './support/broker.js'
import { linkedWeave, type LinkedWeave } from './support/linked-weave.js'
import { tempDir } from './support/tmp.js'
import listener from '../threads/listener.js'

const types = { listener } as Record<string, AnyThreadType>
const MS = catchUp.ms

describe.skipIf(!brokerUp && !CI)('catching up after a move', () => {
  const cleanups = brokerTests()
  afterEach(() => {
    catchUp.ms = MS
  })

  type Running = LinkedWeave

  async function weaves(ids: string[]) {
    const dir = tempDir()
    const ns = freshNamespace()
    cleanups.push(() => removeNamespace(ns, ids))
    const out: Record<string, Running> = {}
    for (const id of ids) out[id] = await open(dir, ns, id)
    for (const id of ids) await expect.poll(() => ids.every((o) => o === id || out[id]!.link.live().some((w) => w.id === o)), { timeout: 10_000, interval: 20 }).toBe(true)
    return out
  }

  /** Weave `id` of namespace `ns` on `dir/id.db`. */
  function open(dir: string, ns: string, id: string): Promise<Running> {
    return linkedWeave({ dir, ns, id, weave: { threads: types, passivateAfter: false } }, cleanups)
  }

  /** A listener spawned on `from`, moved to `to` once `from` has published all it holds, `from` then closed: its fence stays unanswered. */
  async function movedFromClosed(from: Running, to: Weave): Promise<string> {
    const id = from.weave.spawn('listener')
    await from.weave.committed()
    const arrived = new Promise<void>((r) => to.on('thread-start', (e) => e.id === id && r()))
    expect(await from.weave.migrate(id, to.journal.weaveId)).toBe(to.journal.weaveId)
    await from.link.outboxEmpty()
    await from.close()
    await arrived
    return id
  }

  it('the weave it left is down: a send from here goes in once the catch-up gives up', async () => {
    catchUp.ms = 300
    const { a, c } = await weaves(['a', 'c'])
    const id = await movedFromClosed(a!, c!.weave)
    expect(c!.weave.journal.db.prepare('SELECT count(*) FROM catch_up').pluck().get()).toBe(1)
    expect(c!.weave.send(id, 'hello')).toEqual({ delivered: true, to: id })
    expect(await c!.weave.join(id)).toMatchObject({ status: 'done', result: { received: 'hello' } })
    expect(c!.weave.journal.db.prepare('SELECT count(*) FROM catch_up_held').pluck().get()).toBe(0)
  }, 30_000)

  it('it moves on before it caught up: what was held travels with it', async () => {
    const { a, b, c } = await weaves(['a', 'b', 'c'])
    const id = await movedFromClosed(a!, c!.weave)
    expect(c!.weave.send(id, 'held')).toEqual({ delivered: true, to: id })
    await c!.weave.committed()
    expect(c!.weave.journal.db.prepare('SELECT count(*) FROM catch_up_held').pluck().get()).toBe(1)
    const ended = new Promise((r) => b!.weave.on('thread-end', (e) => e.id === id && r(e)))
    expect(await c!.weave.migrate(id, 'b')).toBe('b')
    expect(await ended).toMatchObject({ status: 'done', result: { received: 'held' } })
    expect(c!.weave.journal.db.prepare('SELECT count(*) FROM catch_up').pluck().get()).toBe(0)
  }, 30_000)

  it('its weave restarts while it catches up: what was held goes in after the restart, once', async () => {
    const dir = tempDir()
    const ns = freshNamespace()
    cleanups.push(() => removeNamespace(ns, ['a', 'c']))
    const a = await open(dir, ns, 'a')
    let c = await open(dir, ns, 'c')
    await expect.poll(() => c.link.live().some((w) => w.id === 'a'), { timeout: 10_000, interval: 20 }).toBe(true)
    const id = await movedFromClosed(a, c.weave)
    expect(c.weave.send(id, 'held')).toEqual({ delivered: true, to: id })
    await c.close()
    catchUp.ms = 300
    c = await open(dir, ns, 'c')
    expect(c.weave.journal.db.prepare('SELECT count(*) FROM catch_up_held').pluck().get()).toBe(1)
    expect(await c.weave.join(id)).toMatchObject({ status: 'done', result: { received: 'held' } })
    expect(c.weave.journal.db.prepare('SELECT count(*) FROM catch_up').pluck().get()).toBe(0)
  }, 30_000)

  it('it ends while catching up: a send to it is a dead letter, not held', async () => {
    const { a, c } = await weaves(['a', 'c'])
    const id = await movedFromClosed(a!, c!.weave)
    expect(c!.weave.kill(id)).toBe(true)
    await c!.weave.join(id)
    expect(c!.weave.send(id, 'late')).toMatchObject({ delivered: false, to: id })
  }, 30_000)
})

/**
 * A move whose record the broker returns: weave `to` was there when `migrate` placed the thread,
 * and left (its queue deleted) while the thread finished a call in flight, before the record was
 * published. The thread comes back to the weave it was leaving, with what was sent to it
 * meanwhile, and runs on there; `migrate` rejects with RAIMENT_UNKNOWN_WEAVE at once. Before, the
 * relay dead-lettered the record: the thread was 'moved' on its weave and existed nowhere, and
 * `migrate` resolved to `to` after its 10 s wait for the broker. Weaves a and b in this process,
 * on a real broker.
 */
import { describe, expect, it } from 'vitest'
import amqp from 'amqplib'
import { thread, type Placement } from 'raiment'
import { AMQP_URL, brokerUp, CI, freshNamespace, removeNamespace, brokerTests } from './support/broker.js'
import { linkedWeave, type LinkedWeave } from './support/linked-weave.js'
import { tempDir } from './support/tmp.js'
import type { PlacementUse } from '../src/remote.js'
import { MOVE_SENT_WAIT_MS } from '../src/weave-moves.js'

declare module 'raiment' {
  interface Libraries {
    moveHold: { wait(): Promise<number> }
  }
}

describe.skipIf(!brokerUp && !CI)('a move the broker returns (its weave left after it was placed)', () => {
  const cleanups = brokerTests()

  it('brings the thread back, with what was sent to it meanwhile; migrate rejects with RAIMENT_UNKNOWN_WEAVE', async () => {
    const dir = tempDir()
    const ns = freshNamespace()
    cleanups.push(() => removeNamespace(ns, ['a', 'b']))
    let started!: () => void
    const callStarted = new Promise<void>((resolve) => (started = resolve))
    let release!: () => void
    const released = new Promise<void>((resolve) => (release = resolve))
    const moveHold = {
      async wait(): Promise<number> {
        started()
        await released
        return 1
      },
    }
    const holder = thread({
      uses: ['moveHold', 'mailbox'],
      async does() {
        const got: unknown[] = [await this.moveHold.wait()]
        for (let i = 0; i < 2; i++) got.push(await this.mailbox.receive())
        return got
      },
    })
    const opts = { threads: { holder }, libraries: { moveHold } }
    const lines: string[] = []
    const b = await linkedWeave({ dir, ns, id: 'b', weave: opts }, cleanups)
    const a: LinkedWeave = await linkedWeave({ dir, ns, id: 'a', link: { log: (l) => lines.push(l) }, weave: opts }, cleanups)
    // The event that orders the test: migrate has placed the thread on b (b was there).
    let placed!: () => void
    const wasPlaced = new Promise<void>((resolve) => (placed = resolve))
    const place = a.link.place.bind(a.link)
    a.link.place = async (on: Placement, use?: PlacementUse) => {
      const to = await place(on, use)
      placed()
      return to
    }
    const weave = a.weave
    const id = weave.spawn('holder', {})
    await callStarted
    // Sent once it has left: forwarded to b (and returned), or (the return first) its own again.
    weave.on('thread-end', (e) => {
      if (e.id === id && e.status === 'moved') weave.send(id, 'while away')
    })
    const t0 = Date.now()
    const moving = weave.migrate(id, 'b').then(
      (to) => to,
      (e: unknown) => e,
    )
    await wasPlaced
    // b leaves the namespace (its queue removed) while a's thread finishes its call in flight.
    await b.close()
    const conn = await amqp.connect(AMQP_URL)
    try {
      const ch = await conn.createChannel()
      await ch.deleteQueue(`${ns}.weave.b`)
    } finally {
      await conn.close()
    }
    release()
    const refused = await moving
    expect(Date.now() - t0).toBeLessThan(MOVE_SENT_WAIT_MS)
    expect(refused).toMatchObject({ code: 'RAIMENT_UNKNOWN_WEAVE' })
    expect((refused as Error).message).toMatch(/^no weave 'b' has joined this broker's namespace; live weaves: a\b.*it keeps running where it is/)
    await Promise.race([a.link.outboxEmpty(), new Promise((resolve) => setTimeout(resolve, 10_000))])
    expect(weave.journal.thread(id)?.status).toBe('running')
    expect(a.link.pending()).toBe(0)
    weave.send(id, 'stop')
    expect(await weave.join(id)).toMatchObject({ status: 'done', result: [1, 'while away', 'stop'] })
    // Nothing went to the dead letters, and the weave said why it came back, once.
    expect(weave.journal.db.prepare('SELECT count(*) FROM dead_letters').pluck().get()).toBe(0)
    expect(lines.filter((l) => l.includes(`a thread's move to weave 'b': no weave 'b' has joined namespace '${ns}' of the broker; the thread comes back here`))).toHaveLength(1)
  }, 60_000)
})

/**
 * A move whose record the broker returns: weave `to` was there when `migrate` placed the thread,
 * and left (its queue deleted) while the thread finished a call in flight, before the record was
 * published. The thread comes back to the weave it was leaving, with what was sent to it
 * meanwhile, and runs on there; `migrate` rejects with RAIMENT_UNKNOWN_WEAVE at once. Before, the
 * relay dead-lettered the record: the thread was 'moved' on its weave and existed nowhere, and
 * `migrate` resolved to `to` after its 10 s wait for the broker. And a message sent to it while
 * away, which it took back with it, is no dead letter too, even when the broker's return of that
 * message is handled only once the thread is back (as under load: a copy in the dead letters,
 * resent, would reach it twice). Weaves a and b in this process, on a real broker.
 */
import { join } from 'node:path'
import Database from 'better-sqlite3'
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

  it('brings the thread back, with what was sent to it meanwhile; migrate rejects with RAIMENT_UNKNOWN_WEAVE', () => moveReturned(cleanups, false), 60_000)

  it('makes no dead letter of a message the thread took back whose return is handled once it is back', () => moveReturned(cleanups, true), 60_000)
})

/**
 * The scenario; with `lateConfirm`, the broker's confirm of the message sent while away (and so
 * its return) reaches the relay only once the thread is back here, as it may under load.
 */
async function moveReturned(cleanups: Array<() => Promise<void>>, lateConfirm: boolean): Promise<void> {
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
  // The event: this weave has taken the thread back (with the rows sent to it after its move).
  let back!: () => void
  const isBack = new Promise<void>((resolve) => (back = resolve))
  const refusedMove = weave.refusedMove.bind(weave)
  weave.refusedMove = async (...args) => {
    const taken = await refusedMove(...args)
    back()
    return taken
  }
  if (lateConfirm) await holdConfirms('while away', isBack, cleanups)
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
  // Nothing went to the dead letters (read once the weave has closed: the relay's last deletes,
  // and any dead letter with them, are committed), and the weave said why it came back, once.
  await a.close()
  const file = new Database(join(dir, 'a.db'), { readonly: true })
  try {
    expect(file.prepare('SELECT count(*) FROM dead_letters').pluck().get()).toBe(0)
  } finally {
    file.close()
  }
  expect(lines.filter((l) => l.includes(`a thread's move to weave 'b': no weave 'b' has joined namespace '${ns}' of the broker; the thread comes back here`))).toHaveLength(1)
}

/**
 * Holds amqplib's confirm callback of each publish whose body holds `text` until `until` resolves
 * (then a turn more). amqplib's, not Raiment's: the broker, the relay and the weaves are real.
 */
async function holdConfirms(text: string, until: Promise<void>, cleanups: Array<() => Promise<void>>): Promise<void> {
  type Publish = (exchange: string, key: string, content: Buffer, options: unknown, cb?: (err: unknown) => void) => boolean
  // amqplib's ConfirmChannel, which its package does not export: the prototype of one.
  const conn = await amqp.connect(AMQP_URL)
  const proto = Object.getPrototypeOf(await conn.createConfirmChannel()) as { publish: Publish }
  await conn.close()
  const publish = proto.publish
  proto.publish = function (this: unknown, exchange, key, content, options, cb) {
    if (cb === undefined || !content.includes(text)) return publish.call(this, exchange, key, content, options, cb)
    return publish.call(this, exchange, key, content, options, (err) => void until.then(() => setImmediate(() => cb(err))))
  }
  cleanups.push(async () => {
    proto.publish = publish
  })
}

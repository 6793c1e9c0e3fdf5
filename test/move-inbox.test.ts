/**
 * A thread moved in the middle of a predicate receive (`receive({ match })` scans with
 * `peek(after n)`): its record holds the inbox numbers of the weave it left, so the messages that
 * move with it are numbered on the new weave above all of those, and one it had not looked at
 * yet is still found. The move goes through `Weave.arrive` with the record `migrate` sends.
 */
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { thread, Weave } from 'raiment'
import { sendMessage } from '../src/cli/messages.js'
import { Journal } from '../src/journal.js'
import { Moves } from '../src/migration.js'
import { tempDir } from './support/tmp.js'

const picky = thread({
  uses: ['mailbox'],
  async does() {
    return await this.mailbox.receive<{ k: string }>({ match: (m) => m.k === 'yes' })
  },
})
const sink = thread({
  uses: ['mailbox'],
  async does() {
    return await this.mailbox.receive({ match: { never: true } })
  },
})

describe('moved inbox numbers', () => {
  it('a message the thread had not scanned yet when it moved is found on the new weave', async () => {
    const dir = tempDir('raiment-move-inbox-')
    const opts = (db: string, weaveId: string) => ({ db: join(dir, db), weaveId, threads: { picky, sink }, ioLibs: false as const, dumps: false as const, durability: 'memory' as const, passivateAfter: false as const })
    const a = await Weave.open(opts('a.db', 'wa'))
    const s = a.spawn('sink')
    const id = a.spawn('picky')
    await a.committed()
    // picky's first peek (after 0) waits; 50 messages to another thread take numbers 1..50.
    await expect.poll(() => a.running, { interval: 5 }).toBe(2)
    for (let i = 0; i < 50; i++) a.send(s, { n: i })
    a.send(id, { k: 'no' }) // 51: its peek sees it, leaves it, and scans on (peek after 51)
    await expect.poll(() => a.journal.entries(id).length, { interval: 5 }).toBe(1)
    await a.close()
    // 52, put in its inbox while no weave runs (`raiment send`), as if it had come just before
    // the move stopped the thread: not scanned yet.
    await sendMessage(join(dir, 'a.db'), id, { k: 'yes' })
    const j = new Journal(join(dir, 'a.db'), { own: false })
    const record = new Moves(j).read(id)
    j.close()
    expect(record.entries.map((e) => e[1])).toEqual(['mailbox.peek:[0]'])
    expect(record.inbox.map((m) => m.n)).toEqual([51, 52])

    const b = await Weave.open(opts('b.db', 'wb'))
    try {
      b.arrive('move-1', record, () => {})
      expect(await b.join(id)).toMatchObject({ status: 'done', result: { k: 'yes' } })
    } finally {
      await b.close()
    }
  })
})

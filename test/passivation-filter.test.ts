/**
 * Which message wakes a passivated receiver (src/passivation/waits.ts, `filter`): one its
 * receive's pattern matches, or, for a receive with a predicate (code, evaluated by replay), any
 * message it has not looked at yet. Real SQLite files, real weaves opened and closed in turn.
 * - Messages a pattern does not match neither wake the thread nor stay in memory; the one it
 *   matches wakes it, and it takes that one.
 * - At open, a passivated receiver whose inbox holds only messages its pattern does not match (or,
 *   with a predicate, only messages it has looked at) stays asleep; one whose inbox got a message
 *   that matches while no weave ran is resumed.
 * - `raiment show` says what it waits for, pattern included.
 * - Property: the filter wakes for exactly the messages the receive's own pattern matches (the
 *   pattern is read back from the call's key), for any pattern and message a journal records.
 *
 * Reproduce a failure of the property with FC_SEED=<seed>.
 */
import fc from 'fast-check'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { thread, Weave, type WeaveOptions } from 'raiment'
import { sendMessage } from '../src/cli/messages.js'
import { decodeValue, encodeArgs, encodeValue } from '../src/encoding.js'
import { matches } from '../src/message-shapes.js'
import { waitText } from '../src/passivation/listing.js'
import { wakeOf, wakesFor } from '../src/passivation/waits.js'
import { raiment } from './support/raiment-process.js'
import { passivatedOnce } from './support/passivated.js'
import { tempDir } from './support/tmp.js'

const seed = process.env['FC_SEED'] !== undefined ? Number(process.env['FC_SEED']) : Date.now() % 2 ** 31
console.log(`passivation-filter: fast-check seed ${seed} (FC_SEED=${seed} to reproduce)`)

const choosy = thread({
  uses: ['mailbox'],
  async does() {
    return await this.mailbox.receive<{ k: string; i?: number }>({ match: { k: 'b' } })
  },
})

const picky = thread({
  uses: ['mailbox'],
  async does() {
    return await this.mailbox.receive<{ k: string }>({ match: (m) => m.k === 'b' })
  },
})

const types = { choosy, picky }

function open(file: string, o: Partial<WeaveOptions> = {}): Promise<Weave> {
  return Weave.open({ db: file, durability: 'memory', threads: types, ioLibs: false, dumps: false, passivateAfter: 0, ...o })
}

/** Counts the runs of `id` that start from here on (a wake is a resumed start). */
function starts(weave: Weave, id: string): { n: number } {
  const c = { n: 0 }
  weave.on('thread-start', (e) => e.id === id && c.n++)
  return c
}

const deadLetters = (w: Weave, id: string): unknown => w.journal.db.prepare('SELECT count(*) FROM dead_letters WHERE recipient = ?').pluck().get(id)

describe('which message wakes a passivated receiver', () => {
  it('messages its pattern does not match neither wake it nor stay in memory; the one it matches wakes it', async () => {
    const w = await open(join(tempDir('raiment-passivate-filter-'), 'w.db'))
    try {
      const id = w.spawn('choosy')
      await passivatedOnce(w, [id])
      const woken = starts(w, id)
      for (let i = 0; i < 5; i++) w.send(id, { k: 'a', i })
      await w.committed()
      expect(woken.n).toBe(0)
      expect(w.messages.inboxes.held(id)).toBe(0)
      w.send(id, { k: 'b' })
      expect(await w.join(id)).toMatchObject({ status: 'done', result: { k: 'b' } })
      expect(woken.n).toBe(1)
      // The five it left are dead letters at its end, once each.
      expect(deadLetters(w, id)).toBe(5)
    } finally {
      await w.close()
    }
  })

  it('at open, a receiver with only unmatched messages stays asleep; one sent a match while no weave ran is resumed', async () => {
    const file = join(tempDir('raiment-passivate-filter-'), 'w.db')
    const w1 = await open(file)
    const asleep = w1.spawn('choosy')
    const matched = w1.spawn('choosy')
    const looked = w1.spawn('picky')
    await passivatedOnce(w1, [asleep, matched, looked])
    // picky looks at each message (its predicate is code): it wakes, and sleeps again after it.
    const lookedAgain = passivatedOnce(w1, [looked])
    for (const id of [asleep, matched]) w1.send(id, { k: 'a' })
    w1.send(looked, { k: 'a' })
    await lookedAgain
    await w1.close()
    // With no weave running, the message goes straight into the inbox.
    expect((await sendMessage(file, matched, { k: 'b' })).result).toEqual({ delivered: true, to: matched })

    const w2 = await open(file)
    try {
      expect(w2.resumed).toBe(1)
      expect(await w2.join(matched)).toMatchObject({ status: 'done', result: { k: 'b' } })
      expect(w2.running).toBe(0)
      const woken = [starts(w2, asleep), starts(w2, looked)]
      w2.send(asleep, { k: 'b' })
      w2.send(looked, { k: 'b' })
      expect(await w2.join(asleep)).toMatchObject({ status: 'done', result: { k: 'b' } })
      expect(await w2.join(looked)).toMatchObject({ status: 'done', result: { k: 'b' } })
      expect(woken.map((c) => c.n)).toEqual([1, 1])
    } finally {
      await w2.close()
    }
  })

  it('raiment show says which message a passivated receiver waits for; ps, once it is killed, that it is', async () => {
    const dir = tempDir('raiment-passivate-filter-')
    const w = await open(join(dir, 'raiment.db'))
    const id = w.spawn('choosy')
    await passivatedOnce(w, [id])
    await w.close()
    const show = await raiment(dir, 'show', id)
    expect(show.code, show.stderr).toBe(0)
    expect(show.stdout).toContain('passivated (waiting for a message matching {"k":"b"}, since ')
    // Killed while no weave runs, it is killed, though its row stays until a weave deletes it.
    expect((await raiment(dir, 'kill', id)).stdout.trim()).toBe(`killed ${id}`)
    const ps = await raiment(dir, 'ps')
    expect(ps.stdout).toMatch(new RegExp(`^${id}\\s+choosy\\s+killed\\s`, 'm'))
  })

  it('property: the filter wakes for exactly the messages the receive takes', () => {
    const value = fc.anything({ withBigInt: true, withDate: true, withNullPrototype: false, withBoxedValues: false, withTypedArray: false, withMap: false, withSet: false, maxDepth: 3 })
    // A message is often the pattern itself, grown by keys, so that matches are common.
    const grown = (p: unknown): fc.Arbitrary<unknown> =>
      p !== null && typeof p === 'object' && !Array.isArray(p) && !(p instanceof Date) ? fc.dictionary(fc.string({ maxLength: 3 }), value, { maxKeys: 2 }).map((extra) => ({ ...extra, ...(p) })) : fc.constant(p)
    fc.assert(
      fc.property(
        value.chain((p) => fc.tuple(fc.constant(p), fc.oneof(grown(p), value), fc.nat())),
        ([pattern, message, n]) => {
          const key = 'mailbox.take:' + encodeArgs([{ match: pattern }])
          const wake = wakeOf([{ lib: { name: 'mailbox' }, method: 'take', key }])!
          const body = encodeValue(message)
          // The receive matches the message as recorded, against its own pattern.
          const takes = matches(decodeValue(body), pattern)
          expect(wakesFor(wake.filter, n, body)).toBe(takes)
        },
      ),
      { seed, numRuns: 2_000 },
    )
  })

  it('a predicate receive is woken by the messages after the last it looked at', () => {
    const key = 'mailbox.peek:' + encodeArgs([7])
    const wake = wakeOf([{ lib: { name: 'mailbox' }, method: 'peek', key }])!
    expect(wake.mailbox).toBe(true)
    expect([6, 7, 8].map((n) => wakesFor(wake.filter, n, encodeValue('x')))).toEqual([false, false, true])
    // What show says it waits for: not the inbox position, which tells a user nothing.
    expect(waitText({ due: null, mailbox: true, filter: wake.filter, joins: null, since: 0 })).toBe('a message its predicate accepts')
    // Two receives at once: any message wakes.
    const two = wakeOf([
      { lib: { name: 'mailbox' }, method: 'peek', key },
      { lib: { name: 'mailbox' }, method: 'take', key: 'mailbox.take:' + encodeArgs([{ match: { k: 'b' } }]) },
    ])!
    expect(two.filter).toBeNull()
    // Numbers at or past the next message's here came from the weave a moved thread left: any wakes.
    expect(wakeOf([{ lib: { name: 'mailbox' }, method: 'peek', key }], 7)!.filter).toBeNull()
    expect(wakeOf([{ lib: { name: 'mailbox' }, method: 'peek', key }], 8)!.filter).not.toBeNull()
  })

  it('a pattern with secrets masked in its key wakes for any message', () => {
    const key = 'mailbox.take:' + encodeArgs([{ match: { token: '[secret:k1:abc]' } }])
    expect(wakeOf([{ lib: { name: 'mailbox' }, method: 'take', key }])!.filter).toBeNull()
  })
})

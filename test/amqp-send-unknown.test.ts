/**
 * `raiment send` to a thread of another weave, through the weave running on the journal, on a
 * real broker: to a weave that never joined the namespace (the broker has no queue for it) it
 * answers delivered:false at once, exit 1, the message in the dead letters (before, delivered:true
 * and a dead letter a moment later); to a weave that joined and is down, delivered:true, and the
 * message waits in its queue until it runs again, and the output says it was sent to that weave
 * (`sentToWeave`), which dead-letters it if it has no such thread. A keyed send to the weave that
 * never joined is dead-lettered once.
 */
import Database from 'better-sqlite3'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { thread, type Weave } from 'raiment'
import { cliRun } from './support/cli-in-process.js'
import { brokerUp, CI, freshNamespace, removeNamespace, brokerTests } from './support/broker.js'
import { tempDir } from './support/tmp.js'
import { openWeave } from './support/weaves.js'
import { until } from './support/until.js'
import listener from '../threads/listener.js'

/** Registers as 'col' and returns the first two messages it takes, in order. */
const collect = thread({
  uses: ['mailbox', 'registry'],
  async does() {
    await this.registry.register('col')
    return [await this.mailbox.receive(), await this.mailbox.receive()]
  },
})

const deadLetters = (w: Weave): Array<{ recipient: string; reason: string; body: string }> =>
  w.journal.db.prepare('SELECT recipient, reason, body FROM dead_letters ORDER BY n').all() as Array<{ recipient: string; reason: string; body: string }>

describe.skipIf(!brokerUp && !CI)('raiment send to a thread of another weave', () => {
  const cleanups = brokerTests()

  it('to a weave that never joined: delivered:false at once, exit 1; to one that joined and is down: delivered, and it gets it (a user trial)', async () => {
    const dir = tempDir('raiment-send-unknown-')
    const ns = freshNamespace()
    cleanups.push(() => removeNamespace(ns, ['a', 'b']))
    // b joins, runs a listener, and goes down before a starts: a has never heard it.
    const b = await openWeave(cleanups, dir, ns, 'b', { listener })
    const far = b.weave.spawn('listener', {})
    await b.weave.committed()
    await b.close()
    const a = await openWeave(cleanups, dir, ns, 'a', { listener })
    let printed: string[] = []
    const cli = async (...args: string[]): Promise<number> => {
      const r = await cliRun([...args, '--db', join(dir, 'a.db')])
      printed = r.printed
      return r.code
    }

    expect(await cli('send', 'nosuchweave/1', '{"x":1}'), printed.join('')).toBe(1)
    const reason = "no weave 'nosuchweave' has joined this broker's namespace (the broker has no queue for it)"
    expect(JSON.parse(printed[0]!)).toEqual({ delivered: false, to: 'nosuchweave/1', reason })
    expect(printed.join('')).toMatch(/^raiment: RAIMENT_NOT_DELIVERED: not delivered to nosuchweave\/1: no weave 'nosuchweave' has joined/m)
    await a.weave.committed()
    expect(deadLetters(a.weave)).toEqual([{ recipient: 'nosuchweave/1', reason, body: 'J{"x":1}' }])
    // Nothing of it is left in the outbox for the relay to dead-letter a second time.
    expect(a.weave.journal.db.prepare('SELECT count(*) FROM outbox').pluck().get()).toBe(0)
    // With a key (src/send-keys.ts): dead-lettered once; sent again, a duplicate, exit 0.
    expect(await cli('send', '--key', 'k', 'nosuchweave/1', '{"x":2}'), printed.join('')).toBe(1)
    expect(await cli('send', '--key', 'k', 'nosuchweave/1', '{"x":2}'), printed.join('')).toBe(0)
    expect(JSON.parse(printed[0]!)).toEqual({ delivered: false, to: 'nosuchweave/1', reason, duplicate: true })
    await a.weave.committed()
    expect(deadLetters(a.weave)).toHaveLength(2)

    // Down, but joined: its queue holds the message until it runs again.
    // Delivered means handed to weave b (a user trial read it as in the thread's inbox): said so.
    expect(await cli('send', far, '{"far":true}'), printed.join('')).toBe(0)
    expect(JSON.parse(printed[0]!)).toEqual({ delivered: true, to: far, sentToWeave: 'b' })
    expect(printed.join('')).toContain(`sent to weave 'b' (its queue has it, or will once the relay publishes it): that weave puts it in the inbox of ${far}, or in its own dead letters if ${far} has ended or does not exist there`)
    // A thread b never had: b dead-letters it; this side can only say where it went.
    expect(await cli('send', 'b/999', '{"nobody":true}'), printed.join('')).toBe(0)
    expect(JSON.parse(printed[0]!)).toEqual({ delivered: true, to: 'b/999', sentToWeave: 'b' })
    const again = await openWeave(cleanups, dir, ns, 'b', { listener })
    expect(await again.weave.join(far)).toMatchObject({ status: 'done', result: { received: { far: true } } })
    expect(deadLetters(a.weave)).toHaveLength(2)
    await until('b to dead-letter the message for b/999', () => deadLetters(again.weave).length === 1)
    expect(deadLetters(again.weave)).toEqual([{ recipient: 'b/999', reason: expect.stringContaining('b/999') as unknown, body: 'J{"nobody":true}' }])
  }, 60_000)

  it('keeps the order asked: a send by name behind a send by id still looking up its weave does not overtake it (a review)', async () => {
    const dir = tempDir('raiment-send-order-')
    const ns = freshNamespace()
    cleanups.push(() => removeNamespace(ns, ['a', 'b']))
    const b = await openWeave(cleanups, dir, ns, 'b', { collect })
    const far = b.weave.spawn('collect', {})
    await b.weave.committed()
    const a = await openWeave(cleanups, dir, ns, 'a', { collect })
    await expect.poll(() => a.link.live().some((w) => w.id === 'b' && Object.hasOwn(w.names, 'col')), { timeout: 10_000, interval: 20 }).toBe(true)
    // Two requests taken in one poll: by id (looked up first), then by name.
    const other = new Database(join(dir, 'a.db'))
    other.transaction(() => {
      const ins = other.prepare('INSERT INTO control (kind, thread, arg, msg_id) VALUES (?, ?, ?, ?)')
      ins.run('send', far, 'J{"n":1}', 'order-1')
      ins.run('send', 'col', 'J{"n":2}', 'order-2')
    })()
    other.close()
    expect(await b.weave.join(far)).toMatchObject({ status: 'done', result: [{ n: 1 }, { n: 2 }] })
  }, 30_000)
})

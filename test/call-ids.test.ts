/**
 * Call ids (src/call-context.ts): the same each time a call is made again, and unique across
 * journals: a journal made again under the same weave id numbers its threads from 1 again, and
 * its threads' calls must not take the ids of the old journal's (an idempotent effect would be
 * taken for done). A thread of an older journal (no scope) keeps the ids it had.
 */
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { callContext, thread, Weave, type AnyThreadType } from 'raiment'
import { AmqpLink } from '../src/amqp/link.js'
import { AMQP_URL, brokerUp, CI, freshNamespace, removeNamespace, brokerTests } from './support/broker.js'
import { tempDir } from './support/tmp.js'

declare module 'raiment' {
  interface Libraries {
    ids: { id(n: number): Promise<string> }
  }
}

/** Answers each call with its own call id. */
const ids = {
  async id(_n: number) {
    return callContext().callId
  },
}

/** Two calls, a message between them; returns both call ids. */
const twice = thread({
  uses: ['ids', 'mailbox'],
  async does() {
    const first = await this.ids.id(1)
    await this.mailbox.receive()
    return [first, await this.ids.id(2)]
  },
})

const types = { twice } as Record<string, AnyThreadType>

async function open(db: string, more: object = {}): Promise<Weave> {
  return Weave.open({ db, weaveId: 'w', threads: types, libraries: { ids }, ioLibs: false, dumps: false, durability: 'sync', ...more })
}

describe('call ids', () => {
  it('differ between two journals made one after the other under the same weave id, for the same thread id', async () => {
    const db = join(tempDir(), 'w.db')
    const got: unknown[] = []
    for (let i = 0; i < 2; i++) {
      rmSync(db, { force: true })
      rmSync(`${db}-wal`, { force: true })
      const weave = await open(db)
      const id = weave.spawn('twice')
      expect(id).toBe('w/1')
      weave.send(id, 'go')
      got.push(((await weave.join(id)) as { result: string[] }).result)
      await weave.close()
    }
    const [a, b] = got as [string[], string[]]
    expect(a[0]).toMatch(/^w\/1@[0-9a-z]{1,6}:[\w-]{16}:0$/)
    expect(a[0]).not.toBe(b[0])
    expect(a[1]).not.toBe(b[1])
  })

  it('stay the same across a restart, and a thread of a journal from before scopes keeps the ids it had', async () => {
    const db = join(tempDir(), 'w.db')
    let weave = await open(db)
    const scoped = weave.spawn('twice')
    const old = weave.spawn('twice')
    await weave.committed()
    await expect.poll(() => weave.journal.entries(old).length).toBe(1)
    await expect.poll(() => weave.journal.entries(scoped).length).toBe(1)
    // As a thread of a journal from before scopes (schema 20): none.
    weave.journal.db.prepare('UPDATE threads SET scope = NULL WHERE id = ?').run(old)
    await weave.close()
    weave = await open(db)
    weave.send(scoped, 'go')
    weave.send(old, 'go')
    const [s1, s2] = ((await weave.join(scoped)) as { result: string[] }).result
    const [o1, o2] = ((await weave.join(old)) as { result: string[] }).result
    await weave.close()
    expect(s1!.slice(0, s1!.indexOf(':'))).toBe(s2!.slice(0, s2!.indexOf(':')))
    expect(s1).toMatch(new RegExp(`^${scoped}@`))
    expect(o1).toMatch(new RegExp(`^${old}@`))
    // Its first call was made before (with a scope); its next, without one now, has the old form.
    expect(o2).toMatch(new RegExp(`^${old}:[\\w-]{16}:0$`))
  })
})

describe.skipIf(!brokerUp && !CI)('call ids of a thread that moves', () => {
  const cleanups = brokerTests()

  it('keep its scope on the weave it moves to', async () => {
    const dir = tempDir()
    const ns = freshNamespace()
    cleanups.push(() => removeNamespace(ns, ['a', 'b']))
    const w: Record<string, Weave> = {}
    for (const id of ['a', 'b']) {
      const link = await AmqpLink.connect({ url: AMQP_URL, namespace: ns, heartbeatMs: 100, log: () => {} })
      const weave = await Weave.open({ db: join(dir, `${id}.db`), weaveId: id, threads: types, libraries: { ids }, ioLibs: false, dumps: false, durability: 'memory', remote: link })
      await link.start(weave)
      cleanups.push(async () => {
        await link.close()
        await weave.close()
      })
      w[id] = weave
    }
    const t = w.a!.spawn('twice')
    await expect.poll(() => w.a!.journal.entries(t).length).toBe(1)
    await w.a!.migrate(t, 'b')
    await expect.poll(() => w.b!.journal.thread(t)?.status, { timeout: 10_000, interval: 20 }).toBe('running')
    w.b!.send(t, 'go')
    const [first, second] = ((await w.b!.join(t)) as { result: string[] }).result
    expect(first).toMatch(new RegExp(`^${t}@[0-9a-z]{1,6}:`))
    expect(second!.slice(0, second!.indexOf(':'))).toBe(first!.slice(0, first!.indexOf(':')))
  }, 30_000)
})

/**
 * Names across weaves, by the rule in src/amqp/name-owners.ts: a name no weave has announced waits
 * (durably, in order) while the sending weave has not heard every live weave, and goes to the
 * weave that registers it, or to a thread of the sending weave that does; it is a dead letter
 * once the view is complete and still no weave holds it; the weave a name was last heard on is
 * kept in the journal, so a message by name reaches that weave's queue while it is down, from a
 * sending weave restarted meanwhile; a thread that moves keeps receiving by its name; the weave a
 * message by name reaches delivers it to the thread holding the name there when it arrives, or
 * dead-letters it.
 * Weaves in this process, on the service broker (nothing here stops or disconnects it).
 */
import Database from 'better-sqlite3'
import { join } from 'node:path'
import { describe, expect, it, vi } from 'vitest'
import { thread, Weave, type AnyThreadType, type SendResult } from 'raiment'
import { brokerUp, CI, freshNamespace, removeNamespace, brokerTests } from './support/broker.js'
import { resultOf } from './support/streams.js'
import { sendMessage } from '../src/cli/messages.js'
import { tempDir } from './support/tmp.js'
import { openWeave, type OpenWeave } from './support/weaves.js'

/** Sends 0..n-1 to `to`, one at a time; returns what each send resolved to. */
const sender = thread({
  uses: ['mailbox'],
  async does(p: { to: string; from?: number; n: number }) {
    const sent: SendResult[] = []
    for (let i = p.from ?? 0; i < (p.from ?? 0) + p.n; i++) sent.push(await this.mailbox.send(p.to, i))
    return sent
  },
})

/** Registers `name`, then takes n messages; returns them in the order taken. */
const holder = thread({
  uses: ['registry', 'mailbox'],
  async does(p: { name: string; n: number }) {
    await this.registry.register(p.name)
    const got: unknown[] = []
    for (let k = 0; k < p.n; k++) got.push(await this.mailbox.receive())
    return got
  },
})

const threads = { sender, holder } as Record<string, AnyThreadType>

const dead = (w: Weave): unknown[] => w.journal.db.prepare('SELECT sender, recipient, body, reason FROM dead_letters ORDER BY n').all()

describe.skipIf(!brokerUp && !CI)('names across weaves', () => {
  const cleanups = brokerTests()

  /** Weaves of one namespace, each on its journal in one temp dir; `open` again reopens one. */
  function cluster(ids: string[]) {
    const dir = tempDir()
    const ns = freshNamespace()
    cleanups.push(() => removeNamespace(ns, ids))
    return (id: string, heartbeatMs = 100): Promise<OpenWeave> => openWeave(cleanups, dir, ns, id, threads, { heartbeatMs })
  }

  it('a name no weave has announced waits, in order, and goes to the weave that registers it', async () => {
    const open = cluster(['a', 'b'])
    // a hears every live weave only after three of its heartbeats: 15 s, ample for b to register.
    const a = await open('a', 5_000)
    const sent = resultOf(await a.weave.join(a.weave.spawn('sender', { to: 'late', n: 5 }))) as SendResult[]
    expect(sent).toEqual(Array.from({ length: 5 }, () => ({ delivered: true, to: 'late' })))
    expect(a.link.pending()).toBe(5)
    const b = await open('b')
    const h = b.weave.spawn('holder', { name: 'late', n: 5 })
    expect(resultOf(await b.weave.join(h))).toEqual([0, 1, 2, 3, 4])
    await a.link.outboxEmpty()
    expect(dead(a.weave)).toEqual([])
  })

  it('a name registered on the sending weave itself gets what waited for it first, then what follows', async () => {
    const open = cluster(['a'])
    const a = await open('a', 5_000)
    resultOf(await a.weave.join(a.weave.spawn('sender', { to: 'here', n: 3 })))
    const h = a.weave.spawn('holder', { name: 'here', n: 5 })
    // Once it holds the name, a send by it is local: behind the three that waited.
    await vi.waitFor(() => expect(a.weave.messages.whereis('here')).toBe(h), { timeout: 5_000, interval: 10 })
    resultOf(await a.weave.join(a.weave.spawn('sender', { to: 'here', from: 3, n: 2 })))
    expect(resultOf(await a.weave.join(h))).toEqual([0, 1, 2, 3, 4])
    expect(a.link.pending()).toBe(0)
  })

  it('a name no weave holds is a dead letter once the sending weave has heard every live weave', async () => {
    const open = cluster(['a'])
    const a = await open('a')
    const s = a.weave.spawn('sender', { to: 'nobody', n: 2 })
    resultOf(await a.weave.join(s))
    await a.link.outboxEmpty()
    const reason = "no thread is registered as 'nobody'"
    expect(dead(a.weave)).toEqual([0, 1].map((i) => ({ sender: s, recipient: 'nobody', body: `J${i}`, reason })))
  })

  it("a weave that is down keeps receiving by name, from a weave restarted meanwhile (the name's last weave is in its journal)", async () => {
    const open = cluster(['a', 'b'])
    let a = await open('a')
    let b = await open('b')
    const h = b.weave.spawn('holder', { name: 'svc', n: 3 })
    await vi.waitFor(() => expect(a.link.resolveName('svc')).toEqual({ thread: h }), { timeout: 5_000, interval: 10 })
    await b.close()
    await a.close()
    a = await open('a')
    expect(a.weave.journal.db.prepare('SELECT name, weave, thread FROM name_owners').all()).toEqual([{ name: 'svc', weave: 'b', thread: h }])
    const sent = resultOf(await a.weave.join(a.weave.spawn('sender', { to: 'svc', n: 3 }))) as SendResult[]
    expect(sent).toEqual(Array.from({ length: 3 }, () => ({ delivered: true, to: h })))
    // In b's queue while b is down.
    await a.link.outboxEmpty()
    b = await open('b')
    expect(resultOf(await b.weave.join(h))).toEqual([0, 1, 2])
    expect(dead(a.weave)).toEqual([])
  })

  it('a thread that moves on with its name keeps receiving by it while it is in transit, in order', async () => {
    const open = cluster(['a', 'b', 'c'])
    const a = await open('a')
    const b = await open('b')
    let c = await open('c')
    const h = b.weave.spawn('holder', { name: 'mv', n: 6 })
    await vi.waitFor(() => expect(a.link.resolveName('mv')).toEqual({ thread: h }), { timeout: 5_000, interval: 10 })
    resultOf(await a.weave.join(a.weave.spawn('sender', { to: 'mv', n: 3 })))
    // c is down: the thread waits in c's queue, and no weave announces 'mv' as its own.
    await c.close()
    expect(await b.weave.migrate(h, 'c')).toBe('c')
    await vi.waitFor(() => expect(a.link.live().find((w) => w.id === 'b')?.names).toEqual({}), { timeout: 5_000, interval: 10 })
    const sent = resultOf(await a.weave.join(a.weave.spawn('sender', { to: 'mv', from: 3, n: 3 }))) as SendResult[]
    expect(sent).toEqual(Array.from({ length: 3 }, () => ({ delivered: true, to: h })))
    c = await open('c')
    expect(resultOf(await c.weave.join(h))).toEqual([0, 1, 2, 3, 4, 5])
    for (const w of [a, b, c]) expect(dead(w.weave)).toEqual([])
  })

  it('a send by its name from the weave it left, while its new weave is down, reaches it (it was dead-lettered)', async () => {
    const open = cluster(['a', 'b', 'c'])
    await open('a')
    const b = await open('b')
    let c = await open('c')
    const h = b.weave.spawn('holder', { name: 'mv', n: 4 })
    await vi.waitFor(() => expect(b.weave.messages.whereis('mv')).toBe(h), { timeout: 5_000, interval: 10 })
    await c.close()
    expect(await b.weave.migrate(h, 'c')).toBe('c')
    // b has heard every live weave (a, and its own): none announces 'mv' but b, as moved.
    const sent = resultOf(await b.weave.join(b.weave.spawn('sender', { to: 'mv', n: 4 }))) as SendResult[]
    expect(sent).toEqual(Array.from({ length: 4 }, () => ({ delivered: true, to: h })))
    expect(b.weave.send('mv', 'by the API')).toEqual({ delivered: true, to: h })
    c = await open('c')
    expect(resultOf(await c.weave.join(h))).toEqual([0, 1, 2, 3])
    expect(dead(b.weave)).toEqual([])
  })

  it('raiment send by a name of another weave, with no weave running on the journal, waits in its outbox and reaches the thread', async () => {
    const open = cluster(['a', 'b'])
    let a = await open('a')
    const b = await open('b')
    const h = b.weave.spawn('holder', { name: 'svc', n: 2 })
    await vi.waitFor(() => expect(a.link.resolveName('svc')).toEqual({ thread: h }), { timeout: 5_000, interval: 10 })
    const file = a.weave.journal.path
    await a.close()
    for (const m of ['one', 'two']) {
      const out = await sendMessage(file, 'svc', m)
      expect(out.result).toEqual({ delivered: true, to: h })
      expect(out.waits).toMatch(/is a thread of weave 'b': the message waits in the outbox here until a weave runs on this journal with a broker/)
    }
    a = await open('a')
    expect(resultOf(await b.weave.join(h))).toEqual(['one', 'two'])
    expect(dead(a.weave)).toEqual([])
  })

  it('a thread that moved on with its name keeps receiving by it after the weave it left restarted (moved names are in its journal)', async () => {
    const open = cluster(['a', 'b', 'c'])
    const a = await open('a')
    let b = await open('b')
    let c = await open('c')
    const h = b.weave.spawn('holder', { name: 'mv', n: 3 })
    await vi.waitFor(() => expect(a.link.resolveName('mv')).toEqual({ thread: h }), { timeout: 5_000, interval: 10 })
    await c.close()
    expect(await b.weave.migrate(h, 'c')).toBe('c')
    await b.close()
    b = await open('b')
    // b's heartbeat after its restart (its pid is this process's either way: told apart by its `at`).
    const since = Date.now()
    await vi.waitFor(() => expect(a.link.live().find((w) => w.id === 'b' && w.at >= since)?.moved).toEqual({ mv: h }), { timeout: 5_000, interval: 10 })
    const sent = resultOf(await a.weave.join(a.weave.spawn('sender', { to: 'mv', n: 3 }))) as SendResult[]
    expect(sent).toEqual(Array.from({ length: 3 }, () => ({ delivered: true, to: h })))
    c = await open('c')
    expect(resultOf(await c.weave.join(h))).toEqual([0, 1, 2])
    for (const w of [a, b, c]) expect(dead(w.weave)).toEqual([])
  })
})

describe('a message by name from another weave, where it arrives', () => {
  it('goes to the thread that holds the name there now, and is a dead letter if none does', async () => {
    const w = await Weave.open({ db: join(tempDir(), 'w.db'), weaveId: 'w', threads, ioLibs: false, dumps: false, durability: 'memory' })
    try {
      const h = w.spawn('holder', { name: 'svc', n: 1 })
      await vi.waitFor(() => expect(w.messages.whereis('svc')).toBe(h), { timeout: 5_000, interval: 10 })
      const taken: string[] = []
      // Sent to w/99, which held the name when the sender last heard: it goes to the holder now.
      w.messages.receive('m1', 'x/1', 'w/99', 'J"hi"', () => taken.push('m1'), undefined, 'svc')
      w.messages.receive('m2', 'x/1', w.spawn('holder', { name: 'other', n: 1 }), 'J"no"', () => taken.push('m2'), undefined, 'gone')
      expect(resultOf(await w.join(h))).toEqual(['hi'])
      await w.committed()
      expect(taken).toEqual(['m1', 'm2'])
      expect(dead(w)).toEqual([{ sender: 'x/1', recipient: 'gone', body: 'J"no"', reason: "no thread is registered as 'gone' on weave w" }])
    } finally {
      await w.close()
    }
  })
})

describe('raiment send by a name held on another weave, with no weave running', () => {
  it('goes behind the messages already waiting for the name in this journal, not ahead of them', async () => {
    const file = join(tempDir(), 'a.db')
    const w = await Weave.open({ db: file, weaveId: 'a', threads, ioLibs: false, dumps: false, durability: 'memory' })
    await w.close()
    const db = new Database(file)
    try {
      db.prepare("INSERT INTO meta (k, v) VALUES ('amqp', 'x') ON CONFLICT (k) DO UPDATE SET v = excluded.v").run()
      db.prepare("INSERT INTO name_owners (name, weave, thread, at) VALUES ('svc', 'b', 'b/1', 0)").run()
      db.prepare("INSERT INTO outbox_names (msg_id, name, sender, body, at) VALUES ('m0', 'svc', NULL, 'J0', 0)").run()
    } finally {
      db.close()
    }
    const sent = await sendMessage(file, 'svc', 1)
    expect(sent.result).toEqual({ delivered: true, to: 'svc' })
    expect(sent.waits).toMatch(/waits here behind those already waiting for the name 'svc'/)
    const after = new Database(file, { readonly: true })
    try {
      expect(after.prepare("SELECT body FROM outbox_names WHERE name = 'svc' ORDER BY n").pluck().all()).toEqual(['J0', 'J1'])
      expect(after.prepare('SELECT count(*) FROM outbox').pluck().get()).toBe(0)
    } finally {
      after.close()
    }
  })
})

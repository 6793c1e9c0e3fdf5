/**
 * join, kill, monitor and link between threads of different weaves, on a real broker: weaves a,
 * b (and c) in this process, each on its own journal, joined to a fresh namespace. Also: who
 * monitors a thread still hears of its end after the thread moved to another weave; a parent
 * linked to its child on another weave gets its exit message once.
 */
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { thread, TIMED_OUT, Weave, type AnyThreadType, type Libraries, type ThreadEnd } from 'raiment'
import { AmqpLink } from '../src/amqp/link.js'
import { AMQP_URL, brokerUp, CI, freshNamespace, removeNamespace, brokerTests } from './support/broker.js'
import { tempDir } from './support/tmp.js'

/** 'ok': returns 42; 'fail': throws; 'wait': takes one message, then fails if told to, else returns it. */
const child = thread({
  uses: ['mailbox'],
  async does(p: { mode: 'ok' | 'fail' | 'wait' }) {
    if (p.mode === 'ok') return 42
    if (p.mode === 'fail') throw new RangeError('child failed on purpose')
    const m = await this.mailbox.receive<{ fail?: boolean }>()
    if (m.fail) throw new Error('told to fail')
    return m
  },
})

/** Spawns a child on weave `on` and joins it: its result, or the error it threw. */
const joiner = thread({
  uses: ['threads'],
  async does(p: { on: string; mode: 'ok' | 'fail' }) {
    const id = await this.threads.spawn('child', { mode: p.mode }, { on: p.on })
    try {
      return { id, result: await this.threads.join(id) }
    } catch (e) {
      return { id, error: { name: (e as Error).name, message: (e as Error).message, isRangeError: e instanceof RangeError } }
    }
  },
})

/** Joins `target` (any weave): its result, or the error it threw, by code or name. */
const joinOne = thread({
  uses: ['threads'],
  async does(p: { target: string }) {
    try {
      return { result: await this.threads.join(p.target) }
    } catch (e) {
      return { error: (e as { code?: string }).code ?? (e as Error).name }
    }
  },
})

/** Monitors `target` and returns the exit message it gets. */
const monitorer = thread({
  uses: ['threads', 'mailbox'],
  async does(p: { target: string }) {
    await this.threads.monitor(p.target)
    return this.mailbox.receive({ match: { exit: p.target }, timeout: 20_000 })
  },
})

/** Monitors `target` twice, one after the other: the exit message each time. */
const monitorTwice = thread({
  uses: ['threads', 'mailbox'],
  async does(p: { target: string }) {
    const got: unknown[] = []
    for (let i = 0; i < 2; i++) {
      await this.threads.monitor(p.target)
      const m = await this.mailbox.receive({ match: { exit: p.target }, timeout: 10_000 })
      got.push(m === TIMED_OUT ? 'not told' : m)
    }
    return got
  },
})

/** Links to `target` (trapping exits if `trap`), then waits for a message. */
const linker = thread({
  uses: ['threads', 'mailbox'],
  async does(p: { target: string; trap: boolean; failAfterLink?: boolean }) {
    if (p.trap) await this.threads.trapExits(true)
    await this.threads.link(p.target)
    if (p.failAfterLink) throw new Error('the linker fails')
    return this.mailbox.receive({ timeout: 20_000 })
  },
})

/** Kills `target` and joins it. */
const killer = thread({
  uses: ['threads'],
  async does(p: { target: string }) {
    const killed = await this.threads.kill(p.target)
    try {
      await this.threads.join(p.target)
      return { killed, end: 'not killed' }
    } catch (e) {
      return { killed, end: (e as { code?: string }).code }
    }
  },
})

/** Joins `target` and, without waiting, kills it: the join's watch and the kill reach its weave together. */
const joinThenKill = thread({
  uses: ['threads'],
  async does(p: { target: string }) {
    const joined = this.threads.join(p.target).then(
      () => 'not killed',
      (e: unknown) => (e as { code?: string }).code,
    )
    const killed = await this.threads.kill(p.target)
    return { killed, end: await joined }
  },
})

/** Tells `target` to fail, and takes the exit messages that come within a moment (one, then any more within 1 s). */
async function failAndTake(mailbox: Libraries['mailbox'], target: string): Promise<unknown[]> {
  await mailbox.send(target, { fail: true })
  const got: unknown[] = [await mailbox.receive()]
  const more = await mailbox.receive({ timeout: 1_000 })
  if (more !== TIMED_OUT) got.push(more)
  return got
}

/**
 * What a supervisor does with a child on another weave: traps exits, spawns it there, links it,
 * tells it to fail, and takes the exit messages that come within a moment.
 */
const guardian = thread({
  uses: ['threads', 'mailbox'],
  async does(p: { on: string }) {
    await this.threads.trapExits(true)
    const id = await this.threads.spawn('child', { mode: 'wait' }, { on: p.on })
    await this.threads.link(id)
    return failAndTake(this.mailbox, id)
  },
})

/** Traps exits, links and monitors `target`, tells it to fail, and takes the exit messages that come within a moment. */
const linkAndMonitor = thread({
  uses: ['threads', 'mailbox'],
  async does(p: { target: string }) {
    await this.threads.trapExits(true)
    await this.threads.link(p.target)
    await this.threads.monitor(p.target)
    return failAndTake(this.mailbox, p.target)
  },
})

/** Spawns a child on weave `on`, linked in the spawn, and waits (until killed). */
const spawnLinked = thread({
  uses: ['threads', 'mailbox'],
  async does(p: { on: string }) {
    await this.threads.spawn('child', { mode: 'wait' }, { on: p.on, link: true })
    return this.mailbox.receive({ timeout: 20_000 })
  },
})

/** Spawns a waiting child on weave `on`, and returns its id and the exit message it gets. */
const parentOf = thread({
  uses: ['threads', 'mailbox'],
  async does(p: { on: string }) {
    const id = await this.threads.spawn('child', { mode: 'wait' }, { on: p.on })
    return { id, got: await this.mailbox.receive({ match: { exit: id }, timeout: 30_000 }) }
  },
})

/** Monitors or links `targets`, then ends (done) at the first message, without waiting for them. */
const watchAndGo = thread({
  uses: ['threads', 'mailbox'],
  async does(p: { targets: string[]; kind: 'monitor' | 'link' }) {
    for (const t of p.targets) await (p.kind === 'monitor' ? this.threads.monitor(t) : this.threads.link(t))
    await this.mailbox.receive()
    return p.targets.length
  },
})

/** Spawns a child on weave `on` and ends at once: the child's exit message comes to a thread that has ended. */
const leaver = thread({
  uses: ['threads'],
  async does(p: { on: string }) {
    return this.threads.spawn('child', { mode: 'wait' }, { on: p.on })
  },
})

const types = { leaver, child, joiner, joinOne, monitorer, monitorTwice, linker, killer, joinThenKill, guardian, linkAndMonitor, spawnLinked, parentOf, watchAndGo } as Record<string, AnyThreadType>

function result(end: ThreadEnd): unknown {
  expect(end.status, JSON.stringify(end)).toBe('done')
  return (end as Extract<ThreadEnd, { status: 'done' }>).result
}

describe.skipIf(!brokerUp && !CI)('watching threads of other weaves', () => {
  const cleanups = brokerTests()

  async function weaves(ids: string[]): Promise<Record<string, Weave>> {
    const dir = tempDir()
    const ns = freshNamespace()
    cleanups.push(() => removeNamespace(ns, ids))
    const out: Record<string, Weave> = {}
    for (const id of ids) {
      const link = await AmqpLink.connect({ url: AMQP_URL, namespace: ns, heartbeatMs: 100, log: () => {} })
      const weave = await Weave.open({ db: join(dir, `${id}.db`), weaveId: id, threads: types, ioLibs: false, dumps: false, durability: 'memory', remote: link })
      await link.start(weave)
      cleanups.push(async () => {
        await link.close()
        await weave.close()
      })
      out[id] = weave
    }
    return out
  }

  it('join: a thread joins a child it spawned on another weave, and gets its result or its error', async () => {
    const { a } = await weaves(['a', 'b'])
    const ok = result(await a!.join(a!.spawn('joiner', { on: 'b', mode: 'ok' }))) as { id: string; result: unknown }
    expect(ok.id.startsWith('b/')).toBe(true)
    expect(ok.result).toBe(42)
    const failed = result(await a!.join(a!.spawn('joiner', { on: 'b', mode: 'fail' }))) as { error: unknown }
    expect(failed.error).toEqual({ name: 'RangeError', message: 'child failed on purpose', isRangeError: true })
  }, 30_000)

  it('join: a thread that ended before the join is answered from its record; an unknown id is UnknownThread', async () => {
    const { a, b } = await weaves(['a', 'b'])
    const target = b!.spawn('child', { mode: 'ok' })
    await b!.join(target)
    expect(result(await a!.join(a!.spawn('joinOne', { target })))).toEqual({ result: 42 })
    expect(result(await a!.join(a!.spawn('joinOne', { target: 'b/999999' })))).toEqual({ error: 'RAIMENT_UNKNOWN_THREAD' })
    // The program API too.
    expect(await a!.join(target)).toEqual({ id: target, type: 'child', status: 'done', result: 42 })
    await expect(a!.join('b/999999')).rejects.toMatchObject({ code: 'RAIMENT_UNKNOWN_THREAD' })
  }, 30_000)

  it('the exit message of a child on another weave for a parent that has ended goes with the parent, not to the dead letters (a user trial: they buried real dead letters)', async () => {
    const { a, b } = await weaves(['a', 'b'])
    const parent = a!.spawn('leaver', { on: 'b' })
    const kid = result(await a!.join(parent)) as string
    await expect.poll(() => b!.journal.thread(kid)?.status, { timeout: 10_000, interval: 20 }).toBe('running')
    b!.send(kid, { done: true })
    expect(result(await b!.join(kid))).toEqual({ done: true })
    // Its exit message reaches a (taken once: its id is in the received ids), for a parent that has ended.
    const took = (): number => a!.journal.db.prepare("SELECT count(*) FROM received WHERE msg_id LIKE 'exit:%'").pluck().get() as number
    await expect.poll(took, { timeout: 10_000, interval: 20 }).toBeGreaterThan(0)
    await a!.committed()
    expect(a!.journal.db.prepare('SELECT recipient, body FROM dead_letters').all()).toEqual([])
  }, 30_000)

  it('monitor: the exit message of a thread on another weave reaches the monitor', async () => {
    const { a, b } = await weaves(['a', 'b'])
    const target = b!.spawn('child', { mode: 'wait' })
    const watcher = a!.spawn('monitorer', { target })
    // Once the watch is recorded on b, make the target fail.
    await expect.poll(() => b!.journal.db.prepare('SELECT count(*) FROM watches WHERE target = ?').pluck().get(target), { timeout: 10_000, interval: 20 }).toBe(1)
    b!.send(target, { fail: true })
    expect(result(await a!.join(watcher))).toEqual({ exit: target, status: 'failed', error: { name: 'Error', message: 'told to fail' } })
  }, 30_000)

  it("a watcher's end drops its watches on the target's weave: a long-lived thread keeps no row for each thread that monitored or linked it", async () => {
    const { a, b } = await weaves(['a', 'b'])
    const rows = (w: Weave, where: string, ...args: string[]): unknown => w.journal.db.prepare(`SELECT count(*) FROM watches WHERE ${where}`).pluck().get(...args)
    const long = [b!.spawn('child', { mode: 'wait' }), b!.spawn('child', { mode: 'wait' })]
    for (const kind of ['monitor', 'link'] as const) {
      const watchers = Array.from({ length: 5 }, () => a!.spawn('watchAndGo', { targets: long, kind }))
      // Each watch reaches b; then each watcher's end takes it off there (and off a).
      await expect.poll(() => rows(b!, 'watcher LIKE ?', 'a/%'), { timeout: 10_000, interval: 20 }).toBe(10)
      for (const w of watchers) a!.send(w, 'go')
      for (const w of watchers) expect(result(await a!.join(w))).toBe(2)
      await expect.poll(() => rows(b!, 'watcher LIKE ?', 'a/%'), { timeout: 10_000, interval: 20 }).toBe(0)
      expect(rows(a!, '1')).toBe(0)
    }
    // The targets still run, and are watched as before: a monitor of one hears of its end.
    const m = a!.spawn('monitorer', { target: long[0]! })
    await expect.poll(() => rows(b!, 'target = ?', long[0]!), { timeout: 10_000, interval: 20 }).toBe(1)
    b!.send(long[0]!, 'bye')
    expect(result(await a!.join(m))).toEqual({ exit: long[0], status: 'done', result: 'bye' })
    // The monitor's record of its watch went with the target's end, on a.
    await expect.poll(() => rows(a!, '1'), { timeout: 10_000, interval: 20 }).toBe(0)
  }, 30_000)

  it('link: a failure on one weave ends the linked thread on the other, both ways; a thread that traps exits gets the message', async () => {
    const { a, b } = await weaves(['a', 'b'])
    // b's thread fails: a's linked thread ends with LinkedExit.
    const t1 = b!.spawn('child', { mode: 'wait' })
    const l1 = a!.spawn('linker', { target: t1, trap: false })
    await expect.poll(() => b!.journal.db.prepare('SELECT count(*) FROM watches WHERE target = ?').pluck().get(t1), { timeout: 10_000, interval: 20 }).toBe(1)
    b!.send(t1, { fail: true })
    const e1 = await a!.join(l1)
    expect(e1.status).toBe('failed')
    expect((e1 as { error: { code?: string } }).error.code).toBe('RAIMENT_LINKED_EXIT')

    // a's thread fails after linking: b's thread ends with LinkedExit.
    const t2 = b!.spawn('child', { mode: 'wait' })
    const l2 = a!.spawn('linker', { target: t2, trap: false, failAfterLink: true })
    expect((await a!.join(l2)).status).toBe('failed')
    const e2 = await b!.join(t2)
    expect(e2.status).toBe('failed')
    expect((e2 as { error: { code?: string } }).error.code).toBe('RAIMENT_LINKED_EXIT')

    // Trapping exits: the exit message instead.
    const t3 = b!.spawn('child', { mode: 'wait' })
    const l3 = a!.spawn('linker', { target: t3, trap: true })
    await expect.poll(() => b!.journal.db.prepare('SELECT count(*) FROM watches WHERE target = ?').pluck().get(t3), { timeout: 10_000, interval: 20 }).toBe(1)
    b!.send(t3, { fail: true })
    expect(result(await a!.join(l3))).toEqual({ exit: t3, status: 'failed', error: { name: 'Error', message: 'told to fail' } })
  }, 30_000)

  it('a parent linked to its child on another weave, trapping exits, gets its exit message once', async () => {
    const { a } = await weaves(['a', 'b'])
    const g = a!.spawn('guardian', { on: 'b' })
    // Before, it came twice: as the parent's exit message, and again through the link.
    expect(result(await a!.join(g))).toMatchObject([{ status: 'failed', error: { message: 'told to fail' } }])
  }, 30_000)

  it('a thread that traps exits, links and monitors a thread of another weave gets one exit message when it fails, as on one weave', async () => {
    const { a, b } = await weaves(['a', 'b'])
    const exit = (id: string): unknown => ({ exit: id, status: 'failed', error: { name: 'Error', message: 'told to fail' } })
    const remote = b!.spawn('child', { mode: 'wait' })
    expect(result(await a!.join(a!.spawn('linkAndMonitor', { target: remote })))).toEqual([exit(remote)])
    // Its target on its own weave at first, then moved to the other one: told from there.
    const moved = a!.spawn('child', { mode: 'wait' })
    await a!.migrate(moved, 'b')
    expect(result(await a!.join(a!.spawn('linkAndMonitor', { target: moved })))).toEqual([exit(moved)])
  }, 30_000)

  it('spawn with link: a child spawned on another weave is linked in its spawn, and ends when its parent is killed', async () => {
    const { a, b } = await weaves(['a', 'b'])
    const parent = a!.spawn('spawnLinked', { on: 'b' })
    // The link is recorded with the spawn, on the parent's side; the child runs on b.
    const linked = a!.journal.db.prepare("SELECT watcher FROM watches WHERE target = ? AND kind = 'link'").pluck()
    await expect.poll(() => linked.all(parent).length, { timeout: 10_000, interval: 20 }).toBe(1)
    const child = linked.get(parent) as string
    await expect.poll(() => b!.journal.thread(child)?.status, { timeout: 10_000, interval: 20 }).toBe('running')
    a!.kill(parent)
    expect(await b!.join(child)).toMatchObject({ status: 'failed', error: { code: 'RAIMENT_LINKED_EXIT' } })
  }, 30_000)

  it('a weave run for a while without its broker keeps the exit messages for threads of other weaves in its outbox, and sends them once back with it', async () => {
    const dir = tempDir()
    const ns = freshNamespace()
    cleanups.push(() => removeNamespace(ns, ['a', 'b']))
    const open = async (id: string, broker: boolean): Promise<Weave> => {
      const link = broker ? await AmqpLink.connect({ url: AMQP_URL, namespace: ns, heartbeatMs: 100, log: () => {} }) : null
      const weave = await Weave.open({ db: join(dir, `${id}.db`), weaveId: id, threads: types, ioLibs: false, dumps: false, durability: 'memory', ...(link ? { remote: link } : {}) })
      await link?.start(weave)
      const close = async (): Promise<void> => {
        await link?.close()
        await weave.close()
      }
      cleanups.push(close)
      closes.set(weave, close)
      return weave
    }
    const closes = new Map<Weave, () => Promise<void>>()
    const a = await open('a', true)
    let b = await open('b', true)
    const parent = a.spawn('parentOf', { on: 'b' })
    const children = b.journal.db.prepare("SELECT id FROM threads WHERE type = 'child'").pluck()
    await expect.poll(() => children.all().length, { timeout: 10_000, interval: 20 }).toBe(1)
    const child = children.get() as string
    const monitor = a.spawn('monitorer', { target: child })
    await expect.poll(() => b.journal.db.prepare("SELECT count(*) FROM watches WHERE target = ? AND kind = 'monitor'").pluck().get(child), { timeout: 10_000, interval: 20 }).toBe(1)
    await closes.get(b)!()
    // Without the broker, the child fails: what its end tells a's threads waits.
    b = await open('b', false)
    b.send(child, { fail: true })
    expect(await b.join(child)).toMatchObject({ status: 'failed' })
    await b.committed()
    expect(b.journal.db.prepare('SELECT count(*) FROM dead_letters').pluck().get()).toBe(0)
    expect(b.journal.db.prepare('SELECT count(*) FROM outbox').pluck().get()).toBe(2)
    await closes.get(b)!()
    b = await open('b', true)
    const exit = { exit: child, status: 'failed', error: { name: 'Error', message: 'told to fail' } }
    // Before, both were dropped: the parent and the monitor waited out their 30 s and 20 s.
    expect(result(await a.join(parent))).toEqual({ id: child, got: exit })
    expect(result(await a.join(monitor))).toEqual(exit)
  }, 60_000)

  it('kill: a thread kills a thread of another weave, and its join sees it killed', async () => {
    const { a, b } = await weaves(['a', 'b'])
    const target = b!.spawn('child', { mode: 'wait' })
    expect(result(await a!.join(a!.spawn('killer', { target })))).toEqual({ killed: true, end: 'RAIMENT_THREAD_KILLED' })
    expect((await b!.join(target)).status).toBe('killed')
  }, 30_000)

  it('monitor twice of a thread of another weave that has ended: both are answered', async () => {
    const { a, b } = await weaves(['a', 'b'])
    const target = b!.spawn('child', { mode: 'ok' })
    await b!.join(target)
    const exit = { exit: target, status: 'done', result: 42 }
    expect(result(await a!.join(a!.spawn('monitorTwice', { target })))).toEqual([exit, exit])
  }, 30_000)

  it('ids past what an AMQP message id holds (255 bytes) still travel: a monitor of a thread with a long id is answered', async () => {
    const { a, b } = await weaves(['a', 'b'])
    // Its exit message's id holds the target's id twice, and the watch's: some 300 bytes.
    const target = b!.spawn('child', { mode: 'ok' }, { id: `b/${'long'.repeat(30)}` })
    await b!.join(target)
    const exit = { exit: target, status: 'done', result: 42 }
    expect(result(await a!.join(a!.spawn('monitorTwice', { target })))).toEqual([exit, exit])
    // Each came with where it came from (b's journal and row), as any row does.
    const origins = a!.journal.db.prepare("SELECT src IS NOT NULL AND sn IS NOT NULL FROM received WHERE msg_id LIKE 'exit:%'").pluck().all()
    expect(origins).toEqual([1, 1])
  }, 30_000)

  it('join then kill at once: the watch and the kill arrive in one batch, and the join is answered', async () => {
    const { a, b } = await weaves(['a', 'b'])
    for (let i = 0; i < 3; i++) {
      const target = b!.spawn('child', { mode: 'wait' })
      await b!.committed()
      expect(result(await a!.join(a!.spawn('joinThenKill', { target })))).toEqual({ killed: true, end: 'RAIMENT_THREAD_KILLED' })
    }
  }, 30_000)

  it("a watcher's end drops its watches where they are when watcher or target moved: none is left on any weave", async () => {
    const { a, b, c } = await weaves(['a', 'b', 'c'])
    const rows = (w: Weave): unknown => w.journal.db.prepare('SELECT count(*) FROM watches').pluck().get()
    // The target moves: a's watcher still watches it, on b now; the watcher's end drops it there.
    const t1 = a!.spawn('child', { mode: 'wait' })
    const w1 = a!.spawn('watchAndGo', { targets: [t1], kind: 'monitor' })
    await expect.poll(() => rows(a!), { timeout: 10_000, interval: 20 }).toBe(1)
    await a!.committed()
    expect(await a!.migrate(t1, 'b')).toBe('b')
    await expect.poll(() => rows(b!), { timeout: 10_000, interval: 20 }).toBe(1)
    a!.send(w1, 'go')
    expect(result(await a!.join(w1))).toBe(1)
    await expect.poll(() => rows(b!), { timeout: 10_000, interval: 20 }).toBe(0)
    expect(rows(a!)).toBe(0)
    // The watcher moves, to the target's weave: it keeps no record of the watch where it left.
    const t2 = b!.spawn('child', { mode: 'wait' })
    const w2 = a!.spawn('watchAndGo', { targets: [t2], kind: 'monitor' })
    await expect.poll(() => rows(b!), { timeout: 10_000, interval: 20 }).toBe(1)
    await a!.committed()
    expect(await a!.migrate(w2, 'b')).toBe('b')
    await a!.committed()
    expect(rows(a!)).toBe(0)
    b!.send(w2, 'go')
    expect(result(await b!.join(w2))).toBe(1)
    await expect.poll(() => rows(b!), { timeout: 10_000, interval: 20 }).toBe(0)
    // The watcher moves to a third weave: the move carries what it monitors, and its end there
    // drops the watch on the target's weave.
    const t3 = b!.spawn('child', { mode: 'wait' })
    const w3 = a!.spawn('watchAndGo', { targets: [t3], kind: 'monitor' })
    await expect.poll(() => rows(b!), { timeout: 10_000, interval: 20 }).toBe(1)
    await a!.committed()
    expect(await a!.migrate(w3, 'c')).toBe('c')
    await expect.poll(() => rows(c!), { timeout: 10_000, interval: 20 }).toBe(1)
    c!.send(w3, 'go')
    expect(result(await c!.join(w3))).toBe(1)
    await expect.poll(() => rows(b!), { timeout: 10_000, interval: 20 }).toBe(0)
    expect([rows(a!), rows(c!)]).toEqual([0, 0])
  }, 30_000)

  it('a monitor still hears of the end of a thread that moved to a third weave', async () => {
    const { a, b, c } = await weaves(['a', 'b', 'c'])
    const target = a!.spawn('child', { mode: 'wait' })
    const watcher = c!.spawn('monitorer', { target })
    await expect.poll(() => a!.journal.db.prepare('SELECT count(*) FROM watches WHERE target = ?').pluck().get(target), { timeout: 10_000, interval: 20 }).toBe(1)
    await a!.committed()
    expect(await a!.migrate(target, 'b')).toBe('b')
    // The watch moved with it; the message routed by its id (to a) is forwarded to b.
    await expect.poll(() => b!.journal.db.prepare('SELECT count(*) FROM watches WHERE target = ?').pluck().get(target), { timeout: 10_000, interval: 20 }).toBe(1)
    c!.send(target, { fail: true })
    expect(result(await c!.join(watcher))).toEqual({ exit: target, status: 'failed', error: { name: 'Error', message: 'told to fail' } })
    expect((await b!.join(target)).status).toBe('failed')
  }, 30_000)
})

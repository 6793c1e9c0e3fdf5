/**
 * Moving a thread between weaves (`Weave.migrate`, `raiment migrate`), on a real broker with
 * three weaves on separate journals: a counter on weave a takes numbered messages from a sender
 * on weave c and acknowledges each; half-way through it moves to weave b. Nothing is lost or
 * duplicated and each side sees the other's messages in send order; so too when it moves onto
 * the sender's own weave (src/catch-up.ts). A move to a weave that never
 * joined is a clear error and the thread carries on where it was. A kill on the old home goes
 * after the thread.
 */
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it, vi } from 'vitest'
import { thread, Weave, type AnyThreadType, type ThreadEnd } from 'raiment'
import { AmqpLink } from '../src/amqp/link.js'
import { main } from '../src/cli/main.js'
import { AMQP_URL, brokerUp, CI, freshNamespace, removeNamespace, brokerTests } from './support/broker.js'
import { tempDir } from './support/tmp.js'
import listener from '../threads/listener.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const BIN = join(ROOT, 'bin', 'raiment.js')

declare module 'raiment' {
  interface Libraries {
    progress: { mark(k: number): Promise<void> }
    errand: { run(): Promise<string> }
  }
}

const COUNT = 200
/** The sender waits for an acknowledgement once this many of its messages are unacknowledged. */
const WINDOW = 8

const counter = thread({
  uses: ['mailbox', 'progress'],
  async does(p: { count: number }) {
    const got: number[] = []
    for (let k = 0; k < p.count; k++) {
      const m = await this.mailbox.receive<{ from: string; i: number }>()
      got.push(m.i)
      await this.mailbox.send(m.from, { ack: m.i })
      await this.progress.mark(k)
    }
    return got
  },
})

const sender = thread({
  uses: ['mailbox', 'threads'],
  async does(p: { to: string; count: number }) {
    const self = await this.threads.self()
    const acks: number[] = []
    const ack = async (): Promise<void> => {
      acks.push(((await this.mailbox.receive({ match: { ack: undefined } })) as unknown as { ack: number }).ack)
    }
    for (let i = 0; i < p.count; i++) {
      await this.mailbox.send(p.to, { from: self, i })
      if (i + 1 - acks.length >= WINDOW) await ack()
    }
    while (acks.length < p.count) await ack()
    return acks
  },
})

/** Makes one call of `errand` (which the test answers), then takes one message. */
const worker = thread({
  uses: ['errand', 'mailbox'],
  async does() {
    const done = await this.errand.run()
    return { done, got: await this.mailbox.receive() }
  },
})

/** Spawns a worker and joins it. */
const parent = thread({
  uses: ['threads'],
  async does() {
    const child = await this.threads.spawn('worker', {})
    return { joined: await this.threads.join(child) }
  },
})

const types = { counter, sender, worker, parent } as Record<string, AnyThreadType>

function result(end: ThreadEnd): unknown {
  expect(end.status, JSON.stringify(end)).toBe('done')
  return (end as Extract<ThreadEnd, { status: 'done' }>).result
}

describe('without a broker', () => {
  it('migrate is a clear error and the thread keeps running', async () => {
    const dir = tempDir()
    const weave = await Weave.open({ db: join(dir, 'x.db'), weaveId: 'x', threads: types, ioLibs: false, dumps: false, durability: 'memory', libraries: { progress: { mark: async () => {} }, errand: { run: async () => 'x' } } })
    try {
      const id = weave.spawn('counter', { count: 1 })
      await expect(weave.migrate(id, 'y')).rejects.toMatchObject({ code: 'RAIMENT_NO_BROKER' })
      weave.send(id, { from: 'outside', i: 7 })
      expect(await weave.join(id)).toMatchObject({ status: 'done', result: [7] })
    } finally {
      await weave.close()
    }
  })
})

describe.skipIf(!brokerUp && !CI)('moving a thread to another weave', () => {
  const cleanups = brokerTests()

  /** Weaves joined to a fresh namespace, in this process, each on its own journal. */
  async function weaves(ids: string[], onMark: (weave: string, k: number) => void, work?: (weave: string) => Promise<string>) {
    const dir = tempDir()
    const ns = freshNamespace()
    cleanups.push(() => removeNamespace(ns, ids))
    const out: Record<string, { link: AmqpLink; weave: Weave; db: string }> = {}
    for (const id of ids) {
      const link = await AmqpLink.connect({ url: AMQP_URL, namespace: ns, heartbeatMs: 100, log: () => {} })
      const db = join(dir, `${id}.db`)
      const weave = await Weave.open({
        db,
        weaveId: id,
        threads: types,
        ioLibs: false,
        dumps: false,
        durability: 'memory',
        remote: link,
        libraries: { progress: { mark: async (k: number) => onMark(id, k) }, errand: { run: () => (work ?? (async () => id))(id) } },
      })
      await link.start(weave)
      cleanups.push(async () => {
        await link.close()
        await weave.close()
      })
      out[id] = { link, weave, db }
    }
    return out
  }

  function deadLetters(w: Weave): unknown[] {
    return w.journal.db.prepare('SELECT sender, recipient, body, reason FROM dead_letters').all()
  }

  it('a counter moved half-way through a conversation loses and duplicates nothing, in order', async () => {
    const side: { moving?: Promise<string> } = {}
    let counterId = ''
    const env = await weaves(['a', 'b', 'c'], (w, k) => {
      // Half-way, on a: move the counter while the sender is still sending.
      if (w === 'a' && k === COUNT / 2 && side.moving === undefined) side.moving = env.a!.weave.migrate(counterId, 'b')
    })
    const a = env.a!
    const b = env.b!
    const c = env.c!
    counterId = a.weave.spawn('counter', { count: COUNT })
    await a.weave.committed()
    const senderId = c.weave.spawn('sender', { to: counterId, count: COUNT })

    const sent = result(await c.weave.join(senderId))
    expect(side.moving).toBeDefined()
    expect(await side.moving).toBe('b')
    const expected = Array.from({ length: COUNT }, (_, i) => i)
    expect(sent, 'the acknowledgements the sender got').toEqual(expected)
    // The same id, now run by b, ends there with every message once, in send order.
    expect(result(await b.weave.join(counterId)), 'what the counter took').toEqual(expected)
    expect(await a.weave.join(counterId)).toEqual({ id: counterId, type: 'counter', status: 'moved', to: 'b' })
    expect(a.weave.journal.thread(counterId)?.status).toBe('moved')
    expect(a.weave.journal.db.prepare('SELECT weave FROM forwards WHERE thread = ?').pluck().get(counterId)).toBe('b')
    // Not alive here and never resumed here; a kill here goes after it to b, where it has ended.
    expect(a.weave.journal.threads({ status: ['running', 'pending'] }).map((t) => t.id)).not.toContain(counterId)
    expect(a.weave.kill(counterId)).toBe(true)
    // The journal moved with it: b holds the calls a made before the move.
    const before = a.weave.journal.entries(counterId)
    expect(before.length).toBeGreaterThan(COUNT)
    expect(b.weave.journal.entries(counterId).slice(0, before.length)).toEqual(before)
    for (const w of [a, b, c]) {
      await w.link.outboxEmpty()
      await w.weave.committed()
      expect(deadLetters(w.weave), w.weave.journal.weaveId).toEqual([])
    }
    // A message sent to the old home later (from a, and from c routing by the id) is forwarded
    // to b, where the counter has ended: a dead letter there, and not on a.
    a.weave.send(counterId, { late: 'a' })
    c.weave.send(counterId, { late: 'c' })
    await a.link.outboxEmpty()
    await c.link.outboxEmpty()
    await expect.poll(() => deadLetters(b.weave).length, { timeout: 5_000, interval: 20 }).toBe(2)
    expect(deadLetters(a.weave)).toEqual([])
    expect(b.weave.journal.thread(counterId)?.status).toBe('done')
  }, 60_000)

  it("a counter moved onto its sender's weave takes every message once, in send order", async () => {
    // Before, the sends made on c after the counter arrived there went straight into its inbox,
    // ahead of those sent before and still on their way through a (forwarded to c after).
    for (let round = 0; round < 3; round++) {
      const side: { moving?: Promise<string> } = {}
      let counterId = ''
      const env = await weaves(['a', 'c'], (w, k) => {
        if (w === 'a' && k === COUNT / 2 && side.moving === undefined) side.moving = env.a!.weave.migrate(counterId, 'c')
      })
      const a = env.a!
      const c = env.c!
      counterId = a.weave.spawn('counter', { count: COUNT })
      await a.weave.committed()
      const senderId = c.weave.spawn('sender', { to: counterId, count: COUNT })
      const expected = Array.from({ length: COUNT }, (_, i) => i)
      expect(result(await c.weave.join(senderId)), 'the acknowledgements the sender got').toEqual(expected)
      expect(await side.moving).toBe('c')
      expect(result(await c.weave.join(counterId)), 'what the counter took').toEqual(expected)
      for (const w of [a, c]) {
        await w.link.outboxEmpty()
        await w.weave.committed()
        expect(deadLetters(w.weave), w.weave.journal.weaveId).toEqual([])
      }
      // It caught up: its fence came back, and sends from c go straight to it again.
      await expect.poll(() => c.weave.journal.db.prepare('SELECT count(*) FROM catch_up').pluck().get(), { timeout: 5_000, interval: 20 }).toBe(0)
    }
  }, 90_000)

  /** Weaves a and b, and a worker on a whose errand call the test has not answered yet. */
  async function workerOnA() {
    const work = workCalls()
    const env = await weaves(['a', 'b'], () => {}, work.run)
    const id = env.a!.weave.spawn('worker', {})
    await work.nth(1)
    return { work, a: env.a!, b: env.b!, id }
  }

  /** An `errand` library whose calls the test answers: who was asked, and a way to answer each. */
  function workCalls() {
    const asked: string[] = []
    const answer: Array<(v: string) => void> = []
    let onAsk = (): void => {}
    return {
      asked,
      answer,
      run: (weave: string) =>
        new Promise<string>((resolve) => {
          asked.push(weave)
          answer.push(resolve)
          onAsk()
        }),
      /** Resolves once `n` calls have been made. */
      nth: (n: number) => new Promise<void>((resolve) => (asked.length >= n ? resolve() : (onAsk = () => asked.length >= n && resolve()))),
    }
  }

  it('a call in flight when a move is asked is finished and recorded here, once; the thread stops at its next call', async () => {
    const work = workCalls()
    const env = await weaves(['a', 'b'], () => {}, work.run)
    const a = env.a!
    const b = env.b!
    await expect.poll(() => a.link.live().map((w) => w.id), { timeout: 5_000, interval: 20 }).toContain('b')
    const id = a.weave.spawn('worker', {})
    await work.nth(1)
    const moving = a.weave.migrate(id, 'b')
    // Let the move get as far as it goes without the call's answer (b is known to be live, so
    // finding it takes no broker round trip).
    await new Promise((r) => setImmediate(r))
    expect(a.weave.journal.thread(id)?.status).toBe('running')
    work.answer[0]!('answered on a')
    expect(await moving).toBe('b')
    b.weave.send(id, 'hello')
    expect(result(await b.weave.join(id))).toEqual({ done: 'answered on a', got: 'hello' })
    expect(work.asked, 'the call was made once, on a').toEqual(['a'])
  }, 30_000)

  it('a thread killed on its old home after it moved is killed where it runs', async () => {
    const { work, a, b, id } = await workerOnA()
    work.answer[0]!('answered on a')
    expect(await a.weave.migrate(id, 'b')).toBe('b')
    // Before, it answered "already ended" (the row here says moved) and the thread ran on.
    expect(a.weave.kill(id)).toBe(true)
    expect(await b.weave.join(id)).toMatchObject({ status: 'killed' })
  }, 30_000)

  it('a thread joining its child when the child moves gets the end it comes to on its new weave', async () => {
    const work = workCalls()
    const env = await weaves(['a', 'b'], () => {}, work.run)
    const a = env.a!
    const b = env.b!
    const parentId = a.weave.spawn('parent', {})
    await work.nth(1)
    work.answer[0]!('answered on a')
    // The child waits in receive; its parent, whose spawn committed with it, waits in join here.
    await a.weave.committed()
    await new Promise((r) => setImmediate(r))
    const childId = a.weave.journal.threads({ status: ['running'] }).map((t) => t.id).find((t) => t !== parentId)!
    expect(await a.weave.migrate(childId, 'b')).toBe('b')
    b.weave.send(childId, 'hello')
    const end = { done: 'answered on a', got: 'hello' }
    expect(result(await b.weave.join(childId))).toEqual(end)
    // Before, the parent's join ended ThreadKilled at the move, recorded so, while the child ran on.
    expect(result(await a.weave.join(parentId))).toEqual({ joined: end })
  }, 30_000)

  it('a call still in flight after the wait is made again on the target', async () => {
    const { work, a, b, id } = await workerOnA()
    expect(await a.weave.migrate(id, 'b', { wait: 50 })).toBe('b')
    await work.nth(2)
    expect(work.asked).toEqual(['a', 'b'])
    work.answer[1]!('answered on b')
    // The answer on a, late, is not recorded: the thread has left.
    work.answer[0]!('answered on a')
    b.weave.send(id, 'hello')
    expect(result(await b.weave.join(id))).toEqual({ done: 'answered on b', got: 'hello' })
    await expect(a.weave.migrate(id, 'b', { wait: -1 })).rejects.toMatchObject({ code: 'RAIMENT_INVALID_ARGUMENT' })
  }, 30_000)

  it('a move to a weave that never joined is a clear error, and the thread carries on where it was', async () => {
    let refused: unknown = null
    let counterId = ''
    const side: { asked?: Promise<unknown> } = {}
    const env = await weaves(['a', 'c'], (w, k) => {
      if (w === 'a' && k === 10 && side.asked === undefined) side.asked = env.a!.weave.migrate(counterId, 'nowhere').catch((e: unknown) => (refused = e))
    })
    const a = env.a!
    const c = env.c!
    counterId = a.weave.spawn('counter', { count: 40 })
    await a.weave.committed()
    const senderId = c.weave.spawn('sender', { to: counterId, count: 40 })
    const expected = Array.from({ length: 40 }, (_, i) => i)
    expect(result(await c.weave.join(senderId))).toEqual(expected)
    expect(result(await a.weave.join(counterId))).toEqual(expected)
    expect(side.asked).toBeDefined()
    await side.asked
    expect(refused).toMatchObject({ code: 'RAIMENT_UNKNOWN_WEAVE' })
    expect((refused as Error).message).toMatch(/no weave 'nowhere' has joined .*live weaves: a, c\. .*move the thread to one of the live weaves/)
    expect((refused as Error).message).not.toContain("on: 'any'")
    await expect(a.weave.migrate(counterId, 'c')).rejects.toMatchObject({ code: 'RAIMENT_THREAD_NOT_MOVABLE' })
  }, 60_000)

  it('raiment migrate ID --to WEAVE asks the weave process running on the journal; raiment send and kill to the old home are forwarded', async () => {
    const dir = tempDir()
    const ns = freshNamespace()
    cleanups.push(() => removeNamespace(ns, ['a', 'b', 'c']))
    const link = await AmqpLink.connect({ url: AMQP_URL, namespace: ns, heartbeatMs: 100, log: () => {} })
    const b = await Weave.open({ db: join(dir, 'b.db'), weaveId: 'b', threads: { listener }, ioLibs: false, dumps: false, durability: 'memory', remote: link })
    await link.start(b)
    cleanups.push(async () => {
      await link.close()
      await b.close()
    })
    const aDb = join(dir, 'a.db')
    const child = spawn(process.execPath, ['--conditions=raiment-source', BIN, 'start', '--amqp', AMQP_URL, '--namespace', ns, '--id', 'a', '--db', aDb, '--threads', join(ROOT, 'threads'), '--durability', 'memory', '--heartbeat', '100'], {
      cwd: dir,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    const exited = new Promise((r) => child.on('exit', r))
    cleanups.push(async () => {
      child.kill('SIGTERM')
      await exited
    })
    let output = ''
    await new Promise<void>((resolve, reject) => {
      child.stdout.setEncoding('utf8').on('data', (d: string) => {
        output += d
        if (output.includes(`joined namespace '${ns}'`)) resolve()
      })
      child.stderr.setEncoding('utf8').on('data', (d: string) => (output += d))
      child.on('exit', () => reject(new Error(`weave a exited: ${output}`)))
    })
    const printed: string[] = []
    const out = (s: unknown): boolean => (printed.push(String(s)), true)
    const cli = async (...args: string[]): Promise<number> => {
      const write = vi.spyOn(process.stdout, 'write').mockImplementation(out)
      const warn = vi.spyOn(process.stderr, 'write').mockImplementation(out)
      try {
        return await main([...args, '--db', aDb])
      } finally {
        write.mockRestore()
        warn.mockRestore()
      }
    }
    expect(await cli('spawn', 'listener', '{"name":"ear"}', '--threads', join(ROOT, 'threads')), printed.join('')).toBe(0)
    const id = 'a/1'
    expect(await cli('migrate', id, '--to', 'nowhere'), printed.join('')).toBe(1)
    // The weave's refusal keeps its code, and its advice is for a move, not for a spawn's placement.
    expect(printed.join('')).toMatch(/^raiment: RAIMENT_UNKNOWN_WEAVE: no weave 'nowhere' has joined .*live weaves: a, b\. .*move the thread to one of the live weaves/m)
    expect(printed.join('')).not.toContain("on: 'any'")
    printed.length = 0
    // A placement is no weave id: 'any' could pick this weave, and a move it made could not be
    // told apart from one not made when the request is picked up again after a crash.
    for (const to of ['any', 'local']) {
      expect(await cli('migrate', id, '--to', to), printed.join('')).toBe(1)
      expect(printed.join('')).toMatch(/^raiment: RAIMENT_INVALID_ARGUMENT: migrate: 'to' must be the id of another weave/m)
      printed.length = 0
    }
    await expect(b.migrate('b/1', 'any')).rejects.toMatchObject({ code: 'RAIMENT_INVALID_ARGUMENT' })
    expect(await cli('migrate', 'a/99', '--to', 'b'), printed.join('')).toBe(1)
    expect(printed.join('')).toMatch(/^raiment: RAIMENT_UNKNOWN_THREAD: /m)
    printed.length = 0
    expect(await cli('migrate', id, '--to', 'b'), printed.join('')).toBe(0)
    expect(printed.join('')).toContain(`moved ${id} to weave b`)
    // Here, it is listed as moved with the calls it made here, and shown as moved where.
    printed.length = 0
    expect(await cli('ps', '--json'), printed.join('')).toBe(0)
    const listed = (JSON.parse(printed.join('')) as Array<{ id: string; status: string; calls: number }>).find((t) => t.id === id)
    expect(listed).toMatchObject({ status: 'moved' })
    expect(listed!.calls).toBeGreaterThan(0)
    printed.length = 0
    expect(await cli('show', id), printed.join('')).toBe(0)
    expect(printed.join('').split('\n')[0]).toMatch(new RegExp(`^${id}  listener  moved to weave b  created `))
    printed.length = 0
    // Sent to the old home (a, through its control table), forwarded to b.
    expect(await cli('send', id, '{"hello":"world"}'), printed.join('')).toBe(0)
    expect(result(await b.join(id))).toEqual({ received: { hello: 'world' } })
    expect(b.messages.names()).toEqual({})
    // Killed on the old home (a, through its control table): the kill goes after it to b.
    expect(await cli('spawn', 'listener', '{"name":"ear2"}', '--threads', join(ROOT, 'threads')), printed.join('')).toBe(0)
    expect(await cli('migrate', 'a/2', '--to', 'b'), printed.join('')).toBe(0)
    printed.length = 0
    expect(await cli('kill', 'a/2'), printed.join('')).toBe(0)
    expect(printed.join('')).toContain('kill of a/2 sent to weave b, where it moved (that weave kills it if it still runs)')
    expect(await b.join('a/2')).toMatchObject({ status: 'killed' })

    // With no weave running on a's journal, raiment send to the moved thread puts the message in
    // a's outbox; the next weave to run there sends it on to b (where the thread has ended now:
    // a dead letter there, not on a).
    child.kill('SIGTERM')
    await exited
    printed.length = 0
    expect(await cli('send', id, '{"late":true}'), printed.join('')).toBe(0)
    expect(printed.join('')).toContain(`${id} moved to weave 'b': the message waits in the outbox`)
    // To a thread of b that never ran on a: the same, not the dead letters ("no thread exists").
    const far = b.spawn('listener', {})
    printed.length = 0
    expect(await cli('send', far, '{"far":true}'), printed.join('')).toBe(0)
    expect(printed.join('')).toContain(`${far} is a thread of weave 'b': the message waits in the outbox`)
    // A kill cannot follow it from a journal with no weave: said so with a code, not "had ended".
    printed.length = 0
    expect(await cli('kill', id), printed.join('')).toBe(1)
    expect(printed.join('')).toMatch(new RegExp(`^raiment: RAIMENT_THREAD_MOVED: thread ${id} moved to weave b; no weave runs on `, 'm'))
    const link2 = await AmqpLink.connect({ url: AMQP_URL, namespace: ns, heartbeatMs: 100, log: () => {} })
    const a2 = await Weave.open({ db: aDb, weaveId: 'a', threads: { listener }, ioLibs: false, dumps: false, durability: 'memory', remote: link2 })
    await link2.start(a2)
    cleanups.push(async () => {
      await link2.close()
      await a2.close()
    })
    await expect.poll(() => deadLetters(b).map((d) => (d as { body: string }).body), { timeout: 10_000, interval: 20 }).toEqual(['J{"late":true}'])
    expect(result(await b.join(far))).toEqual({ received: { far: true } })
    expect(deadLetters(a2)).toEqual([])

    // To a weave that joined and is down now: moved (it waits in that weave's queue), and said so.
    const link3 = await AmqpLink.connect({ url: AMQP_URL, namespace: ns, heartbeatMs: 100, log: () => {} })
    const c = await Weave.open({ db: join(dir, 'c.db'), weaveId: 'c', threads: { listener }, ioLibs: false, dumps: false, durability: 'memory', remote: link3 })
    await link3.start(c)
    await expect.poll(() => link2.isLive('c'), { timeout: 10_000, interval: 20 }).toBe(true)
    await link3.close()
    await c.close()
    await expect.poll(() => link2.isLive('c'), { timeout: 10_000, interval: 20 }).toBe(false)
    const waiting = a2.spawn('listener', { name: 'ear4' })
    await a2.committed()
    printed.length = 0
    expect(await cli('migrate', waiting, '--to', 'c'), printed.join('')).toBe(0)
    expect(printed.join('')).toContain(`weave c is not live now: ${waiting} waits in its queue`)
    // And to a live one, nothing of the kind.
    const live = a2.spawn('listener', { name: 'ear5' })
    await a2.committed()
    printed.length = 0
    expect(await cli('migrate', live, '--to', 'b'), printed.join('')).toBe(0)
    expect(printed.join('')).not.toContain('not live now')
  }, 60_000)
})

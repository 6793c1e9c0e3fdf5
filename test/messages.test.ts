import { describe, expect, it } from 'vitest'
import { join } from 'node:path'
import { Weave, thread, TIMED_OUT, type AnyThreadType } from 'raiment'
import { replay } from 'raiment/testing'
import { makeDump } from '../src/dump.js'
import { tempDir } from './support/tmp.js'

declare module 'raiment' {
  interface Libraries {
    gate: { wait(): Promise<string> }
  }
}

async function open(threads: Record<string, AnyThreadType>, extra: Record<string, unknown> = {}) {
  const dir = tempDir()
  return Weave.open({ db: join(dir, 'w.db'), durability: 'memory', threads, dumps: false, ioLibs: false, ...extra })
}

const pong = thread({
  uses: ['mailbox', 'registry'],
  async does() {
    await this.registry.register('pong')
    let n = 0
    for (;;) {
      const m = await this.mailbox.receive<{ ping: number; from: string } | { stop: true }>()
      if ('stop' in m) return n
      n++
      await this.mailbox.send(m.from, { pong: m.ping })
    }
  },
})

const ping = thread({
  uses: ['mailbox', 'registry', 'threads'],
  async does(p: { count: number }) {
    const self = await this.threads.self()
    let where: string | null = null
    while (where === null) {
      where = await this.registry.whereis('pong')
      if (where === null) await this.mailbox.receive({ timeout: 5 })
    }
    const got: number[] = []
    for (let i = 0; i < p.count; i++) {
      await this.mailbox.send('pong', { ping: i, from: self })
      const r = await this.mailbox.receive<{ pong: number }>({ match: { pong: i } })
      got.push(r.pong)
    }
    await this.mailbox.send('pong', { stop: true })
    return got
  },
})

describe('messages between threads', () => {
  it('ping-pong by name, and both replay from their dumps', async () => {
    const weave = await open({ ping, pong })
    const b = weave.spawn('pong')
    const a = weave.spawn('ping', { count: 20 })
    const [ea, eb] = await Promise.all([weave.join(a), weave.join(b)])
    expect(ea).toMatchObject({ status: 'done', result: Array.from({ length: 20 }, (_, i) => i) })
    expect(eb).toMatchObject({ status: 'done', result: 20 })
    const da = makeDump(weave.journal, a)
    const db = makeDump(weave.journal, b)
    await weave.close()
    expect((await replay(ping, da)).result).toEqual(ea.status === 'done' ? ea.result : null)
    expect((await replay(pong, db)).result).toBe(20)
  })

  it('selective receive takes the first match in arrival order and leaves the rest in order', async () => {
    const sink = thread({
      uses: ['mailbox'],
      async does() {
        const first = await this.mailbox.receive({ match: { kind: 'b' } })
        const pred = await this.mailbox.receive<{ kind: string; n: number }>({ match: (m) => m.n > 2 })
        const rest: unknown[] = []
        for (;;) {
          const m = await this.mailbox.receive({ timeout: 0 })
          if (m === TIMED_OUT) break
          rest.push(m)
        }
        return { first, pred, rest }
      },
    })
    const source = thread({
      uses: ['mailbox'],
      async does(p: { to: string }) {
        for (const [kind, n] of [['a', 1], ['a', 2], ['b', 3], ['a', 4], ['b', 5]] as const) await this.mailbox.send(p.to, { kind, n })
      },
    })
    const weave = await open({ sink, source })
    const s = weave.spawn('sink')
    // The sink waits in receive; the messages arrive while it waits.
    await weave.join(weave.spawn('source', { to: s }))
    const end = await weave.join(s)
    expect(end).toMatchObject({
      status: 'done',
      result: { first: { kind: 'b', n: 3 }, pred: { kind: 'a', n: 4 }, rest: [{ kind: 'a', n: 1 }, { kind: 'a', n: 2 }, { kind: 'b', n: 5 }] },
    })
    const d = makeDump(weave.journal, s)
    await weave.close()
    expect((await replay(sink, d)).result).toEqual((end as { result: unknown }).result)
  })

  it('a receive with a timeout gives TIMED_OUT, and replays so', async () => {
    const waiter = thread({
      uses: ['mailbox'],
      async does() {
        const m = await this.mailbox.receive({ timeout: 30 })
        return m === TIMED_OUT ? 'timed out' : m
      },
    })
    const weave = await open({ waiter })
    const id = weave.spawn('waiter')
    expect(await weave.join(id)).toMatchObject({ result: 'timed out' })
    const d = makeDump(weave.journal, id)
    await weave.close()
    expect((await replay(waiter, d)).result).toBe('timed out')
  })

  it('a message to an ended or unknown thread is a dead letter, and send says so', async () => {
    const quick = thread({ uses: [], async does() { return 1 } })
    const sender = thread({
      uses: ['mailbox'],
      async does(p: { to: string }) {
        return [await this.mailbox.send(p.to, 'hi'), await this.mailbox.send('nobody', 'hi'), await this.mailbox.send('x/999', 'hi')]
      },
    })
    const weave = await open({ quick, sender })
    const q = weave.spawn('quick')
    await weave.join(q)
    const end = await weave.join(weave.spawn('sender', { to: q }))
    expect(end).toMatchObject({
      result: [
        { delivered: false, to: q, reason: `thread ${q} has ended` },
        { delivered: false, to: 'nobody', reason: "no thread is registered as 'nobody'" },
        { delivered: false, to: 'x/999', reason: 'no thread x/999 exists' },
      ],
    })
    await weave.committed()
    expect(weave.journal.db.prepare('SELECT recipient FROM dead_letters ORDER BY n').all()).toEqual([{ recipient: q }, { recipient: 'nobody' }, { recipient: 'x/999' }])
    await weave.close()
  })

  it('what a thread never received is dead-lettered when it ends, also after its weave reopened', async () => {
    // Takes only { go }; anything else stays in its inbox until it ends.
    const picky = thread({
      uses: ['mailbox'],
      async does() {
        return this.mailbox.receive({ match: { go: true } })
      },
    })
    // Never looks at its mailbox: waits on a library call, then ends.
    const deaf = thread({
      uses: ['gate'],
      async does() {
        return this.gate.wait()
      },
    })
    const file = join(tempDir(), 'w.db')
    const openAt = (open: boolean) =>
      Weave.open({
        db: file,
        durability: 'memory',
        threads: { picky, deaf },
        dumps: false,
        ioLibs: false,
        libraries: { gate: { wait: () => (open ? Promise.resolve('opened') : new Promise<string>(() => {})) } },
      })
    const left = (w: Weave) => w.journal.db.prepare("SELECT recipient FROM dead_letters WHERE reason = 'the recipient ended before receiving it' ORDER BY n").pluck().all()
    const inbox = (w: Weave) => w.journal.db.prepare('SELECT count(*) FROM inbox').pluck().get()

    const first = await openAt(false)
    const now = first.spawn('picky')
    const later = first.spawn('deaf')
    for (const id of [now, later]) {
      for (const n of [1, 2]) expect(first.send(id, { n })).toMatchObject({ delivered: true })
    }
    first.send(now, { go: true })
    expect(await first.join(now)).toMatchObject({ status: 'done', result: { go: true } })
    await first.committed()
    expect(left(first)).toEqual([now, now])
    await first.close()

    // `later` resumes with two messages in its inbox that this run never loads, and ends.
    const second = await openAt(true)
    expect(await second.join(later)).toMatchObject({ status: 'done', result: 'opened' })
    await second.committed()
    expect(left(second)).toEqual([now, now, later, later])
    expect(inbox(second)).toBe(0)
    await second.close()
  })

  it("a parent that joins its children and ends leaves their exit messages unread: they go with it, not to the dead letters; a message it never read does (a user trial: 60 dead letters for 20 parents)", async () => {
    const kid = thread({ uses: [], async does(p: { n: number }) { return p.n } })
    const joiner = thread({
      uses: ['threads', 'mailbox'],
      async does() {
        const ids = [await this.threads.spawn('kid', { n: 1 }), await this.threads.spawn('kid', { n: 2 })]
        let sum = 0
        for (const id of ids) sum += (await this.threads.join(id)) as number
        // The exit messages are in its inbox by now, beside the one it will not read.
        await this.mailbox.receive({ match: { go: true } })
        return sum
      },
    })
    const weave = await open({ kid, joiner })
    try {
      const id = weave.spawn('joiner')
      weave.send(id, { unread: true })
      weave.send(id, { go: true })
      expect(await weave.join(id)).toMatchObject({ status: 'done', result: 3 })
      await weave.committed()
      const dead = weave.journal.db.prepare('SELECT sender, recipient, body FROM dead_letters ORDER BY n').all()
      expect(dead).toEqual([{ sender: null, recipient: id, body: expect.stringContaining('unread') }])
      expect(weave.journal.db.prepare('SELECT count(*) FROM inbox').pluck().get()).toBe(0)
    } finally {
      await weave.close()
    }
  })

  it('a parent receives its child exit messages; monitors too', async () => {
    const child = thread({ uses: [], async does(p: { fail: boolean }) { if (p.fail) throw Object.assign(new Error('boom'), { code: 'E_BOOM' }); return 'ok' } })
    const parent = thread({
      uses: ['threads', 'mailbox'],
      async does() {
        const a = await this.threads.spawn('child', { fail: false })
        const b = await this.threads.spawn('child', { fail: true })
        const got = [await this.mailbox.receive({ match: { exit: a } }), await this.mailbox.receive({ match: { exit: b } })]
        return got
      },
    })
    const weave = await open({ child, parent })
    const end = await weave.join(weave.spawn('parent'))
    expect(end.status).toBe('done')
    const [ea, eb] = (end as { result: Array<Record<string, unknown>> }).result
    expect(ea).toMatchObject({ status: 'done', result: 'ok' })
    expect(eb).toMatchObject({ status: 'failed', error: { name: 'Error', message: 'boom', code: 'E_BOOM' } })
    await weave.close()
  })

  it('links: a failure ends the linked thread, unless it traps exits', async () => {
    const doomed = thread({ uses: ['mailbox'], async does() { await this.mailbox.receive(); throw new Error('doomed') } })
    const partner = thread({
      uses: ['threads', 'mailbox'],
      async does(p: { trap: boolean; other: string }) {
        if (p.trap) await this.threads.trapExits(true)
        await this.threads.link(p.other)
        await this.mailbox.send(p.other, 'go')
        return await this.mailbox.receive({ match: { exit: p.other } })
      },
    })
    const weave = await open({ doomed, partner })
    const d1 = weave.spawn('doomed')
    const p1 = weave.spawn('partner', { trap: false, other: d1 })
    const e1 = await weave.join(p1)
    expect(e1.status).toBe('failed')
    expect((e1 as unknown as { error: { code: string } }).error.code).toBe('RAIMENT_LINKED_EXIT')
    const d2 = weave.spawn('doomed')
    const p2 = weave.spawn('partner', { trap: true, other: d2 })
    expect(await weave.join(p2)).toMatchObject({ status: 'done', result: { exit: d2, status: 'failed', error: { message: 'doomed' } } })
    await weave.close()
  })

  it('a name belongs to one live thread and is freed when it ends', async () => {
    const holder = thread({ uses: ['registry', 'mailbox'], async does() { await this.registry.register('svc'); await this.mailbox.receive() } })
    const taker = thread({
      uses: ['registry'],
      async does() {
        try {
          await this.registry.register('svc')
          return 'registered'
        } catch (e) {
          return (e as { code: string }).code
        }
      },
    })
    const weave = await open({ holder, taker })
    const h = weave.spawn('holder')
    while (weave.messages.whereis('svc') === null) await weave.committed().then(() => new Promise((r) => setImmediate(r)))
    expect(await weave.join(weave.spawn('taker'))).toMatchObject({ result: 'RAIMENT_NAME_TAKEN' })
    weave.kill(h)
    await weave.join(h)
    expect(await weave.join(weave.spawn('taker'))).toMatchObject({ result: 'registered' })
    await weave.close()
  })
})

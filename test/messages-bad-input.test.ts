/**
 * Bad input to the message libraries is a clear error, and nothing is lost or half-done because
 * of it: an unencodable message (refused before anything is recorded or delivered), a taken or
 * malformed name (NameTaken / TypeError, recorded), joining, killing or monitoring an id no
 * thread has (UnknownThread, recorded and re-thrown on replay), and a message to a weave-qualified
 * id that no thread has (a dead letter, and `send` says so).
 */
import { describe, expect, it } from 'vitest'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { NameTaken, UnknownThread, UnrecordableValue, Weave, thread, TIMED_OUT, type AnyThreadType, type ThreadEnd } from 'raiment'
import { replay } from 'raiment/testing'
import { sendMessage } from '../src/cli/messages.js'
import { makeDump } from '../src/dump.js'
import { decodeValue } from '../src/encoding.js'
import { tempDir } from './support/tmp.js'

async function open(threads: Record<string, AnyThreadType>): Promise<Weave> {
  return Weave.open({ db: join(tempDir(), 'w.db'), durability: 'memory', threads, dumps: false, ioLibs: false })
}

function resultOf(end: ThreadEnd): unknown {
  if (end.status !== 'done') throw new Error(`expected the thread to end done, it ended ${end.status}: ${end.status === 'failed' ? end.error.message : ''}`)
  return end.result
}

/** What a caught error looks like in a thread's result (so live and replay can be compared). */
function caught(e: unknown): { name: string; code: unknown; message: string; path?: unknown } {
  const err = e as Error & { code?: unknown; path?: unknown }
  return { name: err.name, code: err.code, message: err.message, ...(err.path !== undefined ? { path: err.path } : {}) }
}

function rows(weave: Weave, sql: string): unknown[] {
  return weave.journal.db.prepare(sql).all()
}

/** Collects messages until `{ last: true }`. */
const collector = thread({
  uses: ['mailbox'],
  async does() {
    const got: unknown[] = []
    for (;;) {
      const m = await this.mailbox.receive()
      if (m === TIMED_OUT || (typeof m === 'object' && m !== null && 'last' in m)) return got
      got.push(m)
    }
  },
})

class Widget {
  size = 3
}

describe('bad input to messages', () => {
  it('an unencodable message is refused naming the path; nothing is delivered, recorded or lost', async () => {
    const sender = thread({
      uses: ['mailbox'],
      async does(p: { to: string }) {
        const errors: unknown[] = []
        const attempt = async (msg: unknown): Promise<void> => {
          try {
            await this.mailbox.send(p.to, msg)
            errors.push('sent')
          } catch (e) {
            errors.push(caught(e))
          }
        }
        await this.mailbox.send(p.to, { n: 1 })
        await attempt({ n: 2, onReply: () => 'x' })
        await attempt(new Widget())
        await attempt({ n: 3, nested: [{ ok: true }, { tag: Symbol('s') }] })
        await this.mailbox.send(p.to, { n: 4, at: new Date(0), tags: new Set(['a']) })
        await this.mailbox.send(p.to, { last: true })
        return errors
      },
    })
    const weave = await open({ sender, collector })
    const r = weave.spawn('collector')
    const s = weave.spawn('sender', { to: r })
    const errors = resultOf(await weave.join(s)) as Array<ReturnType<typeof caught>>
    expect(errors).toHaveLength(3)
    for (const e of errors) {
      expect(e).toMatchObject({ name: 'UnrecordableValue', code: 'RAIMENT_UNRECORDABLE' })
      expect(e.message).toMatch(/cannot be recorded in the journal\. Pass plain data/)
    }
    expect(errors[0]).toMatchObject({ path: 'args[1].onReply' })
    expect(errors[0]!.message).toMatch(/^args\[1\]\.onReply is a function \(onReply\)/)
    expect(errors[1]).toMatchObject({ path: 'args[1]' })
    expect(errors[1]!.message).toMatch(/an instance of an unregistered class \(Widget\)/)
    expect(errors[2]).toMatchObject({ path: 'args[1].nested[1].tag' })
    expect(errors[2]!.message).toMatch(/a symbol \(Symbol\(s\)\)/)

    // The messages before and after arrive, in order, and intact; the refused ones nowhere.
    expect(resultOf(await weave.join(r))).toEqual([{ n: 1 }, { n: 4, at: new Date(0), tags: new Set(['a']) }])
    await weave.committed()
    expect(rows(weave, 'SELECT * FROM inbox')).toEqual([])
    expect(rows(weave, 'SELECT * FROM dead_letters')).toEqual([])
    // The refused sends are not in the sender's record (they never reached the library).
    const dump = makeDump(weave.journal, s)
    expect(dump.entries.map((e) => e.call)).toEqual(['mailbox.send', 'mailbox.send', 'mailbox.send'])
    await weave.close()

    const again = await replay(sender, dump)
    expect(again.result).toEqual(errors)
  })

  it('from outside the weave, an unencodable message is refused naming the path, and nothing is queued', async () => {
    const weave = await open({ collector })
    const r = weave.spawn('collector')
    const err = (() => {
      try {
        weave.send(r, { n: 1, handler() {} })
        return null
      } catch (e) {
        return e
      }
    })()
    expect(err).toBeInstanceOf(UnrecordableValue)
    expect(err).toMatchObject({ code: 'RAIMENT_UNRECORDABLE', path: 'the message.handler' })
    expect((err as Error).message).toMatch(/^the message\.handler is a function \(handler\)/)
    expect(() => weave.send(r, new Widget())).toThrow(/^the message is an instance of an unregistered class \(Widget\)/)
    weave.send(r, { n: 2 })
    weave.send(r, { last: true })
    expect(resultOf(await weave.join(r))).toEqual([{ n: 2 }])
    await weave.committed()
    expect(rows(weave, 'SELECT * FROM dead_letters')).toEqual([])
    await weave.close()
  })

  it('registering a taken name is NameTaken (recorded, replayed); the holder keeps the name and its messages', async () => {
    const holder = thread({
      uses: ['registry', 'mailbox'],
      async does() {
        await this.registry.register('svc')
        // Registering one's own name again is allowed.
        await this.registry.register('svc')
        return await this.mailbox.receive()
      },
    })
    const taker = thread({
      uses: ['registry', 'mailbox'],
      async does() {
        const out: unknown[] = []
        for (const name of ['svc', '', 'a/b', ' a0', 'a0 ', 'a\u0007b', 'x'.repeat(201), 'x'.repeat(100_000), 'y'.repeat(200)]) {
          try {
            await this.registry.register(name)
            out.push('registered')
          } catch (e) {
            out.push({ ...caught(e), isNameTaken: e instanceof NameTaken })
          }
        }
        out.push(await this.mailbox.send('svc', 'for the holder'))
        return out
      },
    })
    const weave = await open({ holder, taker })
    const h = weave.spawn('holder')
    while (weave.messages.whereis('svc') === null) await weave.committed().then(() => new Promise((r) => setImmediate(r)))
    const t = weave.spawn('taker')
    const out = resultOf(await weave.join(t)) as unknown[]
    expect(out[0]).toEqual({
      name: 'NameTaken',
      code: 'RAIMENT_NAME_TAKEN',
      message: `the name 'svc' belongs to thread ${h} while it lives; pick another name or unregister it there`,
      isNameTaken: true,
    })
    const rule = "registry.register: a name is 1 to 200 characters, without '/' or control characters, and starts and ends with no whitespace; got "
    const refused = (got: string) => ({ name: 'InvalidArgument', code: 'RAIMENT_INVALID_ARGUMENT', message: rule + got })
    expect(out.slice(1, 8)).toMatchObject(['""', '"a/b"', '" a0"', '"a0 "', '"a\\u0007b"', `"${'x'.repeat(40)}"… (201 characters)`, `"${'x'.repeat(40)}"… (100000 characters)`].map(refused))
    expect(out[8]).toBe('registered')
    expect(out[9]).toEqual({ delivered: true, to: h })
    expect(resultOf(await weave.join(h))).toBe('for the holder')
    expect(weave.messages.whereis('svc')).toBeNull()
    await weave.committed()
    // The failed registrations left no name behind.
    expect(rows(weave, 'SELECT * FROM names')).toEqual([])
    const dump = makeDump(weave.journal, t)
    await weave.close()

    // The errors are in the record: replay hands them back, as the same classes.
    expect(dump.entries.filter((e) => !e.ok).map((e) => e.error?.name)).toEqual(['NameTaken', ...Array<string>(7).fill('InvalidArgument')])
    expect((await replay(taker, dump)).result).toEqual(out)
  })

  it('a name registered before the rule (a leading space) holds on resume: the recorded register is replayed, not checked', async () => {
    const holder = thread({
      uses: ['registry', 'mailbox'],
      async does(p: { name: string }) {
        await this.registry.register(p.name)
        return await this.mailbox.receive()
      },
    })
    const db = join(tempDir(), 'w.db')
    const openAt = () => Weave.open({ db, threads: { holder }, dumps: false, ioLibs: false, passivateAfter: false })
    const first = await openAt()
    const id = first.spawn('holder', { name: 'a0' })
    while (first.messages.whereis('a0') === null) await first.committed().then(() => new Promise((r) => setImmediate(r)))
    await first.committed()
    await first.close()
    // As an older Raiment recorded it: the thread registered ' a0'.
    const file = new Database(db)
    let changed = 0
    for (const sql of [`UPDATE journal_main SET key = replace(key, '"a0"', '" a0"')`, `UPDATE journal_tail SET key = replace(key, '"a0"', '" a0"')`, `UPDATE threads SET params = replace(params, '"a0"', '" a0"')`, `UPDATE names SET name = ' a0'`]) {
      changed += file.prepare(sql).run().changes
    }
    file.close()
    expect(changed).toBeGreaterThanOrEqual(3)
    const weave = await openAt()
    try {
      expect(weave.messages.whereis(' a0')).toBe(id)
      expect(weave.send(' a0', 'hi')).toEqual({ delivered: true, to: id })
      expect(await weave.join(id)).toMatchObject({ status: 'done', result: 'hi' })
    } finally {
      await weave.close()
    }
  })

  it('joining, killing or monitoring an id no thread has is UnknownThread, recorded and re-thrown on replay', async () => {
    const joiner = thread({
      uses: ['threads'],
      async does(p: { ids: string[] }) {
        const out: unknown[] = []
        for (const id of p.ids) {
          for (const op of ['join', 'kill', 'monitor'] as const) {
            try {
              await this.threads[op](id)
              out.push(`${op} ${id} succeeded`)
            } catch (e) {
              out.push({ op, ...caught(e), isUnknownThread: e instanceof UnknownThread })
            }
          }
        }
        return out
      },
    })
    const weave = await open({ joiner })
    const ids = [`${weave.journal.weaveId}/424242`, 'elsewhere/1', 'no-slash']
    const j = weave.spawn('joiner', { ids })
    const out = resultOf(await weave.join(j)) as Array<Record<string, unknown>>
    expect(out).toEqual(
      ids.flatMap((id) =>
        ['join', 'kill', 'monitor'].map((op) => ({
          op,
          name: 'UnknownThread',
          code: 'RAIMENT_UNKNOWN_THREAD',
          message: `no thread with id '${id}' in this journal; 'raiment ps' lists them`,
          isUnknownThread: true,
        })),
      ),
    )
    const dump = makeDump(weave.journal, j)
    expect(dump.entries).toHaveLength(9)
    expect(dump.entries.every((e) => !e.ok && e.error?.name === 'UnknownThread')).toBe(true)
    // Nothing was created for the unknown ids.
    expect(weave.journal.threads().map((t) => t.id)).toEqual([j])
    await weave.close()

    const again = await replay(joiner, dump)
    expect(again.result).toEqual(out)
    expect(again.calls.map((c) => c.call)).toEqual(dump.entries.map((e) => e.call))
  })

  it('a thread that does not catch UnknownThread fails with it, and its dump replays to the same failure', async () => {
    const joiner = thread({
      uses: ['threads'],
      async does(p: { id: string }) {
        return await this.threads.join(p.id)
      },
    })
    const weave = await open({ joiner })
    const j = weave.spawn('joiner', { id: 'nowhere/7' })
    const end = await weave.join(j)
    expect(end.status).toBe('failed')
    const error = (end as Extract<ThreadEnd, { status: 'failed' }>).error
    expect(error).toBeInstanceOf(UnknownThread)
    expect(error).toMatchObject({ code: 'RAIMENT_UNKNOWN_THREAD', message: "no thread with id 'nowhere/7' in this journal; 'raiment ps' lists them" })
    const dump = makeDump(weave.journal, j)
    await weave.close()
    const again = await replay(joiner, dump)
    expect(again.status).toBe('failed')
    expect(again.error).toBeInstanceOf(UnknownThread)
    expect(again.error?.message).toBe(error.message)
  })

  it('a message to a weave-qualified id that no thread has goes to the dead letters, and send says so', async () => {
    const sender = thread({
      uses: ['mailbox', 'threads'],
      async does(p: { to: string[] }) {
        const out: unknown[] = []
        for (const to of p.to) out.push(await this.mailbox.send(to, { hello: to, at: new Date(5) }))
        return out
      },
    })
    const weave = await open({ sender })
    const here = `${weave.journal.weaveId}/31337`
    const to = [here, 'other-weave/1', 'other-weave/1']
    const s = weave.spawn('sender', { to })
    const out = resultOf(await weave.join(s))
    expect(out).toEqual([
      { delivered: false, to: here, reason: `no thread ${here} exists` },
      { delivered: false, to: 'other-weave/1', reason: 'no thread other-weave/1 exists' },
      { delivered: false, to: 'other-weave/1', reason: 'no thread other-weave/1 exists' },
    ])
    // And from outside any thread.
    expect(weave.send('other-weave/2', 'from outside')).toEqual({ delivered: false, to: 'other-weave/2', reason: 'no thread other-weave/2 exists' })
    await weave.committed()
    const dead = (rows(weave, 'SELECT sender, recipient, body, reason FROM dead_letters ORDER BY n') as Array<{ sender: string | null; recipient: string; body: string; reason: string }>).map((d) => ({
      ...d,
      body: decodeValue(d.body),
    }))
    expect(dead).toEqual([
      { sender: s, recipient: here, body: { hello: here, at: new Date(5) }, reason: `no thread ${here} exists` },
      { sender: s, recipient: 'other-weave/1', body: { hello: 'other-weave/1', at: new Date(5) }, reason: 'no thread other-weave/1 exists' },
      { sender: s, recipient: 'other-weave/1', body: { hello: 'other-weave/1', at: new Date(5) }, reason: 'no thread other-weave/1 exists' },
      { sender: null, recipient: 'other-weave/2', body: 'from outside', reason: 'no thread other-weave/2 exists' },
    ])
    expect(rows(weave, 'SELECT * FROM inbox')).toEqual([])
    const dump = makeDump(weave.journal, s)
    await weave.close()
    expect((await replay(sender, dump)).result).toEqual(out)
    // With no weave running, from a journal whose weave never ran with a broker: the same.
    expect((await sendMessage(weave.journal.file, 'other-weave/3', 'offline')).result).toEqual({ delivered: false, to: 'other-weave/3', reason: 'no thread other-weave/3 exists' })
  })
})

it('bad arguments to the built-in clock and mailbox are InvalidArgument, with its code (not a TypeError a retry policy would retry)', async () => {
  const t = thread({
    uses: ['clock', 'mailbox'],
    async does() {
      const out: unknown[] = []
      for (const f of [() => this.clock.sleep(-1), () => this.clock.sleepUntil(Number.NaN), () => this.mailbox.send('', 'x'), () => this.mailbox.receive({ timeout: -1 })]) {
        out.push(await f().then(
          () => 'ok',
          (e: Error & { code?: string }) => [e.name, e.code],
        ))
      }
      return out
    },
  })
  const weave = await open({ t })
  const out = resultOf(await weave.join(weave.spawn('t')))
  await weave.close()
  expect(out).toEqual(Array.from({ length: 4 }, () => ['InvalidArgument', 'RAIMENT_INVALID_ARGUMENT']))
})

it('their messages name the method called and show the value as it was: a string quoted, NaN and Infinity as such', async () => {
  const t = thread({
    uses: ['clock', 'mailbox'],
    async does() {
      const out: unknown[] = []
      for (const f of [
        () => this.clock.sleep('100' as never),
        () => this.clock.sleep(Infinity),
        () => this.clock.sleepUntil(Number.NaN),
        () => this.mailbox.receive({ timeout: '5' as never }),
      ]) {
        out.push(await f().then(
          () => 'ok',
          (e: Error) => e.message,
        ))
      }
      return out
    },
  })
  const weave = await open({ t })
  const out = resultOf(await weave.join(weave.spawn('t')))
  await weave.close()
  expect(out).toEqual([
    'clock.sleep expects a finite number of ms >= 0, got "100"',
    'clock.sleep expects a finite number of ms >= 0, got number Infinity',
    'clock.sleepUntil expects a time in ms since the epoch, got number NaN',
    'mailbox.receive: timeout must be a number of ms >= 0, got "5"',
  ])
})

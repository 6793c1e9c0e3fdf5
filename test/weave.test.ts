import { describe, expect, it } from 'vitest'
import { join } from 'node:path'
import { Weave, thread, registerError, ReplayDivergence, type AnyThreadType, type ThreadEnd } from 'raiment'
import { record, replay } from 'raiment/testing'
import { tempDir } from './support/tmp.js'

class PaymentDeclined extends Error {
  readonly code = 'DECLINED'
  constructor(readonly cents: number) {
    super(`card declined for ${cents}`)
    this.name = 'PaymentDeclined'
  }
}
registerError(PaymentDeclined)

declare module 'raiment' {
  interface Libraries {
    work: {
      echo<T>(v: T, delayMs?: number): Promise<T>
      fail(cents: number): Promise<never>
      count(): Promise<number>
    }
  }
}

function workLib() {
  let n = 0
  /**
   * Echoes given a delay, held until three wait; then they finish in the order of their delays,
   * whatever the machine's load, each a few turns of the event loop after the one before (time
   * for the weave to hand its outcome to the thread: outcomes committed together reach it in the
   * order of their calls).
   */
  const held: Array<{ delayMs: number; done: () => void }> = []
  const release = async (): Promise<void> => {
    for (const h of held.splice(0).sort((a, b) => a.delayMs - b.delayMs)) {
      h.done()
      for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r))
    }
  }
  return {
    calls: () => n,
    lib: {
      async echo(v: unknown, delayMs = 0) {
        n++
        if (delayMs > 0) {
          await new Promise<void>((done) => {
            held.push({ delayMs, done })
            if (held.length === 3) void release()
          })
        }
        return v
      },
      async fail(cents: number) {
        n++
        throw new PaymentDeclined(cents)
      },
      async count() {
        return ++n
      },
    },
  }
}

async function open(threads: Record<string, AnyThreadType>, extra: Partial<Parameters<typeof Weave.open>[0]> = {}) {
  const dir = tempDir()
  const w = workLib()
  const weave = await Weave.open({ db: join(dir, 'w.db'), durability: 'memory', threads: threads as never, libraries: { work: w.lib }, dumps: join(dir, 'dumps'), ioLibs: false, ...extra })
  return { weave, dir, calls: w.calls }
}

const raceThread = thread({
  uses: ['work'],
  async does(p: { delays: number[] }) {
    const order: number[] = []
    await Promise.all(p.delays.map((d, i) => this.work.echo(i, d).then((v) => order.push(v))))
    const first = await Promise.race(p.delays.map((d, i) => this.work.echo(`r${i}`, d)))
    return { order, first }
  },
})

describe('a weave', () => {
  it('runs a thread and records every call with its outcome', async () => {
    const { weave } = await open({ race: raceThread })
    const id = weave.spawn('race', { delays: [30, 1, 15] })
    const end = await weave.join(id)
    expect(end).toMatchObject({ status: 'done', result: { order: [1, 2, 0], first: 'r1' } })
    // Three echoes and the race's winner; the two losers finished after the thread had ended,
    // so the thread never saw them and they are not part of its record.
    expect(weave.journal.entries(id)).toHaveLength(4)
    await weave.close()
  })

  it('replays completion order: a dump of a race gives the same winner and arrival order', async () => {
    const { dump, result } = await record(raceThread, { delays: [20, 1, 10] }, { libraries: { work: workLib().lib }, ioLibs: false })
    const run = await replay(raceThread, dump, { ioLibs: false })
    expect(run.result).toEqual(result)
    expect(run.calls.map((c) => c.args[0])).toEqual([0, 1, 2, 'r0', 'r1', 'r2'])
  })

  it('re-throws a recorded error as the same class with its fields, live and on replay', async () => {
    const t = thread({
      uses: ['work'],
      async does() {
        try {
          await this.work.fail(250)
          return 'charged'
        } catch (e) {
          return { isClass: e instanceof PaymentDeclined, code: (e as PaymentDeclined).code, cents: (e as PaymentDeclined).cents, message: (e as Error).message }
        }
      },
    })
    const { dump, result } = await record(t, undefined, { libraries: { work: workLib().lib }, ioLibs: false })
    expect(result).toEqual({ isClass: true, code: 'DECLINED', cents: 250, message: 'card declined for 250' })
    expect((await replay(t, dump, { ioLibs: false })).result).toEqual(result)
  })

  it('finds concurrent identical calls by ordinal', async () => {
    const t = thread({
      uses: ['work'],
      async does() {
        const [a, b, c] = await Promise.all([this.work.count(), this.work.count(), this.work.count()])
        return [a, b, c]
      },
    })
    const { dump, result } = await record(t, undefined, { libraries: { work: workLib().lib }, ioLibs: false })
    expect(result).toEqual([1, 2, 3])
    expect(dump.entries.map((e) => e.ord)).toEqual([0, 1, 2])
    expect((await replay(t, dump, { ioLibs: false })).result).toEqual([1, 2, 3])
  })

  it('refuses an argument it cannot record, naming its path, and records nothing for it', async () => {
    const t = thread({
      uses: ['work'],
      async does() {
        await this.work.echo(1)
        await this.work.echo({ ok: 1, onDone: () => {} })
      },
    })
    const { weave, calls } = await open({ t })
    const end = await weave.join(weave.spawn('t'))
    expect(end.status).toBe('failed')
    const err = (end as Extract<ThreadEnd, { status: 'failed' }>).error as Error & { code: string }
    expect(err.code).toBe('RAIMENT_UNRECORDABLE')
    expect(err.message).toContain('args[0].onDone')
    expect(calls()).toBe(1)
    await weave.close()
  })

  it('writes a dump when a thread fails, and replaying it reproduces the error', async () => {
    const t = thread({
      uses: ['work'],
      async does(p: { cents: number }) {
        await this.work.echo('reserve')
        await this.work.fail(p.cents)
      },
    })
    const { weave } = await open({ t })
    const id = weave.spawn('t', { cents: 99 })
    await weave.join(id)
    await weave.close()
    const run = await replay(t, weave.dumpPath(id)!, { ioLibs: false })
    expect(run.status).toBe('failed')
    expect(run.error).toBeInstanceOf(PaymentDeclined)
    expect(run.error?.message).toBe('card declined for 99')
  })

  it('resumes a running thread from its journal when the weave opens again', async () => {
    const dir = tempDir()
    const db = join(dir, 'w.db')
    let release!: () => void
    const gate = new Promise<void>((r) => (release = r))
    const first = workLib()
    const t = thread({
      uses: ['work'],
      async does() {
        const a = await this.work.count()
        const b = await this.work.echo('gate')
        return [a, b]
      },
    })
    const blocking = { ...first.lib, echo: async (v: unknown) => (await gate, v) }
    const w1 = await Weave.open({ db, threads: { t }, libraries: { work: blocking }, ioLibs: false, dumps: false })
    const id = w1.spawn('t')
    // Wait until the first call is durable and the second is in flight.
    await new Promise<void>((r) => w1.journal.db && setImmediate(function poll() { return w1.journal.entries(id).length ? r() : setImmediate(poll) }))
    await w1.close()
    release()
    const second = workLib()
    const w2 = await Weave.open({ db, threads: { t }, libraries: { work: second.lib }, ioLibs: false, dumps: false })
    expect(w2.resumed).toBe(1)
    expect(await w2.join(id)).toMatchObject({ status: 'done', result: [1, 'gate'] })
    // count() was replayed from the journal: only echo ran live again.
    expect(second.calls()).toBe(1)
    await w2.close()
  })

  it('fails strict replay of a changed thread body with ReplayDivergence naming the call', async () => {
    const before = thread({ uses: ['work'], async does() { return [await this.work.echo('a'), await this.work.echo('b')] } })
    const after = thread({ uses: ['work'], async does() { return [await this.work.echo('a'), await this.work.echo('c')] } })
    const { dump } = await record(before, undefined, { libraries: { work: workLib().lib }, ioLibs: false })
    const err = await replay(after, dump, { ioLibs: false }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ReplayDivergence)
    expect((err as Error).message).toContain('work.echo("c")')
    expect((err as Error).message).toContain('work.echo("b")')
  })
})

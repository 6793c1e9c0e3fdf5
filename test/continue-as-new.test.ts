/**
 * continue-as-new (src/continue/): an actor that continues as new every few messages while
 * another thread streams messages to it receives each once and in order; its id, mailbox, links,
 * monitors and joiners hold across the switches; its record is only the current run's, and a
 * dump of it replays to what the live run did. The SIGKILL cases are in continue-crash.test.ts.
 */
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { callContext, LongRecord, thread, Weave, type AnyThreadType, type WeaveOptions } from 'raiment'
import { replay } from 'raiment/testing'
import { makeDump } from '../src/dump.js'
import { Journals } from '../src/ui/data.js'
import { threadDetail } from '../src/ui/thread-data.js'
import { threadPage } from '../src/ui/thread-page.js'
import { actor, feeder, fxLibrary, logger, ticks, type ActorResult } from './support/continue-plan.js'
import { raiment } from './support/raiment-process.js'
import { tempDir } from './support/tmp.js'

declare module 'raiment' {
  interface Libraries {
    slot: { step(name: string): Promise<string> }
    lingering: { go(): Promise<string> }
  }
}

async function open(extra: Partial<WeaveOptions> & { threads?: Record<string, AnyThreadType> } = {}) {
  const dir = tempDir('raiment-continue-')
  const effects = join(dir, 'effects.db')
  const weave = await Weave.open({
    db: join(dir, 'w.db'),
    durability: 'memory',
    threads: { actor, feeder, logger },
    libraries: { cfx: fxLibrary(effects) },
    ioLibs: false,
    dumps: false,
    ...extra,
  })
  return { weave, dir, effects }
}

/** Receives exit messages: the one it gets first, and how many until `{ stop: true }`. */
const watcher = thread({
  uses: ['mailbox', 'threads'],
  async does(p: { target: string; how: 'monitor' | 'link' }) {
    if (p.how === 'monitor') await this.threads.monitor(p.target)
    else {
      await this.threads.trapExits(true)
      await this.threads.link(p.target)
    }
    const seen: unknown[] = []
    for (;;) {
      const m = await this.mailbox.receive()
      if (typeof m === 'object' && m !== null && 'stop' in m) return seen
      seen.push(m)
    }
  },
})

/** Linked to its target without trapping exits: it ends when the target fails or is killed. */
const linked = thread({
  uses: ['mailbox', 'threads'],
  async does(p: { target: string }) {
    await this.threads.link(p.target)
    return this.mailbox.receive()
  },
})

const stream = (alwaysReplay: boolean) => async () => {
  const { weave, effects } = await open({ threads: { actor, feeder, logger, watcher }, alwaysReplay })
  try {
    const log = weave.spawn('logger')
    const id = weave.spawn('actor', { every: 3, got: [], runs: 0, log, name: 'acc' })
    const joined = weave.join(id)
    const mon = weave.spawn('watcher', { target: id, how: 'monitor' })
    const lnk = weave.spawn('watcher', { target: id, how: 'link' })
    await weave.committed()
    // By its name, which it registers again in each run.
    const feed = weave.spawn('feeder', { to: 'acc', count: 40, join: id })
    const end = await joined
    const result = { got: Array.from({ length: 40 }, (_, i) => i), runs: 13 }
    expect(end).toEqual({ id, type: 'actor', status: 'done', result })
    expect(await weave.join(feed)).toMatchObject({ status: 'done', result })
    const row = weave.journal.thread(id)!
    expect((row as { continued?: number }).continued).toBe(13)
    // The record is the last run's: its name, tick and 'tick' message, then n = 39 (received, seen) and the stop.
    expect(weave.journal.entries(id).map((e) => e[1].slice(0, e[1].indexOf(':')))).toEqual(['registry.register', 'cfx.tick', 'mailbox.send', 'mailbox.take', 'cfx.seen', 'mailbox.take'])
    for (const w of [mon, lnk]) weave.send(w, { stop: true })
    weave.send(log, { stop: true })
    for (const w of [mon, lnk]) expect(await weave.join(w)).toMatchObject({ status: 'done', result: [{ exit: id, status: 'done', result }] })
    // A call with the same key and ordinal in each of the 14 runs: 14 call ids, 14 messages.
    const applied = ticks(effects)
    expect(applied).toHaveLength(14)
    expect(new Set(applied).size).toBe(14)
    expect(await weave.join(log)).toMatchObject({ status: 'done', result: 14 })
  } finally {
    await weave.close()
  }
}

describe('continue-as-new', () => {
  it('an actor continuing every 3 messages gets a stream of 40, sent to the name it registers in each run, once and in order; joiners, monitors and trapping links see only its real end', stream(false))

  it('the same under alwaysReplay (each thread re-run from its record after every outcome)', stream(true))

  it('a kill after it continued reaches a linked thread and a monitor, once', async () => {
    const { weave } = await open({ threads: { actor, linked, watcher } })
    try {
      const id = weave.spawn('actor', { every: 2, got: [], runs: 0 })
      const l = weave.spawn('linked', { target: id })
      const mon = weave.spawn('watcher', { target: id, how: 'monitor' })
      await weave.committed()
      for (let n = 0; n < 7; n++) weave.send(id, { n })
      await until(() => (weave.journal.thread(id) as { continued?: number }).continued === 3)
      expect(weave.isAlive(l)).toBe(true)
      expect(weave.kill(id)).toBe(true)
      const e = await weave.join(l)
      expect(e.status).toBe('failed')
      expect(e.status === 'failed' && e.error.name).toBe('LinkedExit')
      weave.send(mon, { stop: true })
      expect(await weave.join(mon)).toMatchObject({ status: 'done', result: [{ exit: id, status: 'killed' }] })
    } finally {
      await weave.close()
    }
  })

  it('messages that wait in the inbox across a switch and a restart are received once, in order; the dump is the current run and replays as it ran', async () => {
    const dir = tempDir('raiment-continue-')
    const o = { db: join(dir, 'w.db'), durability: 'sync' as const, threads: { actor }, libraries: { cfx: fxLibrary(join(dir, 'fx.db')) }, ioLibs: false as const, dumps: false as const }
    let weave = await Weave.open(o)
    const id = weave.spawn('actor', { every: 4, got: [], runs: 0 })
    await weave.committed()
    // 10 messages at once: the actor takes 4, continues, takes 4, continues, and waits with 2 left.
    for (let n = 0; n < 10; n++) weave.send(id, { n })
    await until(() => (weave.journal.thread(id) as { continued?: number }).continued === 2 && weave.journal.entries(id).length >= 5)
    await weave.close()
    weave = await Weave.open(o)
    try {
      for (let n = 10; n < 13; n++) weave.send(id, { n })
      weave.send(id, { stop: true })
      const end = await weave.join(id)
      const result: ActorResult = { got: Array.from({ length: 13 }, (_, i) => i), runs: 3 }
      expect(end).toMatchObject({ status: 'done', result })
      const dump = makeDump(weave.journal, id)
      expect(dump.thread.continued).toBe(3)
      expect(dump.thread.params).toEqual({ every: 4, got: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], runs: 3 })
      const run = await replay(actor, dump)
      expect(run.status).toBe('done')
      expect(run.result).toEqual(result)
      expect(run.calls.map((c) => c.call)).toEqual(dump.entries.map((e) => e.call))
    } finally {
      await weave.close()
    }
    // The CLI, on the journal the weave closed: show tells the count, dump writes the current run.
    const db = join(dir, 'w.db')
    const [json, text, dumped] = await Promise.all([raiment(dir, 'show', id, '--json', '--db', db), raiment(dir, 'show', id, '--db', db), raiment(dir, 'dump', id, '--db', db, '-o', join(dir, 'actor.json'))])
    expect(json.code, json.stderr).toBe(0)
    expect((JSON.parse(json.stdout) as { thread: unknown }).thread).toMatchObject({ id, status: 'done', continued: 3, calls: 4 })
    expect(text.stdout).toContain('continued as new 3 times')
    expect(dumped.code, dumped.stderr).toBe(0)
    const fromFile = await replay(actor, join(dir, 'actor.json'))
    expect(fromFile).toMatchObject({ status: 'done', result: { runs: 3 } })
    expect(fromFile.dump.thread.continued).toBe(3)
    // The UI's thread page says so beside its calls.
    const detail = threadDetail(new Journals([db]), id, 0)!
    expect(String(threadPage(detail))).toContain('it continued as new 3 times')
  })

  it('a dump of a run that continued replays to status "continued" with the params it continued with', async () => {
    const { weave } = await open()
    try {
      const id = weave.spawn('actor', { every: 2, got: [], runs: 0 })
      await weave.committed()
      weave.send(id, { n: 0 })
      await until(() => weave.journal.entries(id).length === 3)
      // The current run's record, with one more message received, as if it had ended there.
      const dump = makeDump(weave.journal, id)
      dump.entries.push({ ...dump.entries[1]!, seq: 99, ord: 1, value: { n: 1, from: null, message: { n: 1 } } }, { ...dump.entries[2]!, seq: 100, args: [1], ord: 0 })
      const run = await replay(actor, dump, { strict: false })
      expect(run.divergence).toBeUndefined()
      expect(run).toMatchObject({ status: 'continued', continued: { every: 2, got: [0, 1], runs: 1 } })
    } finally {
      await weave.close()
    }
  })

  it("a receive the old run left pending is cancelled at the switch: the message it waited for goes to the new run", async () => {
    const leaves = thread({
      uses: ['mailbox', 'threads'],
      async does(p: { runs: number }) {
        if (p.runs === 0) {
          // Never awaited: cancelled when the thread continues, so it takes nothing.
          void this.mailbox.receive({ match: { x: 1 } })
          return this.threads.continueAsNew({ runs: 1 })
        }
        return this.mailbox.receive({ match: { x: 1 } })
      },
    })
    const { weave } = await open({ threads: { leaves } })
    try {
      const id = weave.spawn('leaves', { runs: 0 })
      await until(() => (weave.journal.thread(id) as { continued?: number } | undefined)?.continued === 1)
      weave.send(id, { x: 1 })
      expect(await weave.join(id)).toMatchObject({ status: 'done', result: { x: 1 } })
    } finally {
      await weave.close()
    }
  })

  it('calls the old run made and did not await, waiting for a slot of their library, still start after the switch', async () => {
    const seen: string[] = []
    let open1: () => void = () => {}
    const slot = {
      default: {
        async step(name: string): Promise<string> {
          seen.push(name)
          // The first holds the only slot until the new run has begun.
          if (name === 'a') await new Promise<void>((resolve) => (open1 = resolve))
          return name
        },
      },
      concurrency: 1,
    }
    const queued = thread({
      uses: ['slot', 'threads'],
      async does(p: { runs: number }) {
        if (p.runs === 0) {
          for (const n of ['a', 'b', 'c']) this.slot.step(n).catch(() => {})
          return this.threads.continueAsNew({ runs: 1 })
        }
        open1()
        return this.slot.step('d')
      },
    })
    const { weave } = await open({ threads: { queued }, libraries: { slot } })
    try {
      const id = weave.spawn('queued', { runs: 0 })
      expect(await weave.join(id)).toMatchObject({ status: 'done', result: 'd' })
      expect(seen).toEqual(['a', 'b', 'c', 'd'])
    } finally {
      await weave.close()
    }
  })

  it('a call the old run made and did not await, in flight at the switch, is abandoned as at an end: not aborted, and its outcome not recorded', async () => {
    let finish: () => void = () => {}
    let signal: AbortSignal | null = null
    const lingering = {
      default: {
        go: () =>
          new Promise<string>((resolve) => {
            signal = callContext().signal
            finish = () => resolve('late')
          }),
      },
    }
    const leaves = thread({
      uses: ['lingering', 'threads', 'mailbox'],
      async does(p: { runs: number }) {
        if (p.runs === 0) {
          this.lingering.go().catch(() => {})
          return this.threads.continueAsNew({ runs: 1 })
        }
        return this.mailbox.receive()
      },
    })
    const { weave } = await open({ threads: { leaves }, libraries: { lingering } })
    try {
      const id = weave.spawn('leaves', { runs: 0 })
      await until(() => (weave.journal.thread(id) as { continued?: number } | undefined)?.continued === 1)
      finish()
      weave.send(id, 'next')
      expect(await weave.join(id)).toMatchObject({ status: 'done', result: 'next' })
      expect(signal!.aborted).toBe(false)
      // The new run's record: its take only.
      expect(weave.journal.entries(id).map((e) => e[1])).toEqual(['mailbox.take:[{}]'])
    } finally {
      await weave.close()
    }
  })

  it('params that cannot be recorded fail the thread with UnrecordableValue; nothing continues', async () => {
    const bad = thread({
      uses: ['threads'],
      async does() {
        return this.threads.continueAsNew({ f: () => 1 })
      },
    })
    const { weave } = await open({ threads: { bad } })
    try {
      const id = weave.spawn('bad')
      const end = await weave.join(id)
      expect(end.status === 'failed' && (end.error as { code?: string }).code).toBe('RAIMENT_UNRECORDABLE')
      expect((weave.journal.thread(id) as { continued?: number }).continued).toBe(0)
    } finally {
      await weave.close()
    }
  })

  it('a thread that catches the continue and returns it as its result ends done, it does not continue', async () => {
    const caught = thread({
      uses: ['threads'],
      async does() {
        try {
          await this.threads.continueAsNew({ again: true })
        } catch (e) {
          return { caught: (e as { code?: string }).code }
        }
        return null
      },
    })
    const { weave } = await open({ threads: { caught } })
    try {
      const id = weave.spawn('caught')
      expect(await weave.join(id)).toEqual({ id, type: 'caught', status: 'done', result: { caught: 'RAIMENT_CONTINUE_AS_NEW' } })
      expect((weave.journal.thread(id) as { continued?: number }).continued).toBe(0)
    } finally {
      await weave.close()
    }
  })

  it('a record that reaches 10,000 entries gets one RAIMENT_LONG_RECORD warning naming continueAsNew, even across a continue', async () => {
    const long = thread({
      uses: ['cfx', 'threads'],
      async does(p: { runs: number }) {
        for (let i = 0; i < 10_050; i++) await this.cfx.seen(i)
        if (p.runs === 0) return this.threads.continueAsNew({ runs: 1 })
        return p.runs
      },
    })
    const warnings: Error[] = []
    const { weave } = await open({ threads: { long }, onWarning: (w) => warnings.push(w) })
    try {
      const id = weave.spawn('long', { runs: 0 })
      expect(await weave.join(id)).toMatchObject({ status: 'done', result: 1 })
      const mine = warnings.filter((w) => w instanceof LongRecord)
      expect(mine).toHaveLength(1)
      expect(mine[0]).toMatchObject({ code: 'RAIMENT_LONG_RECORD', thread: id, entries: 10_000 })
      expect(mine[0]!.message).toContain('this.threads.continueAsNew(')
    } finally {
      await weave.close()
    }
  })
})

/** Resolves once `check()` holds, polling on the event loop (each turn lets commits happen). */
async function until(check: () => boolean, ms = 20_000): Promise<void> {
  const t0 = Date.now()
  while (!check()) {
    if (Date.now() - t0 > ms) throw new Error('timed out waiting')
    await new Promise((r) => setTimeout(r, 5))
  }
}

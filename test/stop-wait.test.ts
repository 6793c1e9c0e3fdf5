/**
 * A stop (`weave.close()`, SIGTERM to `raiment start`) lets the calls in flight finish and be
 * recorded, up to its wait, so that the next start does not make them again (src/weave-stop.ts).
 * The threads make no new call meanwhile; waits (a receive) are not waited for; a call still in
 * flight when the wait runs out is made again at the next start, with the same call id.
 */
import { writeFileSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { callContext, thread, Weave, type AnyThreadType } from 'raiment'
import { raimentProcess, type Running } from './support/raiment-process.js'
import { serve } from './support/io-libs.js'
import { tempDir } from './support/tmp.js'

declare module 'raiment' {
  interface Libraries {
    stopEffect: { make(name: string): Promise<string> }
  }
}

/** The calls the library made, by name and call id, in order. */
const made: Array<{ name: string; id: string }> = []
/** Calls of these names wait until the test lets them answer. */
const gates = new Map<string, { opened: Promise<void>; open: () => void }>()
/** Tells the test each call as it is made. */
let onMade: (name: string) => void = () => {}
/** Calls made after the test began a close (none may be). */
let closing = false
let madeWhileClosing = 0

function gate(name: string): () => void {
  let open = (): void => {}
  const opened = new Promise<void>((r) => (open = r))
  gates.set(name, { opened, open })
  return open
}

const stopEffect = {
  async make(name: string) {
    made.push({ name, id: callContext().callId })
    if (closing) madeWhileClosing++
    onMade(name)
    await gates.get(name)?.opened
    return `${name} done`
  },
}

/** Two effects, one after the other. */
const steps = thread({
  uses: ['stopEffect'],
  async does(p: { tag: string }) {
    return [await this.stopEffect.make(`${p.tag}1`), await this.stopEffect.make(`${p.tag}2`)]
  },
})

/** Waits for a message (a wait, not a call in flight). */
const waiter = thread({
  uses: ['mailbox'],
  async does() {
    return this.mailbox.receive()
  },
})

/** An effect awaited, then one it does not await, then its end. */
const fireAndForget = thread({
  uses: ['stopEffect'],
  async does() {
    const first = await this.stopEffect.make('f1')
    this.stopEffect.make('f2').catch(() => {})
    return first
  },
})

/** Makes effects one after another, for ever. */
const looper = thread({
  uses: ['stopEffect'],
  async does() {
    for (let i = 0; ; i++) await this.stopEffect.make(`l${i}`)
  },
})

const types = { steps, waiter, fireAndForget, looper } as Record<string, AnyThreadType>

function open(db: string): Promise<Weave> {
  return Weave.open({ db, weaveId: 'w', threads: types, libraries: { stopEffect }, ioLibs: false, dumps: false, durability: 'sync' })
}

/** Resolves once the library is asked for `name`. */
function called(name: string): Promise<void> {
  return new Promise((resolve) => {
    const before = onMade
    onMade = (n) => {
      before(n)
      if (n === name) resolve()
    }
  })
}

function reset(): void {
  made.length = 0
  gates.clear()
  onMade = () => {}
}

/** A weave whose thread `a` has its first call in flight, never answered; `left` gets what each stop's wait left. */
async function inFlight(): Promise<{ db: string; weave: Weave; left: number[]; a: string }> {
  reset()
  const db = join(tempDir(), 'w.db')
  const weave = await open(db)
  const left: number[] = []
  weave.on('stop-waited', (w) => left.push(w.left))
  gate('a1')
  const a1 = called('a1')
  const a = weave.spawn('steps', { tag: 'a' })
  await a1
  return { db, weave, left, a }
}

describe('a stop waits for the calls in flight', () => {
  it('lets them finish and be recorded, makes no new call, and does not wait for a receive; the next start does not make them again', async () => {
    reset()
    const db = join(tempDir(), 'w.db')
    const weave = await open(db)
    const waits: unknown[] = []
    weave.on('stop-wait', (w) => waits.push(w))
    weave.on('stop-waited', (w) => waits.push({ threads: w.threads, left: w.left }))
    const openA1 = gate('a1')
    const a1 = called('a1')
    const a = weave.spawn('steps', { tag: 'a' })
    const w = weave.spawn('waiter')
    await a1
    const closing = weave.close({ wait: 10_000 })
    // Spawned during the wait: recorded, and stopped at its first call.
    const b = weave.spawn('steps', { tag: 'b' })
    await weave.committed()
    openA1()
    await closing
    expect(made.map((m) => m.name)).toEqual(['a1'])
    expect(waits).toEqual([
      { threads: 1, wait: 10_000, oldCode: [] },
      { threads: 1, left: 0 },
    ])

    const again = await open(db)
    again.send(w, 'hi')
    expect(await again.join(a)).toMatchObject({ status: 'done', result: ['a1 done', 'a2 done'] })
    expect(await again.join(b)).toMatchObject({ status: 'done', result: ['b1 done', 'b2 done'] })
    expect(await again.join(w)).toMatchObject({ status: 'done', result: 'hi' })
    await again.close()
    // a1 once: its outcome was recorded before the close let the thread go.
    expect(made.map((m) => m.name).sort()).toEqual(['a1', 'a2', 'b1', 'b2'])
  })

  it('gives up on a call still in flight after the wait: it is made again at the next start, with the same call id', async () => {
    const { db, weave, left, a } = await inFlight()
    await weave.close({ wait: 50 })
    expect(left).toEqual([1])
    gates.clear()
    const again = await open(db)
    expect(await again.join(a)).toMatchObject({ status: 'done' })
    await again.close()
    expect(made.map((m) => m.name)).toEqual(['a1', 'a1', 'a2'])
    expect(made[1]!.id).toBe(made[0]!.id)
  })

  it('does not record the end of a thread that asked for a call during the wait: resumed, it makes it', async () => {
    reset()
    const db = join(tempDir(), 'w.db')
    const weave = await open(db)
    const openF1 = gate('f1')
    const f1 = called('f1')
    const id = weave.spawn('fireAndForget')
    await f1
    const closing = weave.close({ wait: 10_000 })
    openF1()
    await closing
    expect(made.map((m) => m.name)).toEqual(['f1'])
    const again = await open(db)
    expect(again.resumed).toBe(1)
    expect(await again.join(id)).toMatchObject({ status: 'done', result: 'f1 done' })
    await again.close()
    expect(made.map((m) => m.name)).toEqual(['f1', 'f2'])
  })

  it('with no wait, no thread makes a call once close() is called (it would be made again at the next start)', async () => {
    reset()
    const weave = await Weave.open({ db: join(tempDir(), 'w.db'), threads: types, libraries: { stopEffect }, ioLibs: false, dumps: false, durability: 'memory' })
    for (let i = 0; i < 20; i++) weave.spawn('looper')
    await new Promise<void>((resolve) => (onMade = () => made.length >= 200 && resolve()))
    closing = true
    madeWhileClosing = 0
    await weave.close()
    closing = false
    expect(madeWhileClosing).toBe(0)
  })

  it("closes the journal when a 'stop-wait' or 'stop-waited' listener throws: their errors come as the weave's 'error'", async () => {
    const { weave, left } = await inFlight()
    const errors: string[] = []
    weave.on('error', (e) => errors.push(e.message))
    weave.on('stop-wait', () => {
      throw new Error('a listener at the start')
    })
    weave.on('stop-waited', () => {
      throw new Error('a listener at the end')
    })
    await weave.close({ wait: 20 })
    expect(weave.journal.db.open).toBe(false)
    expect(left).toEqual([1])
    // Emitted apart, each at a turn of its own, both queued before the close resolved.
    await new Promise((resolve) => setImmediate(resolve))
    expect(errors).toEqual(['a listener at the start', 'a listener at the end'])
  })

  it('is cut short by a second close with a shorter wait', async () => {
    const { weave, left } = await inFlight()
    const first = weave.close({ wait: Infinity })
    const second = weave.close({ wait: 0 })
    await Promise.all([first, second])
    expect(left).toEqual([1])
    expect(weave.journal.db.open).toBe(false)
    await expect((await open(join(tempDir(), 'x.db'))).close({ wait: -1 })).rejects.toMatchObject({ code: 'RAIMENT_INVALID_ARGUMENT' })
  })

  it('refuses options that are not an object or name an unknown option, with a code (close and migrate), and stays open', async () => {
    const weave = await open(join(tempDir(), 'y.db'))
    for (const opts of [null, 5, { wiat: 10 }] as unknown as Array<{ wait?: number }>) {
      await expect(weave.close(opts)).rejects.toMatchObject({ code: 'RAIMENT_INVALID_ARGUMENT', message: expect.stringMatching(/^close\(\): /) as unknown })
      await expect(weave.migrate('x/1', 'other', opts)).rejects.toMatchObject({ code: 'RAIMENT_INVALID_ARGUMENT', message: expect.stringMatching(/^migrate\(\): /) as unknown })
    }
    expect(weave.journal.db.open).toBe(true)
    await weave.close()
  })
})

describe('raiment start, stopped by SIGTERM', () => {
  it('lets a fetch in flight finish and records it: started again, the thread does not send the request twice', async () => {
    const dir = tempDir()
    mkdirSync(join(dir, 'threads'))
    const raimentUrl = new URL('../src/index.ts', import.meta.url).href
    writeFileSync(
      join(dir, 'threads', 'order.ts'),
      `import { thread } from '${raimentUrl}'
export default thread({
  uses: ['fetch', 'clock'],
  async does(p: { url: string }) {
    const r = await this.fetch.post(p.url, { n: 1 }, { as: 'text' })
    await this.clock.now()
    return r.body
  },
})
`,
    )
    let answer: () => void = () => {}
    const answered = new Promise<void>((r) => (answer = r))
    let asked: () => void = () => {}
    const askedOnce = new Promise<void>((r) => (asked = r))
    const server = await serve(async (_req, res) => {
      asked()
      await answered
      res.end('placed')
    })
    // Killed at the end whatever happened, so a failure leaves no weave running.
    const weaves: Running[] = []
    try {
      const url = `${server.url}/orders`
      const db = join(dir, 'w.db')
      const spawned = raimentProcess(dir, ['spawn', '--db', db, 'order', JSON.stringify({ url })])
      expect((await spawned.ended).code).toBe(0)
      const first = raimentProcess(dir, ['start', '--db', db])
      weaves.push(first)
      await Promise.race([askedOnce, first.ended.then((e) => Promise.reject(new Error(e.stdout + e.stderr)))])
      first.child.kill('SIGTERM')
      await first.until((out) => out.includes('stopping: the calls in flight of 1 thread may finish'))
      answer()
      const ended = await first.ended
      expect(ended.code, ended.stderr).toBe(0)
      expect(ended.stdout + ended.stderr).toMatch(/stopping: the calls in flight finished in/)
      const second = raimentProcess(dir, ['start', '--db', db])
      weaves.push(second)
      await second.until((out) => /^done \S+\/1 order → "placed"$/m.test(out))
      second.child.kill('SIGTERM')
      expect((await second.ended).code).toBe(0)
      expect(server.requests).toHaveLength(1)
    } finally {
      for (const w of weaves) w.child.kill('SIGKILL')
      await server.close()
    }
  }, 60_000)
})

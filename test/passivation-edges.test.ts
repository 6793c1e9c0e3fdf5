/**
 * Passivation at its edges (src/passivation/), each found by a review and checked to fail before
 * its fix. Real SQLite files, real weaves opened and closed in turn.
 * - Rows a weave with passivation on left do not keep a thread asleep after a run with it off.
 * - A thread killed by the CLI while no weave ran: a join of it right after the open, and a parent
 *   passivated in a join of it, get its end.
 * - A passivated thread whose type is gone stays asleep; woken, it waits for its type
 *   (src/weave-parked.ts), and a `weave.join` of it with it.
 * - A thread that waited on a library's own wait beside a receive is passivated once that wait
 *   is done (no new wait begins to make it looked at again).
 * - A passivated thread holds no message in memory (what is sent to it while it sleeps) once
 *   their rows are committed, and takes each once, in order (what its receive left unmatched:
 *   test/passivation-filter.test.ts).
 * - A message sent by a 'thread-passivated' listener to the thread wakes it.
 * - A thread looked at again later (a library's own wait) holds up no other thread's passivation.
 */
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { callContext, thread, TIMED_OUT, Weave, type WeaveOptions } from 'raiment'
import { killThread } from '../src/cli/weave-commands.js'
import { passivatedOnce } from './support/passivated.js'
import { tempDir } from './support/tmp.js'
import { receiveOne } from './support/receive-one.js'

const sleepy = thread({
  uses: ['mailbox', 'clock'],
  async does() {
    const m = await this.mailbox.receive()
    await this.clock.sleep(200)
    return { got: m }
  },
})

const waiter = receiveOne

const parent = thread({
  uses: ['threads'],
  async does() {
    const c = await this.threads.spawn('waiter')
    try {
      return { joined: await this.threads.join(c) }
    } catch (e) {
      return { joinThrew: (e as Error).name }
    }
  },
})

declare module 'raiment' {
  interface Libraries {
    custom: { wait(ms: number): Promise<void> }
  }
}

/** A library's own wait (it registers onAbort), which no passivated row can say. */
const custom = {
  wait(ms: number): Promise<void> {
    const ctx = callContext()
    return new Promise<void>((res, rej) => {
      const tm = setTimeout(res, ms)
      ctx.onAbort((e) => {
        clearTimeout(tm)
        rej(e)
      })
    })
  },
}

const both = thread({
  uses: ['custom', 'mailbox'],
  async does() {
    const w = this.custom.wait(100)
    const r = this.mailbox.receive()
    await w
    return await r
  },
})

/** Sleeps, then takes `n` messages: what was sent while it slept, in order. */
const napper = thread({
  uses: ['clock', 'mailbox'],
  async does(p: { ms: number; n: number }) {
    await this.clock.sleep(p.ms)
    const got: unknown[] = []
    for (let i = 0; i < p.n; i++) got.push(await this.mailbox.receive())
    return got
  },
})

/** A library's own wait only: passivation looks at it again later, not at its every check. */
const libWait = thread({
  uses: ['custom'],
  async does() {
    await this.custom.wait(5_000)
    return 'waited'
  },
})

/** Takes a message, or gives up after `ms`. */
const timed = thread({
  uses: ['mailbox'],
  async does(p: { ms: number }) {
    const m = await this.mailbox.receive({ timeout: p.ms })
    return m === TIMED_OUT ? 'timed out' : m
  },
})

const types = { sleepy, waiter, parent, both, napper, libWait, timed }

function open(file: string, o: Partial<WeaveOptions> = {}): Promise<Weave> {
  return Weave.open({ db: file, durability: 'memory', threads: types, libraries: { custom }, ioLibs: false, dumps: false, passivateAfter: 0, ...o })
}

/** Runs `fn` on a weave of a fresh journal (passivating at once), closed after. */
async function inWeave(fn: (w: Weave) => Promise<void>): Promise<void> {
  const w = await open(join(tempDir('raiment-passivate-edge-'), 'w.db'))
  try {
    await fn(w)
  } finally {
    await w.close()
  }
}

const rows = (w: Weave): unknown[] => w.journal.db.prepare('SELECT thread FROM passivated').pluck().all()

describe('passivation at its edges', () => {
  it('a run with passivation off clears the rows, so a thread that went on is resumed by the next run with it on', async () => {
    const file = join(tempDir('raiment-passivate-edge-'), 'w.db')
    const w1 = await open(file)
    const id = w1.spawn('sleepy')
    await passivatedOnce(w1, [id])
    await w1.close()

    const w2 = await open(file, { passivateAfter: false })
    expect(w2.resumed).toBe(1)
    w2.send(id, 'hello')
    // It takes the message and sleeps; the weave closes during the sleep.
    await expect.poll(() => w2.journal.entries(id).length, { interval: 5 }).toBeGreaterThanOrEqual(1)
    await w2.close()

    const w3 = await open(file, { passivateAfter: 30_000 })
    try {
      expect(rows(w3)).toEqual([])
      expect(w3.resumed).toBe(1)
      expect(await w3.join(id)).toMatchObject({ status: 'done', result: { got: 'hello' } })
    } finally {
      await w3.close()
    }
  })

  it('a thread killed by the CLI while no weave ran: a join right after the open, and its passivated parent, get its end', async () => {
    const file = join(tempDir('raiment-passivate-edge-'), 'w.db')
    const w1 = await open(file)
    const seen: string[] = []
    const two = new Promise<void>((res) => w1.on('thread-passivated', (e) => seen.push(e.id) === 2 && res()))
    const p = w1.spawn('parent')
    await two
    const c = seen.find((x) => x !== p)!
    await w1.close()
    expect(await killThread(file, c)).toMatchObject({ killed: true })

    const w2 = await open(file)
    try {
      expect(await w2.join(c)).toMatchObject({ status: 'killed' })
      expect(await w2.join(p)).toMatchObject({ status: 'done', result: { joinThrew: 'ThreadKilled' } })
      expect(rows(w2)).toEqual([])
    } finally {
      await w2.close()
    }
  })

  it('a passivated thread whose type is gone stays asleep at open; woken, it waits for its type, its joiner with it; a kill ends it and tells the joiner', async () => {
    const file = join(tempDir('raiment-passivate-edge-'), 'w.db')
    const w1 = await open(file)
    const id = w1.spawn('waiter')
    await passivatedOnce(w1, [id])
    await w1.close()
    const { waiter: _gone, ...rest } = types
    const warnings: Error[] = []
    const w2 = await Weave.open({ db: file, durability: 'memory', threads: rest, libraries: { custom }, ioLibs: false, dumps: false, passivateAfter: 0, onWarning: (w) => warnings.push(w) })
    try {
      expect(w2.passivated).toBe(1)
      const end = w2.join(id)
      // A message wakes it: it waits for its type, not run, and says so once.
      w2.send(id, 'hello')
      await w2.committed()
      expect(warnings.map((w) => (w as { code?: string }).code)).toEqual(['RAIMENT_THREADS_WAIT_FOR_TYPE'])
      expect(w2.passivated).toBe(0)
      expect(w2.journal.thread(id)?.status).toBe('running')
      expect(w2.kill(id)).toBe(true)
      expect(await end).toMatchObject({ status: 'killed' })
    } finally {
      await w2.close()
    }
  })

  it('a passivated thread whose type is gone stays asleep at open, its passivated parent joining it; a weave with the type runs both on', async () => {
    const file = join(tempDir('raiment-passivate-edge-'), 'w.db')
    const w1 = await open(file)
    const p = w1.spawn('parent')
    // Both asleep: the parent in its join, the child in its receive.
    const asleep = new Set<string>()
    await new Promise<void>((res) => w1.on('thread-passivated', (e) => asleep.add(e.id).size === 2 && res()))
    await w1.close()
    const { waiter: _gone, ...rest } = types
    const w2 = await Weave.open({ db: file, durability: 'memory', threads: rest, libraries: { custom }, ioLibs: false, dumps: false, passivateAfter: 0 })
    expect(w2.passivated).toBe(2)
    await w2.close()
    const w3 = await open(file)
    try {
      const child = [...asleep].find((id) => id !== p)!
      w3.send(child, 'hi')
      expect(await w3.join(p)).toMatchObject({ status: 'done', result: { joined: 'hi' } })
    } finally {
      await w3.close()
    }
  })

  it('messages sent to a passivated sleeper are not held in memory, and reach it in order when it wakes', async () => {
    await inWeave(async (w) => {
    const id = w.spawn('napper', { ms: 500, n: 50 })
    await passivatedOnce(w, [id])
    for (let i = 0; i < 50; i++) w.send(id, i)
    await w.committed()
    expect(w.messages.inboxes.held(id)).toBe(0)
    expect(await w.join(id)).toMatchObject({ status: 'done', result: Array.from({ length: 50 }, (_, i) => i) })
    })
  })

  it("a message sent by a 'thread-passivated' listener wakes the thread it was sent to", async () => {
    await inWeave(async (w) => {
      // Before, the event came before the thread's row was written: the message went into the
      // inbox, woke nothing, and the thread slept on with it (for ever, as it has no timeout).
      w.once('thread-passivated', ({ id }) => w.send(id, 'hello'))
      const id = w.spawn('waiter')
      expect(await w.join(id)).toMatchObject({ status: 'done', result: 'hello' })
    })
  }, 10_000)

  it('a thread looked at again later (a library wait) does not hold up the passivation of threads that wait after it', async () => {
    await inWeave(async (w) => {
      const a = w.spawn('libWait')
      await w.committed()
      // Its first look (a timer due at once) finds a wait no row can say: it is queued for later.
      await new Promise((r) => setTimeout(r, 5))
      const c = w.spawn('timed', { ms: 700 })
      const first = await new Promise<string>((res) => {
        w.on('thread-passivated', (e) => e.id === c && res('passivated'))
        w.on('thread-end', (e) => e.id === c && res('ended'))
      })
      // Before, it sat in one queue behind the library wait's next look (1 s on): its receive
      // timed out in memory first.
      expect(first).toBe('passivated')
      expect(await w.join(c)).toMatchObject({ status: 'done', result: 'timed out' })
      expect(w.kill(a)).toBe(true)
    })
  })

  it('a thread that waited on a library wait beside a receive is passivated once that wait is done', async () => {
    await inWeave(async (w) => {
    const id = w.spawn('both')
    await passivatedOnce(w, [id])
    expect(w.running).toBe(0)
    w.send(id, 'late')
    expect(await w.join(id)).toMatchObject({ status: 'done', result: 'late' })
    })
  })
})

/**
 * Time skipping (src/time/): a weave's threads see the time of its clock (`Weave.open({ clock })`).
 * Under `record(..., { clock: 'skip' })` time jumps to the next timer whenever every thread only
 * waits, so a thread that sleeps for days is recorded in well under a second of real time; a test
 * clock given to a weave moves when the test advances it. Each recording's dump replays to the
 * result of the live run. Real SQLite files in temp dirs; no sleeps for synchronisation.
 */
import { join } from 'node:path'
import { beforeAll, describe, expect, test } from 'vitest'
import { ClockInUse, InvalidArgument, makeDump, thread, TIMED_OUT, Weave } from 'raiment'
import { record, replay, testClock } from 'raiment/testing'
import { tempDir } from './support/tmp.js'

declare module 'raiment' {
  interface Libraries {
    skipFlaky: { charge(): Promise<string> }
    skipSlow: { work(ms: number): Promise<string> }
  }
}

const HOUR = 3_600_000
const DAY = 24 * HOUR
const START = Date.UTC(2026, 0, 1)

const sleeper = thread({
  uses: ['clock'],
  async does() {
    const t0 = await this.clock.now()
    await this.clock.sleep(HOUR)
    const t1 = await this.clock.now()
    await this.clock.sleep(2 * DAY)
    const t2 = await this.clock.now()
    return { t0, t1, t2 }
  },
})

const waiter = thread({
  uses: ['mailbox', 'clock'],
  async does() {
    const t0 = await this.clock.now()
    const got = await this.mailbox.receive<string>({ timeout: 10 * 60_000 })
    return { got: got === TIMED_OUT ? 'timed out' : got, waited: (await this.clock.now()) - t0 }
  },
})

/** As `waiter`, with a timeout of 2 hours. */
const waiterLong = thread({
  uses: ['mailbox', 'clock'],
  async does() {
    const t0 = await this.clock.now()
    const got = await this.mailbox.receive<string>({ timeout: 2 * HOUR })
    return { got: got === TIMED_OUT ? 'timed out' : got, waited: (await this.clock.now()) - t0 }
  },
})

describe('record() with a clock that skips', () => {
  // The first recording of a process loads the libraries: the real time measured below is the run's alone.
  beforeAll(async () => {
    await record(sleeper, undefined, { clock: 'skip' })
  })

  test('a thread sleeping 1 hour then 2 days records in well under a second, at the times it slept to', async () => {
    const real = performance.now()
    const { dump, result, end } = await record(sleeper, undefined, { clock: testClock(START) })
    expect(performance.now() - real).toBeLessThan(1000)
    expect(end.status).toBe('done')
    expect(result).toEqual({ t0: START, t1: START + HOUR, t2: START + HOUR + 2 * DAY })
    const sleeps = dump.entries.filter((e) => e.call === 'clock.sleepUntil').map((e) => e.args)
    expect(sleeps).toEqual([[START + HOUR], [START + HOUR + 2 * DAY]])
    expect((await replay(sleeper, dump)).result).toEqual(result)
  })

  test('a test clock used by one recording after another goes on from where the last left it', async () => {
    const clock = testClock(START)
    const first = await record(sleeper, undefined, { clock })
    const second = await record(sleeper, undefined, { clock })
    expect(second.result).toEqual({ t0: first.result!.t2, t1: first.result!.t2 + HOUR, t2: first.result!.t2 + HOUR + 2 * DAY })
    expect(clock.pending).toBe(0)
  })

  test("'skip' starts a test clock at the real time", async () => {
    const before = Date.now()
    const { result } = await record(sleeper, undefined, { clock: 'skip' })
    expect(result!.t0).toBeGreaterThanOrEqual(before)
    expect(result!.t2 - result!.t0).toBe(HOUR + 2 * DAY)
  })

  test('a receive with a 10-minute timeout times out, 10 minutes later', async () => {
    const { dump, result } = await record(waiter, undefined, { clock: testClock(START) })
    expect(result).toEqual({ got: 'timed out', waited: 10 * 60_000 })
    expect((await replay(waiter, dump)).result).toEqual(result)
  })

  test('a message that comes first is taken, with no time skipped', async () => {
    const { dump, result } = await record(waiter, undefined, { clock: testClock(START), messages: ['hi'] })
    expect(result).toEqual({ got: 'hi', waited: 0 })
    expect((await replay(waiter, dump)).result).toEqual(result)
  })

  test('a retry with a long back-off waits it out on the test clock', async () => {
    let attempts = 0
    const skipFlaky = {
      async charge(): Promise<string> {
        if (++attempts < 3) throw Object.assign(new Error('down'), { code: 'unavailable' })
        return 'charged'
      },
    }
    const billing = thread({
      uses: ['skipFlaky', 'clock'],
      retry: { skipFlaky: { attempts: 3, initialInterval: HOUR, backoffCoefficient: 2, maximumInterval: DAY, jitter: 0 } },
      async does() {
        const t0 = await this.clock.now()
        const r = await this.skipFlaky.charge()
        return { r, after: (await this.clock.now()) - t0 }
      },
    })
    const real = performance.now()
    const { dump, result } = await record(billing, undefined, { clock: testClock(START), libraries: { skipFlaky } })
    expect(performance.now() - real).toBeLessThan(1000)
    // Waits of 1 h, then 2 h.
    expect(result).toEqual({ r: 'charged', after: 3 * HOUR })
    expect(attempts).toBe(3)
    expect((await replay(billing, dump, { libraries: { skipFlaky } })).result).toEqual(result)
  })

  test('a parent joining a child that sleeps a day: time skips while both only wait', async () => {
    const parent = thread({
      uses: ['threads', 'clock'],
      async does() {
        const t0 = await this.clock.now()
        const child = await this.threads.spawn('skip-child', undefined)
        const result = await this.threads.join(child)
        return { child: result, waited: (await this.clock.now()) - t0 }
      },
    })
    const child = thread({
      uses: ['clock'],
      async does() {
        await this.clock.sleep(DAY)
        return 'slept'
      },
    })
    const { dump, result } = await record(parent, undefined, { clock: testClock(START), threads: { 'skip-child': child } })
    expect(result).toEqual({ child: 'slept', waited: DAY })
    expect((await replay(parent, dump)).result).toEqual(result)
  })

  test('time runs at the real speed while a thread is in a library call: a sleep raced against a slow call ends first, as live; a long one does not', async () => {
    // A call that answers after `ms` of real time.
    const skipSlow = {
      async work(ms: number): Promise<string> {
        await new Promise((r) => setTimeout(r, ms))
        return 'worked'
      },
    }
    const racer = thread({
      uses: ['clock', 'skipSlow'],
      async does(p: { call: number; sleep: number }) {
        const t0 = await this.clock.now()
        const winner = await Promise.race([this.skipSlow.work(p.call).then(() => 'call'), this.clock.sleep(p.sleep).then(() => 'sleep')])
        return { winner, during: (await this.clock.now()) - t0 }
      },
    })
    const fast = await record(racer, { call: 300, sleep: 50 }, { clock: testClock(START), libraries: { skipSlow } })
    expect(fast.result).toMatchObject({ winner: 'sleep' })
    expect(fast.result!.during).toBeGreaterThanOrEqual(50)
    expect((await replay(racer, fast.dump, { libraries: { skipSlow } })).result).toEqual(fast.result)
    const slow = await record(racer, { call: 30, sleep: HOUR }, { clock: testClock(START), libraries: { skipSlow } })
    expect(slow.result).toMatchObject({ winner: 'call' })
    expect(slow.result!.during).toBeGreaterThan(20)
    expect(slow.result!.during).toBeLessThan(HOUR)
    expect((await replay(racer, slow.dump, { libraries: { skipSlow } })).result).toEqual(slow.result)
  })

  test('a message one thread sends before it sleeps reaches the other before its receive times out', async () => {
    const sender = thread({
      uses: ['threads', 'mailbox', 'clock'],
      async does() {
        const to = await this.threads.spawn('skip-waiter', undefined)
        await this.clock.sleep(HOUR)
        await this.mailbox.send(to, 'ping')
        await this.clock.sleep(HOUR)
        return this.threads.join(to)
      },
    })
    const { dump, result } = await record(sender, undefined, { clock: testClock(START), threads: { 'skip-waiter': waiterLong } })
    expect(result).toEqual({ got: 'ping', waited: HOUR })
    expect((await replay(sender, dump)).result).toEqual(result)
  })

  test('a thread left waiting for a message with no timer ends the recording as waiting, as on the real clock', async () => {
    const forever = thread({
      uses: ['mailbox', 'clock'],
      async does() {
        await this.clock.sleep(HOUR)
        return this.mailbox.receive()
      },
    })
    const { end } = await record(forever, undefined, { clock: testClock(START) })
    expect(end).toMatchObject({ status: 'waiting', for: 'a message' })
  })

  test('a receive with timeout Infinity waits for a message, as one with none: time does not jump to Infinity', async () => {
    const patient = thread({
      uses: ['mailbox'],
      async does() {
        return this.mailbox.receive({ timeout: Number.POSITIVE_INFINITY })
      },
    })
    const clock = testClock(START)
    const { end } = await record(patient, undefined, { clock })
    expect(end).toMatchObject({ status: 'waiting', for: 'a message' })
    expect(clock.now()).toBe(START)
  })

  test("a bad 'clock' is refused", async () => {
    await expect(record(sleeper, undefined, { clock: 'fast' as never })).rejects.toMatchObject({ code: 'RAIMENT_INVALID_ARGUMENT', message: expect.stringContaining("'clock' must be 'real', 'skip' or a test clock") })
  })
})

describe('a weave on a test clock moved by hand', () => {
  test('advance fires the sleeps due by then, in order, each at its time; a sleep made meanwhile fires too', async () => {
    const clock = testClock(START)
    const db = join(tempDir('raiment-clock-'), 'w.db')
    const weave = await Weave.open({ db, clock, durability: 'memory', threads: { sleeper }, ioLibs: false, dumps: false })
    try {
      const id = weave.spawn('sleeper', undefined)
      await clock.advance(HOUR - 1)
      expect(weave.journal.thread(id)!.status).toBe('running')
      // The first sleep ends, the second starts at START + HOUR and is not due by the end.
      await clock.advance(1)
      expect(clock.now()).toBe(START + HOUR)
      expect(weave.journal.thread(id)!.status).toBe('running')
      expect(clock.pending).toBe(1)
      await clock.advance(3 * DAY)
      expect(clock.now()).toBe(START + HOUR + 3 * DAY)
      const end = await weave.join(id)
      expect(end).toMatchObject({ status: 'done', result: { t0: START, t1: START + HOUR, t2: START + HOUR + 2 * DAY } })
      expect((await replay(sleeper, makeDump(weave.journal, id))).result).toEqual((end as { result: unknown }).result)
    } finally {
      await weave.close()
    }
  })

  test('a thread passivated while it sleeps is woken when the test clock reaches its due time', async () => {
    // Years ahead of the real time: a due time left to a real timer would never come in the test.
    const clock = testClock(Date.UTC(2036, 0, 1))
    const t0 = clock.now()
    const weave = await Weave.open({ db: join(tempDir('raiment-clock-'), 'w.db'), clock, durability: 'memory', threads: { sleeper }, ioLibs: false, dumps: false, passivateAfter: 0 })
    try {
      const passivated = new Promise<void>((resolve) => weave.once('thread-passivated', () => resolve()))
      const id = weave.spawn('sleeper', undefined)
      await passivated
      expect(weave.passivated).toBe(1)
      await clock.advance(HOUR + 2 * DAY)
      expect(await weave.join(id)).toMatchObject({ status: 'done', result: { t0, t1: t0 + HOUR, t2: t0 + HOUR + 2 * DAY } })
    } finally {
      await weave.close()
    }
  })

  test('a weave reopened on the clock goes on where it was; the clock serves one open weave at a time', async () => {
    const clock = testClock(START)
    const dir = tempDir('raiment-clock-')
    const open = (file: string): Promise<Weave> => Weave.open({ db: join(dir, file), clock, durability: 'sync', threads: { sleeper }, ioLibs: false, dumps: false })
    const first = await open('w.db')
    const id = first.spawn('sleeper', undefined)
    await clock.advance(HOUR + 1)
    await expect(open('other.db')).rejects.toBeInstanceOf(ClockInUse)
    await expect(open('other.db')).rejects.toMatchObject({ code: 'RAIMENT_CLOCK_IN_USE' })
    await first.close()
    const second = await open('w.db')
    try {
      await clock.advance(2 * DAY)
      expect(await second.join(id)).toMatchObject({ status: 'done', result: { t0: START, t1: START + HOUR, t2: START + HOUR + 2 * DAY } })
    } finally {
      await second.close()
    }
  })

  test('bad input is refused at the door', async () => {
    const clock = testClock(START)
    await expect(clock.advance(-1)).rejects.toBeInstanceOf(InvalidArgument)
    await expect(clock.advance(Number.NaN)).rejects.toMatchObject({ code: 'RAIMENT_INVALID_ARGUMENT', message: expect.stringContaining('got NaN') })
    expect(() => testClock(Number.POSITIVE_INFINITY)).toThrow(InvalidArgument)
    await expect(Weave.open({ db: join(tempDir('raiment-clock-'), 'w.db'), clock: { now: () => 0 } as never })).rejects.toMatchObject({ code: 'RAIMENT_INVALID_ARGUMENT', message: expect.stringContaining('clock must be a clock') })
    await expect(Weave.open({ db: join(tempDir('raiment-clock-'), 'w.db'), clock, scheduleClock: testClock() })).rejects.toMatchObject({ code: 'RAIMENT_INVALID_ARGUMENT' })
  })
})

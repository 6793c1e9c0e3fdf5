/**
 * A clock for tests (`testClock()` of raiment/testing): its time moves only when told, by
 * `advance(ms)` or by `record()` skipping to the next timer. Timers fire in the order of their
 * times (those of one time in the order they were set), each at its own time: a thread that
 * sleeps 1 h then 2 days sees `clock.now()` move by exactly that.
 *
 * Invariants:
 * - Before each timer fires, and before `advance` returns, the weave using the clock is let run
 *   until it is quiet (src/time/attach.ts): what a fired timer released has run, and a timer it
 *   set meanwhile (a thread's next sleep) fires in the same `advance` when due by its end.
 * - One open weave uses a clock at a time (ClockInUse); the clock lets go of it when it closes,
 *   so a weave reopened on the same clock (a restart) goes on at the time it left.
 * - A timer set for a time already reached fires at the next turn of the event loop, as a real
 *   timer would; time itself never moves back.
 * - Skipping (record's): while a thread is in a library call (not a wait, not journal-only: a
 *   fetch, a query), time runs at the real speed, and the timers it reaches fire, so a sleep
 *   raced against a slow call ends as it would live (a user trial's race was won by the fetch on
 *   a clock frozen meanwhile), and a timeout of a call that hangs fires. Between such calls time
 *   stands until it jumps (commits, replays and the threads' own work take none of it), so a
 *   thread that only sleeps and messages sees exact times. `advance` waits for such a call with
 *   time standing, as told.
 */
import { ClockInUse, InvalidArgument } from '../errors.js'
import { valueText } from '../value-text.js'
import { ATTACH, type AttachableClock, type AttachedWeave } from './attach.js'

interface Timer {
  readonly at: number
  readonly seq: number
  readonly fire: () => void
}

/** @internal For record(): settle, then fire the next timer (time jumps to it); false when there is none. */
export const SKIP: unique symbol = Symbol('raiment.clock.skip')
/** @internal For record(): resolves when a timer is set (at once if one is pending). */
export const TIMER_SET: unique symbol = Symbol('raiment.clock.timer-set')

/** A clock whose time moves only when told: `testClock()` makes one. */
export class TestClock implements AttachableClock {
  #now: number
  /** Pending timers, by time and then by the order they were set. */
  #timers: Timer[] = []
  #seq = 0
  /** The open weave using the clock, or null. */
  #weave: AttachedWeave | null = null
  /** The advance running (advances run one after another). */
  #moving: Promise<void> = Promise.resolve()
  /** Set when a timer for a time already reached waits for the next turn. */
  #soon = false
  /** Who waits for a timer to be set (record's skipping). */
  #waiters: Array<() => void> = []

  /** @internal Use `testClock(start)`. */
  constructor(start: number) {
    this.#now = start
  }

  /** The clock's time, in ms since the epoch. */
  now(): number {
    return this.#now
  }

  /** Calls `fire` once when the clock reaches `at` (see ScheduleClock); returns what cancels it. */
  setTimer(at: number, fire: () => void): () => void {
    const t: Timer = { at, seq: ++this.#seq, fire }
    const timers = this.#timers
    let i = timers.length
    while (i > 0 && timers[i - 1]!.at > at) i--
    timers.splice(i, 0, t)
    if (at <= this.#now) this.#fireSoon()
    for (const w of this.#waiters.splice(0)) w()
    return () => {
      const j = this.#timers.indexOf(t)
      if (j >= 0) this.#timers.splice(j, 1)
    }
  }

  /** How many timers are set and have not fired nor been cancelled (sleeps, timeouts, retry waits, schedules). */
  get pending(): number {
    return this.#timers.length
  }

  /**
   * Moves time on by `ms`, firing every timer due by then in the order of their times (time is
   * each one's as it fires); after each, the weave using the clock runs until it is quiet, so a
   * timer it sets meanwhile (a thread's next sleep) fires too if due by the end. Resolves once
   * the time is `now() + ms` and the weave is quiet. A thread busy in a library call (a fetch) is
   * waited for. Advances run one after another.
   * @throws InvalidArgument (rejects) for `ms` that is not a finite number >= 0
   * @example
   * const clock = testClock(Date.UTC(2026, 0, 1))
   * const weave = await Weave.open({ db, clock, threads: { reminder } })
   * weave.spawn('reminder', {})
   * await clock.advance(60 * 60_000) // the reminder's 1 h sleep ends now
   */
  advance(ms: number): Promise<void> {
    if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) {
      return Promise.reject(new InvalidArgument(`testClock().advance(ms) expects a finite number of ms >= 0 (time moves only on), got ${valueText(ms)}`))
    }
    const run = async (): Promise<void> => {
      const to = this.#now + ms
      await this.#settle()
      for (;;) {
        const t = this.#timers[0]
        if (t === undefined || t.at > to) break
        this.#fireNext()
        await this.#settle()
      }
      this.#now = Math.max(this.#now, to)
    }
    const p = this.#moving.then(run)
    this.#moving = p.catch(() => {})
    return p
  }

  /** @internal The weave `weave` uses this clock until it closes. */
  [ATTACH](weave: AttachedWeave): () => void {
    if (this.#weave !== null) throw new ClockInUse(this.#weave.weaveId)
    this.#weave = weave
    return () => {
      if (this.#weave === weave) this.#weave = null
    }
  }

  /** @internal See SKIP. */
  async [SKIP](): Promise<boolean> {
    // Only for the weave it began with: a skipping left over from a recording that ended stops.
    const weave = this.#weave
    await this.#settle(true)
    if (weave === null || this.#weave !== weave || this.#timers.length === 0) return false
    this.#fireNext()
    return true
  }

  /** @internal See TIMER_SET. */
  [TIMER_SET](): Promise<void> {
    if (this.#timers.length > 0) return Promise.resolve()
    return new Promise((resolve) => this.#waiters.push(resolve))
  }

  /** Takes the first timer off, moves time to it (never back), and fires it. */
  #fireNext(): void {
    const t = this.#timers.shift()!
    if (t.at > this.#now) this.#now = t.at
    t.fire()
  }

  /** Fires the timers due now at the next turn (one set for a time already reached). */
  #fireSoon(): void {
    if (this.#soon) return
    this.#soon = true
    setImmediate(() => {
      this.#soon = false
      while (this.#timers.length > 0 && this.#timers[0]!.at <= this.#now) this.#fireNext()
    })
  }

  /**
   * Lets the weave using the clock run until it is quiet (src/time/attach.ts): turns of the event
   * loop, then, while a thread is busy in a library call, a millisecond at a time. With no weave,
   * one turn. `running`: meanwhile, while a thread is in a library call, time runs at the real
   * speed, firing the timers it reaches.
   */
  async #settle(running = false): Promise<void> {
    let last = performance.now()
    for (let i = 0; ; i++) {
      await (i < 50 ? new Promise<void>((r) => setImmediate(r)) : new Promise<void>((r) => setTimeout(r, 1)))
      const w = this.#weave
      if (w === null || w.quiet()) return
      const t = performance.now()
      const ms = Math.floor(t - last)
      if (!running || !w.calling()) {
        last = t
        continue
      }
      if (ms === 0) continue
      last += ms
      this.#now += ms
      while (this.#timers.length > 0 && this.#timers[0]!.at <= this.#now) this.#fireNext()
    }
  }
}

/**
 * A clock for tests whose time starts at `start` (ms since the epoch; default: now) and moves
 * only when told: give it to a weave (`Weave.open({ clock })`) and move it with `advance(ms)`, or
 * to `record()`, which skips to the next timer whenever its threads only wait. Everything a
 * thread sees as time goes by it: `clock.now()`, `clock.sleep`, a receive's timeout, a retry's
 * wait, the wake of a passivated thread at its due time, schedules.
 * @throws InvalidArgument for a `start` that is not a finite number
 * @example
 * const clock = testClock(Date.UTC(2026, 0, 1))
 * await clock.advance(2 * 86_400_000)
 */
export function testClock(start: number = Date.now()): TestClock {
  if (typeof start !== 'number' || !Number.isFinite(start)) throw new InvalidArgument(`testClock(start) expects a time in ms since the epoch, got ${valueText(start)}`)
  return new TestClock(start)
}

/**
 * @internal record()'s skipping: whenever the weave using `clock` is quiet, time jumps to its next
 * timer, which fires; with none, it waits for one to be set. Until `stopped()`; never resolves.
 */
export async function skipTime(clock: TestClock, stopped: () => boolean): Promise<never> {
  while (!stopped()) {
    if (!(await clock[SKIP]())) await clock[TIMER_SET]()
  }
  return new Promise<never>(() => {})
}

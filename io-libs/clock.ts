/**
 * clock: the time, and durable sleep. `sleep(ms)` is recorded as the time it started plus a wait
 * until a deadline, so after a crash only the remainder is waited. The time is the weave's clock
 * (`Weave.open({ clock })`): the real one by default, or a test clock that moves when told.
 */
import { callContext, InvalidArgument, realClock } from 'raiment'
import type { CallContext, LibraryApi, ScheduleClock, WeaveConfig } from 'raiment'
import { describe } from './_describe.js'

const clock = (config: WeaveConfig) => {
  const time = (config.weave as { clock?: ScheduleClock } | undefined)?.clock ?? realClock
  // On the real clock, calls as they always were: Date.now, and the sleepers' heap below.
  if (time === realClock) return { now: realNow, sleepUntil: realSleepUntil }
  return {
    /** Milliseconds since the epoch, by the weave's clock. */
    async now(): Promise<number> {
      return time.now()
    },
    /** Waits until time `at` of the weave's clock; returns at once if it has passed. */
    sleepUntil(at: number): Promise<void> {
      const ctx = sleepContext(at, time.now())
      if (ctx instanceof Promise) return ctx
      return new Promise<void>((resolve, reject) => {
        let cancel = (): void => {}
        // A timer may fire early (ScheduleClock): armed again for what is left.
        const arm = (): void => {
          cancel = time.setTimer(at, () => (time.now() < at ? arm() : resolve()))
        }
        arm()
        ctx.onAbort((reason) => {
          cancel()
          reject(reason)
        })
      })
    },
  }
}
export default clock

/** Milliseconds since the epoch. */
async function realNow(): Promise<number> {
  return Date.now()
}

/**
 * The context of a sleepUntil(`at`) call that is to wait, `now` being the time; else what the
 * call returns at once: rejected for a bad time (or outside a call), resolved for a time passed.
 */
function sleepContext(at: number, now: number): CallContext | Promise<void> {
  if (typeof at !== 'number' || !Number.isFinite(at)) {
    return Promise.reject(new InvalidArgument(`clock.sleepUntil expects a time in ms since the epoch, got ${describe(at)}`))
  }
  if (at <= now) return Promise.resolve()
  try {
    return callContext()
  } catch (e) {
    return Promise.reject(e)
  }
}

/** Waits until the wall-clock time `at` (ms since the epoch); returns at once if it has passed. */
function realSleepUntil(at: number): Promise<void> {
  const ctx = sleepContext(at, Date.now())
  if (ctx instanceof Promise) return ctx
  // A sleeping thread holds what is made here, so keep it small: an entry in the sleepers'
  // heap rather than a Timeout of its own, onAbort rather than an AbortSignal (about 1 KB), no
  // named closures (tsx gives each a property dictionary), and one closure that outlives this
  // call (the abort hook), whose scope holds the sleeper alone (`at` in it would be a second).
  const sleeper = new Sleeper(at)
  const promise = new Promise<void>((resolve, reject) => {
    sleeper.resolve = resolve
    sleeper.reject = reject
  })
  add(sleeper)
  ctx.onAbort((reason) => {
    remove(sleeper)
    sleeper.reject(reason)
  })
  return promise
}

/** Reading the clock and waiting reach nothing outside the weave (see LibraryModule.journalOnly). */
export const journalOnly = ['now', 'sleepUntil']

/** How many sleepUntil calls of this process are waiting (for tests and benchmarks). */
export function pendingSleeps(): number {
  return sleepers.length
}

/** A pending sleep: its deadline, how to end it, and its place in the heap. */
class Sleeper {
  readonly at: number
  resolve: () => void = noop
  reject: (reason: Error) => void = noop
  index = -1

  constructor(at: number) {
    this.at = at
  }
}

function noop(): void {}

/**
 * The pending sleeps as a binary min-heap on the deadline, all woken by one timer armed for the
 * soonest (re-armed, never longer than a timer can hold: 2^31 - 1 ms, 24.8 days).
 */
const sleepers: Sleeper[] = []
const MAX_TIMER = 2_147_483_647
let timer: NodeJS.Timeout | null = null
/** The deadline the timer was armed for; Infinity when it is not armed. */
let armedFor = Infinity

function add(s: Sleeper): void {
  s.index = sleepers.length
  sleepers.push(s)
  siftUp(s.index)
  if (s.at < armedFor) arm()
}

function remove(s: Sleeper): void {
  const i = s.index
  if (i < 0) return
  s.index = -1
  const last = sleepers.pop()!
  if (last !== s) {
    sleepers[i] = last
    last.index = i
    siftUp(i)
    siftDown(last.index)
  }
  // The timer may stay armed for an earlier deadline: it then finds nothing due and re-arms.
  if (sleepers.length === 0) arm()
}

function arm(): void {
  if (timer !== null) clearTimeout(timer)
  timer = null
  armedFor = Infinity
  const next = sleepers[0]
  if (next === undefined) return
  armedFor = next.at
  timer = setTimeout(wake, Math.min(Math.max(next.at - Date.now(), 1), MAX_TIMER))
}

function wake(): void {
  timer = null
  armedFor = Infinity
  const now = Date.now()
  while (sleepers.length > 0 && sleepers[0]!.at <= now) {
    const s = sleepers[0]!
    remove(s)
    s.resolve()
  }
  arm()
}

function siftUp(i: number): void {
  const s = sleepers[i]!
  while (i > 0) {
    const p = (i - 1) >> 1
    const parent = sleepers[p]!
    if (parent.at <= s.at) break
    sleepers[i] = parent
    parent.index = i
    i = p
  }
  sleepers[i] = s
  s.index = i
}

function siftDown(i: number): void {
  const n = sleepers.length
  const s = sleepers[i]!
  for (;;) {
    const l = 2 * i + 1
    if (l >= n) break
    const r = l + 1
    const c = r < n && sleepers[r]!.at < sleepers[l]!.at ? r : l
    const child = sleepers[c]!
    if (s.at <= child.at) break
    sleepers[i] = child
    child.index = i
    i = c
  }
  sleepers[i] = s
  s.index = i
}

export const threadSide = {
  /**
   * Sleeps `ms` milliseconds, durably: the deadline is recorded, so a thread resumed after a
   * crash waits only what is left of it.
   */
  sleep(this: LibraryApi<ReturnType<typeof clock>>, ms: number): Promise<void> {
    if (typeof ms !== 'number' || !(ms >= 0 && ms < Infinity)) {
      return Promise.reject(new InvalidArgument(`clock.sleep expects a finite number of ms >= 0, got ${describe(ms)}`))
    }
    // A chain rather than an async function: a sleeping thread then holds no generator here.
    return this.now().then((now) => this.sleepUntil(now + ms))
  },
}

export type ClockApi = LibraryApi<ReturnType<typeof clock>> & { sleep(ms: number): Promise<void> }

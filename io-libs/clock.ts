/**
 * clock: the time, and durable sleep. `sleep(ms)` is recorded as the time it started plus a wait
 * until a deadline, so after a crash only the remainder is waited.
 */
import { callContext } from 'raiment'
import type { LibraryApi } from 'raiment'

const clock = {
  /** Milliseconds since the epoch. */
  async now(): Promise<number> {
    return Date.now()
  },
  /** Waits until the wall-clock time `at` (ms since the epoch); returns at once if it has passed. */
  sleepUntil(at: number): Promise<void> {
    if (typeof at !== 'number' || !Number.isFinite(at)) {
      return Promise.reject(new TypeError(`clock.sleepUntil expects a time in ms since the epoch, got ${String(at)}`))
    }
    const left = at - Date.now()
    if (left <= 0) return Promise.resolve()
    // A sleeping thread holds what is made here, so keep it small: onAbort rather than an
    // AbortSignal (about 1 KB each), and no named closures (tsx gives each a property dictionary).
    if (left > MAX_TIMER) return sleepLong(at)
    return new Promise((resolve, reject) => {
      const timer = setTimeout(resolve, left)
      callContext().onAbort((reason) => {
        clearTimeout(timer)
        reject(reason)
      })
    })
  },
}
export default clock

/** setTimeout holds at most 2^31 - 1 ms (24.8 days); a longer delay would fire after 1 ms. */
const MAX_TIMER = 2_147_483_647

/** A sleep longer than one timer can hold: re-armed until the deadline. */
function sleepLong(at: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let timer: NodeJS.Timeout
    const arm = (): void => {
      const left = at - Date.now()
      if (left <= 0) resolve()
      else timer = setTimeout(arm, Math.min(left, MAX_TIMER))
    }
    arm()
    callContext().onAbort((reason) => {
      clearTimeout(timer)
      reject(reason)
    })
  })
}

export const threadSide = {
  /**
   * Sleeps `ms` milliseconds, durably: the deadline is recorded, so a thread resumed after a
   * crash waits only what is left of it.
   */
  sleep(this: LibraryApi<typeof clock>, ms: number): Promise<void> {
    if (typeof ms !== 'number' || !(ms >= 0)) {
      return Promise.reject(new TypeError(`clock.sleep expects a number of ms >= 0, got ${String(ms)}`))
    }
    // A chain rather than an async function: a sleeping thread then holds no generator here.
    return this.now().then((now) => this.sleepUntil(now + ms))
  },
}

export type ClockApi = LibraryApi<typeof clock> & { sleep(ms: number): Promise<void> }

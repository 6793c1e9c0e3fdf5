/**
 * The time as schedules see it: `now` and one timer. A weave uses the real one; a test passes
 * its own (`Weave.open({ scheduleClock })`) to move time by hand.
 */
import { MAX_TIMER_MS } from '../durations.js'

export interface ScheduleClock {
  /** Milliseconds since the epoch. */
  now(): number
  /**
   * Calls `fire` once, at time `at` (ms since the epoch) or later; returns what cancels it. It
   * may fire early (a real timer holds at most 24.8 days): `fire` looks at `now()` and arms again.
   */
  setTimer(at: number, fire: () => void): () => void
}

/** Date.now and an unref'd setTimeout: the timer does not keep a process alive on its own. */
export const realClock: ScheduleClock = {
  now: () => Date.now(),
  setTimer(at, fire) {
    const t = setTimeout(fire, Math.min(Math.max(at - Date.now(), 1), MAX_TIMER_MS))
    t.unref()
    return () => clearTimeout(t)
  },
}

/**
 * The time as a weave's threads and schedules see it: `now` and one timer. A weave uses the real
 * one; a test passes its own (`Weave.open({ clock })`, `testClock()` of raiment/testing) to move
 * time by hand (src/time/).
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

/**
 * The real clock, a weave's by default: Date.now and an unref'd setTimeout (the timer does not
 * keep a process alive on its own). An I/O library tells it from a test clock by identity.
 * @example
 * const time = weaveOf(config).clock
 * if (time === realClock) console.log('real time')
 */
export const realClock: ScheduleClock = {
  now: () => Date.now(),
  setTimer(at, fire) {
    const t = setTimeout(fire, Math.min(Math.max(at - Date.now(), 1), MAX_TIMER_MS))
    t.unref()
    return () => clearTimeout(t)
  },
}

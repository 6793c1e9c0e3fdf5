/**
 * The time a weave's threads see: one clock (`Weave.open({ clock })`, src/schedules/clock.ts's
 * `ScheduleClock` shape) for the clock library's `now` and `sleepUntil`, a receive's timeout, a
 * retry's wait, the wake of a passivated thread at its due time, and schedules. The real clock by
 * default; `raiment/testing`'s test clock moves only when told (src/time/test-clock.ts).
 *
 * Invariant: a wait armed here ends no earlier than its time by the weave's clock: a timer that
 * fires early (a real timer runs on a coarser clock than Date.now, and holds at most 24.8 days;
 * a clock of the user's may fire early too) is armed again for what is left.
 */
import type { WeaveConfig } from '../call-context.js'
import { MAX_TIMER_MS } from '../durations.js'
import { InvalidArgument } from '../errors.js'
import { realClock, type ScheduleClock } from '../schedules/clock.js'
import { valueText } from '../value-text.js'

/**
 * The clock of weave options `clock` and `scheduleClock` (an older name for it): the real one when
 * neither is given.
 * @throws InvalidArgument for a clock without `now()` and `setTimer(at, fire)`, or two different ones
 */
export function clockOption(o: { clock?: unknown; scheduleClock?: unknown }): ScheduleClock {
  const { clock, scheduleClock } = o
  if (clock !== undefined && scheduleClock !== undefined && clock !== scheduleClock) {
    throw new InvalidArgument("clock and scheduleClock are two names of one option (the time the weave's threads and schedules go by), and got two different clocks: pass clock alone")
  }
  const c = clock ?? scheduleClock
  if (c === undefined) return realClock
  const name = clock !== undefined ? 'clock' : 'scheduleClock'
  const shape = typeof c === 'object' && c !== null ? (c as Partial<ScheduleClock>) : null
  if (shape === null || typeof shape.now !== 'function' || typeof shape.setTimer !== 'function') {
    throw new InvalidArgument(`${name} must be a clock { now(), setTimer(at, fire) } (testClock() from raiment/testing makes one), got ${valueText(c)}`)
  }
  return c as ScheduleClock
}

/** The clock of the weave a library's or call's `config` belongs to; the real one outside a weave. */
export function clockOf(config: WeaveConfig): ScheduleClock {
  return (config as { weave?: { clock?: ScheduleClock } }).weave?.clock ?? realClock
}

/**
 * Calls `fire` once, at time `at` of `clock` or later; returns what cancels it. On the real clock
 * a plain Node timer (one that keeps the process alive, as a thread's wait does), armed again in
 * pieces for a wait longer than a timer holds. A time that never comes (Infinity: a receive's
 * `timeout: Infinity`) arms nothing: a test clock would jump to it.
 */
export function timerAt(clock: ScheduleClock, at: number, fire: () => void): () => void {
  if (at === Infinity) return noop
  let cancel: (() => void) | null = null
  let live = true
  if (clock === realClock) {
    let t: NodeJS.Timeout | null = null
    const arm = (): void => {
      const left = at - Date.now()
      if (left > 0) t = setTimeout(arm, Math.min(left, MAX_TIMER_MS))
      else if (live) fire()
    }
    t = setTimeout(arm, Math.min(Math.max(at - Date.now(), 1), MAX_TIMER_MS))
    return () => {
      live = false
      if (t !== null) clearTimeout(t)
    }
  }
  const arm = (): void => {
    cancel = clock.setTimer(at, () => {
      if (!live) return
      if (clock.now() < at) arm()
      else fire()
    })
  }
  arm()
  return () => {
    live = false
    cancel?.()
  }
}

function noop(): void {}

/**
 * A clock for schedule tests (`Weave.open({ scheduleClock })`): time moves only when the test
 * moves it, and a timer fires only then, once its time has come.
 */
import type { ScheduleClock, Weave } from 'raiment'

interface Timer {
  at: number
  fire: () => void
  live: boolean
}

export class TestClock implements ScheduleClock {
  t: number
  #timers: Timer[] = []

  constructor(t: number) {
    this.t = t
  }

  now(): number {
    return this.t
  }

  setTimer(at: number, fire: () => void): () => void {
    const timer: Timer = { at, fire, live: true }
    this.#timers.push(timer)
    return () => {
      timer.live = false
    }
  }

  /** Timers armed and not yet fired or cancelled. */
  get armed(): number {
    return this.#timers.filter((t) => t.live).length
  }

  /**
   * Moves time to `to` in one jump (a timer fires late by up to the jump), fires every timer
   * that is due then, and waits until what they queued is durable.
   */
  async advance(to: number, weave: Weave): Promise<void> {
    this.t = Math.max(this.t, to)
    for (;;) {
      const due = this.#timers.filter((t) => t.live && t.at <= this.t)
      this.#timers = this.#timers.filter((t) => t.live && t.at > this.t)
      if (due.length === 0) break
      for (const t of due) {
        t.live = false
        t.fire()
      }
    }
    await weave.committed()
  }
}

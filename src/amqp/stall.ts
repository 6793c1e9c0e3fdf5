/**
 * Notices this process stalling: frozen (SIGSTOP, a paused VM) or its event loop blocked. A tick
 * each second that finds the one before long past saw a stall; so does a look while the last
 * tick is long past (the first event after a freeze may come before the tick does). A broker
 * connection lost then was lost to the stall (the broker stopped hearing its heartbeats), and
 * the outage began when the stall did, not when the process noticed.
 */

const TICK_MS = 1_000
/** A gap between ticks this long is a stall. */
const STALL_MS = 3_000
/** A stall that ended this recently still explains a loss noticed now. */
const RECENT_MS = 5_000

export interface Stall {
  /** When the process stopped running (ms since the epoch), and for how long. */
  from: number
  ms: number
}

export class StallWatch {
  /** Gaps are measured on the monotonic clock (a wall clock set back or on is no stall); `from` is told in wall time. */
  #last = performance.now()
  #stall: { ms: number; seenAt: number } | null = null
  readonly #timer: NodeJS.Timeout

  constructor() {
    this.#timer = setInterval(() => {
      const now = performance.now()
      if (now - this.#last >= STALL_MS) this.#stall = { ms: now - this.#last, seenAt: now }
      this.#last = now
    }, TICK_MS)
    this.#timer.unref()
  }

  /** The stall under way or just ended, if any. */
  recent(): Stall | null {
    const now = performance.now()
    const wall = Date.now()
    if (now - this.#last >= STALL_MS) return { from: wall - (now - this.#last), ms: now - this.#last }
    const s = this.#stall
    return s !== null && now - s.seenAt <= RECENT_MS ? { from: wall - (now - s.seenAt) - s.ms, ms: s.ms } : null
  }

  stop(): void {
    clearInterval(this.#timer)
  }
}

/**
 * Replay rounds: the wefts that replay (src/weft-replay.ts) release their recorded outcomes in
 * rounds. A round runs once the microtask queue has fully drained, and pumps up to ROUND wefts
 * once each: each releases at most one outcome per round.
 *
 * Invariants:
 * - A round runs after a full microtask drain that followed the round before it, so a thread's
 *   microtasks drain between two of its releases, as one weft's own schedule had it. Threads
 *   replaying together share one schedule (one promise reaction and one tick a round) instead of
 *   one each per outcome.
 * - The wefts a round pumped, and that ask again, go first in the next round; others wait in the
 *   order they asked. Thousands of threads resumed together thus replay ROUND at a time rather
 *   than all in turn, so what one release makes (the call, its promise, the thread's
 *   continuation) is garbage before the next scavenge instead of surviving it in every thread.
 *   A weft waiting its turn only replays later: what it is released and in which order is the same.
 */
const ROUND = 64

/**
 * Called every 16,384 recorded outcomes replayed in this process, when set: a replay runs in
 * microtasks without yielding to the event loop, so a progress display (src/cli/progress.ts)
 * has no timer that fires meanwhile.
 */
export const replayTick: { hook: (() => void) | null } = { hook: null }
let releasedCount = 0

/** How many recorded outcomes replay has released in this process (for progress). */
export function releasedOutcomes(): number {
  return releasedCount
}

/** Counts a released outcome (for progress). */
export function countRelease(): void {
  if ((++releasedCount & 0x3fff) === 0 && replayTick.hook !== null) replayTick.hook()
}

/**
 * Runs `tick(w)` once the microtask queue has fully drained: a microtask that queues a tick.
 * The microtask is queued on a settled promise (queueMicrotask makes an AsyncResource per call),
 * and `tick` is a static function, so a weft holds no closure of its own for this (live
 * outcomes of one batch, src/weft-pending.ts).
 */
export function afterDrain<W>(tick: (w: W) => void, w: W): void {
  void Promise.resolve(w).then(tick)
}

export class ReplayRounds<T> {
  // The three lists below are kept and reused, each with its own count, rather than made anew
  // each round: a round per outcome (one thread replaying) would otherwise allocate two arrays
  // and their backing stores per outcome. Slots past a count hold undefined (nothing kept alive).
  /** Wefts pumped in the round that runs now or ran last, that asked again (at most ROUND). */
  #again: Array<T | undefined> = []
  #againN = 0
  /** The round being run: its wefts. */
  #list: Array<T | undefined> = []
  /** The other wefts that asked, in order, from `#head` to `#waitingN`. */
  readonly #waiting: Array<T | undefined> = []
  #head = 0
  #waitingN = 0
  #queued = false
  #running = false
  readonly #pump: (t: T) => void
  readonly #self: Promise<ReplayRounds<T>>

  constructor(pump: (t: T) => void) {
    this.#pump = pump
    this.#self = Promise.resolve(this)
  }

  /** Pumps `t` in a later round (the caller asks once until it is pumped). */
  add(t: T): void {
    if (this.#running) this.#again[this.#againN++] = t
    else this.#waiting[this.#waitingN++] = t
    this.#queue()
  }

  #queue(): void {
    if (this.#queued) return
    this.#queued = true
    // A microtask that queues a tick: the tick runs once the microtask queue has drained, from
    // whatever context (a tick, a microtask, a macrotask) the round was asked for in.
    void this.#self.then(ReplayRounds.#soon)
  }

  static #soon<T>(this: void, r: ReplayRounds<T>): void {
    process.nextTick(ReplayRounds.#run, r)
  }

  static #run<T>(this: void, r: ReplayRounds<T>): void {
    r.#queued = false
    // This round's wefts: those that asked again, then the longest waiting, up to ROUND.
    const list = r.#again
    let n = r.#againN
    r.#again = r.#list
    r.#againN = 0
    r.#list = list
    const waiting = r.#waiting
    while (n < ROUND && r.#head < r.#waitingN) {
      list[n++] = waiting[r.#head]
      waiting[r.#head++] = undefined
    }
    if (r.#head === r.#waitingN) {
      r.#head = 0
      r.#waitingN = 0
    } else if (r.#head >= 4096) {
      const n = r.#waitingN - r.#head
      for (let j = 0; j < r.#waitingN; j++) waiting[j] = j < n ? waiting[j + r.#head] : undefined
      r.#waitingN = n
      r.#head = 0
    }
    r.#running = true
    let i = 0
    try {
      for (; i < n; i++) r.#pump(list[i] as T)
    } finally {
      r.#running = false
      // A pump that threw leaves the others to the next round.
      for (let j = i + 1; j < n; j++) r.#again[r.#againN++] = list[j]
      for (let j = 0; j < n; j++) list[j] = undefined
      if (r.#againN > 0 || r.#head < r.#waitingN) r.#queue()
    }
  }
}

/**
 * Replay rounds: the wefts that replay (src/weft.ts) release their recorded outcomes in rounds.
 * A round runs once the microtask queue has fully drained, and pumps each weft that asked for
 * it since the last round once: each releases at most one outcome per round.
 *
 * Invariant: a round runs after a full microtask drain that followed the round before it, so a
 * thread's microtasks drain between two of its releases, as one weft's own schedule had it;
 * threads replaying together share one schedule (one promise reaction and one tick a round)
 * instead of one each per outcome.
 */
export class ReplayRounds<T> {
  /** The wefts to pump in the next round, in the order they asked. */
  #next: T[] = []
  #queued = false
  readonly #pump: (t: T) => void
  readonly #self: Promise<ReplayRounds<T>>

  constructor(pump: (t: T) => void) {
    this.#pump = pump
    this.#self = Promise.resolve(this)
  }

  /** Pumps `t` in the next round (the caller asks once per round). */
  add(t: T): void {
    this.#next.push(t)
    if (this.#queued) return
    this.#queued = true
    // A microtask that queues a tick: the tick runs once the microtask queue has drained, from
    // whatever context (a tick, a microtask, a macrotask) the round was asked for in.
    void this.#self.then(ReplayRounds.#soon)
  }

  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  static #soon(this: void, r: ReplayRounds<any>): void {
    process.nextTick(ReplayRounds.#run, r)
  }

  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  static #run(this: void, r: ReplayRounds<any>): void {
    const list = r.#next
    r.#next = []
    r.#queued = false
    let i = 0
    try {
      for (; i < list.length; i++) r.#pump(list[i])
    } finally {
      // A pump that threw leaves the others to the next round.
      for (let j = i + 1; j < list.length; j++) r.add(list[j])
    }
  }
}

/**
 * Runs to look at, each with when: first in, first out. Its times grow as long as every run is
 * queued with the same delay, so the due ones are at its head; a queue per delay keeps a run
 * looked at late from holding up those queued after it (src/passivation/passivation.ts).
 */
import type { Run } from '../weave-types.js'

export class CheckQueue {
  #runs: Run[] = []
  #ats: number[] = []
  #head = 0

  push(run: Run, at: number): void {
    this.#runs.push(run)
    this.#ats.push(at)
  }

  /** When the head is due; Infinity when empty. */
  next(): number {
    return this.#head < this.#runs.length ? this.#ats[this.#head]! : Infinity
  }

  /** Takes the runs due at `now` from the head, in turn, to `f`. */
  takeDue(now: number, f: (run: Run) => void): void {
    const runs = this.#runs
    const ats = this.#ats
    let i = this.#head
    for (; i < runs.length && ats[i]! <= now; i++) {
      const run = runs[i]!
      runs[i] = undefined as unknown as Run
      f(run)
    }
    if (i === runs.length) {
      this.#runs = []
      this.#ats = []
      this.#head = 0
    } else if (i > 4096 && i * 2 > runs.length) {
      this.#runs = runs.slice(i)
      this.#ats = ats.slice(i)
      this.#head = 0
    } else this.#head = i
  }
}

/**
 * Runs to look at, each with when: first in, first out. An entry names its thread, not its run:
 * a run that ended (or was replaced) is not kept in memory by it until it is due. Its times grow
 * as long as every run is queued with the same delay, so the due ones are at its head; a queue
 * per delay keeps a run looked at late from holding up those queued after it
 * (src/passivation/passivation.ts).
 */
export class CheckQueue {
  /** The thread of each entry, and the stamp its run had when queued (`Run.waitQueued`). */
  #ids: string[] = []
  #stamps: number[] = []
  #ats: number[] = []
  #head = 0

  push(id: string, stamp: number, at: number): void {
    this.#ids.push(id)
    this.#stamps.push(stamp)
    this.#ats.push(at)
  }

  /** When the head is due; Infinity when empty. */
  next(): number {
    return this.#head < this.#ids.length ? this.#ats[this.#head]! : Infinity
  }

  /** Takes the entries due at `now` from the head, in turn, to `f`. */
  takeDue(now: number, f: (id: string, stamp: number) => void): void {
    const ids = this.#ids
    const stamps = this.#stamps
    const ats = this.#ats
    let i = this.#head
    for (; i < ids.length && ats[i]! <= now; i++) f(ids[i]!, stamps[i]!)
    if (i === ids.length) {
      this.#ids = []
      this.#stamps = []
      this.#ats = []
      this.#head = 0
    } else if (i > 4096 && i * 2 > ids.length) {
      this.#ids = ids.slice(i)
      this.#stamps = stamps.slice(i)
      this.#ats = ats.slice(i)
      this.#head = 0
    } else this.#head = i
  }
}

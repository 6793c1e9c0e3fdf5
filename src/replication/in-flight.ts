/**
 * The records a Replicator (src/replication/replicator.ts) has published or will publish, oldest
 * first, until they are released; and the callbacks held on them (the outcomes a batch releases
 * to threads, the acks of messages it took), with the lag they make.
 *
 * Invariants:
 * - Callbacks run in the order they were held: a record's run only once every record before it
 *   is released (`drain`), never out of the list's order.
 * - The lag is the entries and bytes of the records not released yet.
 */
import { latestWhole, takeRuns, type Item, type Lag } from './replicator-options.js'

export class InFlight {
  /** Records published or to publish, oldest first; those before #head are released. */
  #items: Item[] = []
  #head = 0
  /** Records of #items (from #head) with callbacks waiting on them. */
  #attached = 0
  #lagEntries = 0
  #lagBytes = 0
  /** `flushed` promises waiting for the list to empty. */
  #waiters: Array<() => void> = []

  /** Appends a record to the list (its entries and bytes to the lag). */
  add(item: Item): void {
    this.#items.push(item)
    this.#lagEntries += item.entries
    this.#lagBytes += item.bytes
  }

  /** No record waits to be released. */
  get empty(): boolean {
    return this.#head === this.#items.length
  }

  /** Some record not released yet holds callbacks. */
  get holding(): boolean {
    return this.#attached > 0
  }

  /** Holds `run` on the last record: it runs once that record is released. The list must not be empty. */
  hold(run: () => void): void {
    const last = this.#items[this.#items.length - 1]!
    if (last.runs === null) {
      last.runs = []
      this.#attached++
    }
    last.runs.push(run)
  }

  /** Takes every held callback, in order: none of them runs through the list any more. */
  takeRuns(): Array<() => void> {
    this.#attached = 0
    return takeRuns(this.#items, this.#head)
  }

  lag(): Lag {
    return { entries: this.#lagEntries, bytes: this.#lagBytes }
  }

  /** The records not released yet, oldest first. */
  *pending(): Generator<Item> {
    for (let i = this.#head; i < this.#items.length; i++) yield this.#items[i]!
  }

  /** The latest generation whose `generation` record and snapshot, among the records not released, are all confirmed (-1: none). */
  latestWhole(): number {
    return latestWhole(this.#items, this.#head)
  }

  /**
   * Releases, in order, the records confirmed in a generation up to `current` and those of a
   * generation before it (a later one's confirmed snapshot covers them), up to the first that is
   * neither: their callbacks run. Wakes `flushed` once the list is empty.
   */
  drain(current: number): void {
    const items = this.#items
    let h = this.#head
    while (h < items.length) {
      const it = items[h]!
      if (!((it.confirmed && it.gen <= current) || it.gen < current)) break
      h++
      this.#lagEntries -= it.entries
      this.#lagBytes -= it.bytes
      if (it.runs !== null) {
        this.#attached--
        for (const run of it.runs) run()
      }
    }
    if (h === items.length) {
      this.#items = []
      this.#head = 0
    } else if (h > 1024 && h * 2 > items.length) {
      this.#items = items.slice(h)
      this.#head = 0
    } else this.#head = h
    if (this.#head === this.#items.length) this.wake()
  }

  /** Resolves once the list is empty, or at the next `wake`. */
  flushed(): Promise<void> {
    if (this.empty) return Promise.resolve()
    return new Promise((r) => this.#waiters.push(r))
  }

  /** Resolves every `flushed` waiting. */
  wake(): void {
    const w = this.#waiters
    this.#waiters = []
    for (const f of w) f()
  }
}

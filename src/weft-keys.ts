/**
 * A weft's count of its calls by key: the ordinal of each call (how many calls of the same key
 * the thread made before it), for the weft (src/weft.ts, through src/weft-replay.ts), which
 * extends this class (through it, the pending calls of src/weft-pending.ts) rather than holding
 * one, so a thread carries no object more.
 *
 * Invariants:
 * - Ordinals of a key count up from 0 in the order its calls were made.
 * - Most threads use few distinct keys: the first two are counted in fields, the rest in a Map
 *   (~250 B per thread).
 * - A key's first call in a replay may be counted by its recorded entry instead (most keys are
 *   called once): after the replay, `firstKeys` says which keys were (src/replay-keys.ts), asked
 *   at a live call of a key the counts lack, which then counts it as its second.
 */
import type { ReplayedKeys } from './replay-keys.js'
import { PendingCalls } from './weft-pending.js'

export abstract class KeyCounts extends PendingCalls {
  #key0: string | null = null
  #count0 = 0
  #key1: string | null = null
  #count1 = 0
  #counts: Map<string, number> | null = null
  /** Keys whose first call a finished replay counted by its entry (see `count`); null while replaying or if none. */
  protected firstKeys: ReplayedKeys | null = null

  /** The ordinal of `key`'s first call the counts see: 0 live; on replay, after those its record counts by their entries. */
  protected abstract firstOrdinal(key: string): number

  /** Whether the counts hold `key`. */
  protected counted(key: string): boolean {
    return this.#key0 === key || this.#key1 === key || (this.#counts !== null && this.#counts.has(key))
  }

  /**
   * Counts a call of `key`; returns its ordinal (how many calls of that key came before it). A
   * key's first call in a replay may be counted by its entry instead (most keys are called once):
   * a key the counts lack starts after it (`firstOrdinal` while replaying, `firstKeys` after).
   */
  protected count(key: string): number {
    if (this.#key0 === key) return this.#count0++
    if (this.#key1 === key) return this.#count1++
    // The fields fill first and keep their keys, so a key in the Map is in neither field.
    const counts = this.#counts
    if (counts !== null) {
      const ord = counts.get(key)
      if (ord !== undefined) {
        counts.set(key, ord + 1)
        return ord
      }
    }
    const ord = this.firstKeys === null ? this.firstOrdinal(key) : this.firstKeys.has(key) ? 1 : 0
    if (this.#key0 === null) {
      this.#key0 = key
      this.#count0 = ord + 1
    } else if (this.#key1 === null) {
      this.#key1 = key
      this.#count1 = ord + 1
    } else (this.#counts ??= new Map()).set(key, ord + 1)
    return ord
  }
}

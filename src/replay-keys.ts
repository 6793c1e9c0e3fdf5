/**
 * The keys a finished replay counted by their recorded entries rather than in the weft's counts
 * (src/weft-keys.ts): a key's first call, matched in recorded order by its entry of ordinal 0.
 * A live call of such a key after the replay is its second: ordinal 1.
 *
 * Held as the record's joined key texts (src/replay-blocks.ts; UTF-8 off the heap for the units the
 * replay passed), searched for a key when a live
 * call asks, not as a Set or Map of every key: 10,000 threads resumed with 100 entries each would
 * otherwise each build and keep a Map of 100 keys (~8 KB a thread) at their first live call. Once
 * the searches have read a few times the texts' length, the keys go into a Set (a thread that
 * makes many new calls after a long record pays for the Set once, not a search a call).
 *
 * Invariants:
 * - `has(key)` is asked only of a key the counts lack: none of its calls was counted there, so
 *   every call of it in the replay was matched by its entry of ordinal 0 (`implicit`).
 * - Searching the whole record's keys is exact when the replay released every entry (none dropped
 *   by a replay that went on past a divergence): a key the counts lack that is in the record had
 *   its entries released to uncounted calls, so it has exactly one, of ordinal 0, and it was
 *   counted by it. Otherwise the exact keys (those at the `implicit` positions) go in a Set.
 */
import { textOf, US, US_CODE } from './replay-joined.js'

/** How many times the texts' length the searches may read before the keys go into a Set. */
const SEARCHES = 4

export class ReplayedKeys {
  /** Each block's keys: joined by US (a string, or UTF-8), or one string a key (a block read by row). */
  #texts: ReadonlyArray<Keys> | null
  #set: Set<string> | null
  /** Characters the searches may still read before the keys go into a Set. */
  #left: number
  readonly #length: number

  /** `texts`: every key of the record (exact only if none was dropped); or `set`: the keys exactly. */
  constructor(texts: ReadonlyArray<Keys> | null, set: Set<string> | null = null) {
    this.#texts = texts
    this.#set = set
    let length = 0
    if (texts !== null) for (const t of texts) length += isList(t) ? t.reduce((n, k) => n + k.length + 1, 0) : t.length
    this.#length = length
    this.#left = SEARCHES * length
  }

  /** Whether `key` was counted by its recorded entry (see the invariants). */
  has(key: string): boolean {
    // A key holding a raw U+001F (a library or method name could) would match across two: a Set.
    // An empty key (none is: a key starts `library.method:`) would be found anywhere: a Set too.
    if (this.#set === null && key.length > 0 && !key.includes(US)) return this.#search(key)
    return this.#keys().has(key)
  }

  #search(key: string): boolean {
    const texts = this.#texts!
    let found = false
    let bytes: Buffer | null = null
    for (let b = 0; b < texts.length && !found; b++) {
      const t = texts[b]!
      if (typeof t === 'string') found = holds(t, key)
      else if (isList(t)) found = t.includes(key)
      else found = holds(t, (bytes ??= Buffer.from(key, 'utf8')))
    }
    this.#left -= this.#length
    if (this.#left < 0) this.#keys()
    return found
  }

  /** The keys in a Set, made now if they are not yet (the texts let go). */
  #keys(): Set<string> {
    if (this.#set !== null) return this.#set
    const set = new Set<string>()
    for (const t of this.#texts!) for (const k of isList(t) ? t : textOf(t).split(US)) set.add(k)
    this.#texts = null
    return (this.#set = set)
  }
}

/** A block's keys: joined by US (as read, or UTF-8), or one string a key. */
export type Keys = string | Buffer | readonly string[]

function isList(t: Keys): t is readonly string[] {
  return Array.isArray(t)
}

/**
 * Whether `key` is one of the keys joined by US in `text` (a key holds no raw U+001F); in UTF-8
 * alike, byte for byte (a key's bytes match only at a character's start, and US is one byte).
 */
function holds<T extends string | Buffer>(text: T, key: T): boolean {
  const end = key.length
  const at = (i: number): number => (typeof text === 'string' ? text.charCodeAt(i) : text[i]!)
  for (let i = text.indexOf(key as string & Buffer); i !== -1; i = text.indexOf(key as string & Buffer, i + 1)) {
    if ((i === 0 || at(i - 1) === US_CODE) && (i + end === text.length || at(i + end) === US_CODE)) return true
  }
  return false
}

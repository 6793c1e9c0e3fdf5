/**
 * A thread's record as a replay reaches it: blocks of entries, each read from SQLite as one row
 * of joined columns (src/replay-load.ts) and split into entries entry by entry as the replay
 * reaches them; an entry released is let go, and a joined unit the replay has passed keeps only
 * its keys and ordinals.
 *
 * Why: a record read whole at open, a million entries and their strings, lives until it is
 * replayed, and the young generation copies all of it at every scavenge before it is promoted
 * (half of a million-entry replay's time went so). The same held for 10,000 threads of 100
 * entries resumed at once when each was split at its first call: a million entries lived through
 * the whole resume. Split as reached, entries die young; a record waiting its turn is five strings.
 *
 * Invariants:
 * - Positions are those of the whole record: `at(i)` is the record's entry i, in completion order,
 *   whether its block is split or not split yet. An entry released is let go, and split again if
 *   asked for while the replay is in its unit (a new object with `call` null: its (key, ordinal)
 *   is never asked for again). A joined unit the replay has passed keeps only its keys and
 *   ordinals (`keyAt`, `eachKey`; `PassedUnit`): its outcomes go, so a replay holds only the
 *   outcomes it has yet to release. A unit read by row (rare: a key with a raw U+001F, a block
 *   too long for one string, journal_tail) is kept whole.
 * - Every block's text is read in the transaction that reads the thread's row (src/replay-load.ts
 *   `resumeSet`), or by a worker in a snapshot taken within it and handed over as the replay
 *   reaches it (`PendingBlocks`, src/replay-ahead.ts): the record is that of the row's state.
 * - A joined block splits into its rows, seqs rising: the reader checks each block when it reads
 *   it, without splitting it, cutting it into units of UNIT rows (`cut`), and reads by row one
 *   that fails (SQLite keeps the subquery's order in the aggregate but does not promise it; a key
 *   that held a raw U+001F would split wrong).
 */
import { RaimentError } from './errors.js'
import { indexedEntry, indexedKey, split, SplitEntry, textOf, US, type Entry, type JoinedBlock, type PassedUnit } from './replay-joined.js'
import { ReplayedKeys } from './replay-keys.js'
import type { RisingRuns } from './replay-record.js'

export { cut, SplitEntry, US, US_CODE, type Entry, type JoinedBlock, type PassedUnit } from './replay-joined.js'

/** An entry of a unit the replay passed was asked for whole: only its key and ordinal are kept. */
function letGo(i: number): RaimentError {
  return new RaimentError('RAIMENT_RECORD_LET_GO', `entry ${i} of the record was replayed and its outcome let go: only its key and ordinal are kept (a bug in Raiment: report it)`)
}

/**
 * The blocks of a record still to come, read ahead while the replay runs (src/replay-ahead.ts):
 * the last one's seq, whether their keys include a text, and the next block, read or waited for
 * (null once all came; 'gone' when the journal closed meanwhile). How many entries they hold is
 * not counted: known once the last came.
 */
export interface PendingBlocks {
  /** The seq of the record's last entry, read in the snapshot its blocks are read in. */
  readonly lastSeq: number
  /** Whether a key of theirs includes `text`; null: not known without them. */
  keysInclude(text: string): boolean | null
  next(): Array<Entry[] | JoinedBlock> | null | 'gone'
  /** Nothing more is asked for (the thread stopped): they need not be read. */
  drop(): void
}

/** A thread's record in blocks; see the invariants above. */
export class RecordBlocks {
  /** The record's length once known: at once when all its blocks are here, else once the last came (`length`, `has`). */
  #length: number | null
  /** Its blocks stopped coming (the weave closed): positions not here read as past the end, and the replay stops. */
  #gone = false
  /** The seq of the last entry of the blocks here (-1: none). */
  #lastAdded = -1
  /** The seq of the record's last entry (-1 when empty). */
  readonly lastSeq: number
  /** Blocks not here yet (read ahead), added in order as the replay reaches them; null: all here. */
  #pending: PendingBlocks | null
  /** Each block's entries once split; null: not split, or let go. */
  readonly #split: Array<Array<Entry | undefined> | null>
  /** Each block's joined text; null for a block read by row (kept split). */
  readonly #joined: Array<JoinedBlock | PassedUnit | null>
  /** The position of each block's first entry, and one past the last block's. */
  readonly #starts: number[]
  /** Where each column's next piece begins in each joined block split in part: seqs, keys, ords, texts. */
  readonly #at: Array<[number, number, number, number] | null> = []
  /** The block of the last lookup. */
  #b = 0
  /** Blocks before this one have been let go (or are read by row). */
  #kept = 0

  /** `blocks`: in order, each split already (an array) or joined; `pending`: those that follow them. */
  constructor(blocks: ReadonlyArray<Entry[] | JoinedBlock>, pending: PendingBlocks | null = null) {
    this.#split = []
    this.#joined = []
    this.#starts = [0]
    this.#pending = null
    this.#add(blocks)
    if (pending !== null) {
      this.#length = null
      this.#pending = pending
      this.lastSeq = pending.lastSeq
      return
    }
    this.#length = this.#starts[this.#starts.length - 1]!
    this.lastSeq = this.#lastAdded
  }

  /** How many entries the record holds: every block still to come is read for it (prefer `has`). */
  get length(): number {
    if (this.#length === null && this.#pending !== null) this.#arrive(Infinity)
    // Unknown still: its blocks stopped coming, or the replay let them go (`release`): only the
    // entries here, fewer than the record holds (no caller asks then).
    return this.#length ?? this.#starts[this.#starts.length - 1]!
  }

  /** The record's length if known without reading a block more; null: not yet. */
  get knownLength(): number | null {
    return this.#length
  }

  /** Its length for a message: known, or at most one entry a seq (its blocks to come are not read for it). */
  get lengthText(): string {
    return this.#length !== null ? String(this.#length) : `at most ${this.lastSeq + 1}`
  }

  /**
   * Whether the record has an entry at position `i`, its block read for it if to come; true too
   * once its blocks stopped coming (the weave closed), where `at(i)` is undefined and the replay
   * stops.
   */
  has(i: number): boolean {
    const starts = this.#starts
    if (i < starts[starts.length - 1]!) return true
    if (this.#pending !== null) this.#arrive(i)
    return i < starts[starts.length - 1]! || this.#gone
  }

  #add(blocks: ReadonlyArray<Entry[] | JoinedBlock>): void {
    let n = this.#starts[this.#starts.length - 1]!
    for (const b of blocks) {
      const len = Array.isArray(b) ? b.length : b.n
      if (len === 0) continue
      this.#lastAdded = Array.isArray(b) ? b[len - 1]!.seq : b.index !== undefined ? b.index[len - 1]! : +b.seqs.slice(b.seqs.lastIndexOf(US) + 1)
      this.#split.push(Array.isArray(b) ? b : null)
      this.#joined.push(Array.isArray(b) ? null : b)
      this.#starts.push((n += len))
    }
  }

  /** Adds the pending blocks up to the one holding position `i` (all of them for Infinity). */
  #arrive(i: number): void {
    const pending = this.#pending!
    const starts = this.#starts
    while (starts[starts.length - 1]! <= i) {
      const blocks = pending.next()
      if (blocks === 'gone') {
        // The weave closed: its threads are let go, and positions not here read as past the end.
        this.#pending = null
        this.#gone = true
        return
      }
      if (blocks === null) {
        this.#pending = null
        this.#length = starts[starts.length - 1]!
        // Its last seq was read in the snapshot its blocks were: never seen.
        const last = this.#lastAdded
        if (last !== this.lastSeq) throw new RaimentError('RAIMENT_RECORD_SHORT', `a record read ahead ended at seq ${last}, where its last entry read before it started has seq ${this.lastSeq}; open the weave again`)
        return
      }
      this.#add(blocks)
    }
  }

  /** The replay stopped (its thread ended, was killed, diverged): blocks still to come are not read. */
  release(): void {
    this.#pending?.drop()
    this.#pending = null
  }

  /** Every block here (a reader of the record whole). */
  #all(): void {
    if (this.#pending !== null) this.#arrive(Infinity)
  }

  /** A record held whole already (a dump, a move, a fork, a reload). */
  static of(entries: Entry[]): RecordBlocks {
    return new RecordBlocks([entries])
  }

  /** `record` in blocks, whole or already so; null for none. */
  static from(record: Entry[] | RecordBlocks | null): RecordBlocks | null {
    return record === null || record instanceof RecordBlocks ? record : RecordBlocks.of(record)
  }

  /** The record's entry at position `i`, or undefined past its end. */
  at(i: number): Entry | undefined {
    if (!(i >= 0)) return undefined
    const starts = this.#starts
    if (i >= starts[starts.length - 1]!) {
      if (this.#pending !== null) this.#arrive(i)
      if (i >= starts[starts.length - 1]!) return undefined
    }
    const b = this.#blockOf(i)
    const j = i - starts[b]!
    if (b < this.#kept && this.#split[b] === null) throw letGo(i)
    const entries = this.#split[b] ?? (this.#split[b] = [])
    if (j >= entries.length) return this.#splitTo(b, entries, j)
    // Let go as released (`passed`): split again, alone.
    const block = this.#joined[b] as JoinedBlock
    return entries[j] ?? (block.index !== undefined ? indexedEntry(block, block.index, j) : split(block)![j])
  }

  /** The block holding position `i` (within the blocks here). */
  #blockOf(i: number): number {
    const starts = this.#starts
    let b = this.#b
    if (i < starts[b]! || i >= starts[b + 1]!) {
      if (i >= starts[b + 1]! && i < starts[b + 2]!) b++
      else {
        let lo = 0
        let hi = this.#split.length - 1
        while (lo < hi) {
          const mid = (lo + hi + 1) >>> 1
          if (starts[mid]! <= i) lo = mid
          else hi = mid - 1
        }
        b = lo
      }
      this.#b = b
    }
    return b
  }

  /** The key of the entry at position `i`, passed or not (a divergence's message names the last matched). */
  keyAt(i: number): string {
    if (!(i >= 0 && this.has(i) && i < this.#starts[this.#starts.length - 1]!)) throw new RangeError(`no entry ${i} in a record of ${this.lengthText}`)
    const b = this.#blockOf(i)
    const j = i - this.#starts[b]!
    const entries = this.#whole(b)
    if (entries !== null) return entries[j]!.key
    const block = this.#joined[b]!
    return 'index' in block && block.index !== undefined ? indexedKey(block, block.index, j) : textOf(block.keys).split(US)[j]!
  }

  /**
   * Splits joined block `b`'s entries after those split already, up to its entry `j`, and returns
   * it: a replay splits a block entry by entry as it reaches them, so 10,000 threads resumed at
   * once hold their records joined (a few strings each), not a million entries, until replayed.
   * The block was checked whole when read (`cut`): every column holds its n pieces.
   */
  #splitTo(b: number, entries: Array<Entry | undefined>, j: number): Entry {
    const block = this.#joined[b] as JoinedBlock
    const x = block.index
    if (x !== undefined) {
      // Indexed by the worker: two slices an entry, nothing searched.
      while (entries.length <= j) entries.push(indexedEntry(block, x, entries.length))
      return entries[j]!
    }
    const at = entries.length === 0 ? (this.#at[b] = [0, 0, 0, 0]) : this.#at[b]!
    let s = at[0]
    let k = at[1]
    let o = at[2]
    let t = at[3]
    const seqs = block.seqs
    const keys = block.keys
    const ords = block.ords
    const texts = block.texts
    while (entries.length <= j) {
      const n = entries.length
      const last = n === block.n - 1
      // A seq is digits (`cut` checked): read in place, no piece made.
      let seq = 0
      for (let c = seqs.charCodeAt(s); c >= 48 && c <= 57; c = seqs.charCodeAt(++s)) seq = seq * 10 + (c - 48)
      const ke = last ? keys.length : keys.indexOf(US, k)
      const oe = last ? ords.length : ords.indexOf(US, o)
      const te = last ? texts.length : texts.indexOf(US, t)
      const ord = oe === o + 1 && ords.charCodeAt(o) === 48 ? 0 : +ords.slice(o, oe)
      entries.push(new SplitEntry(seq, keys.slice(k, ke), ord, block.oks.charCodeAt(n) === 49, texts.slice(t, te)))
      s++
      k = ke + 1
      o = oe + 1
      t = te + 1
    }
    at[0] = s
    at[1] = k
    at[2] = o
    at[3] = t
    return entries[j]!
  }

  /**
   * Lets go of the split entries of every block wholly before position `next` (all replayed and
   * released); they are split again if asked for.
   */
  passed(next: number): void {
    const starts = this.#starts
    let k = this.#kept
    while (k < this.#split.length && starts[k + 1]! <= next) {
      const j = this.#joined[k]
      if (j !== null && j !== undefined && !('passed' in j)) {
        // Its keys and ordinals stay (the keys counted by their entries, a divergence's message;
        // off the heap when the worker read it, `PassedUnit`); its outcomes, seqs and oks go: a
        // record's outcomes are not all held until its replay ends.
        this.#split[k] = null
        this.#at[k] = null
        this.#joined[k] = { passed: true, n: j.n, keys: j.keyBytes ?? j.keys, ords: j.ords }
      }
      k++
    }
    this.#kept = k
    // In the block the replay is in, the entry just released goes too: a record of a few entries
    // is one block, and its entries would otherwise outlive their release until its last.
    const entries = this.#joined[k] !== null ? this.#split[k] : null
    const j = next - 1 - starts[k]!
    if (entries !== null && entries !== undefined && j >= 0 && j < entries.length) entries[j] = undefined
  }

  /** Block `b`'s entries if it was read by row (kept whole), else null: a joined block is split in part, as replayed. */
  #whole(b: number): Entry[] | null {
    return this.#joined[b] === null ? this.#split[b]! as Entry[] : null
  }

  /** Calls `f` with the key and ordinal of every entry, in order, without splitting outcomes. */
  eachKey(f: (key: string, ord: number, i: number) => void): void {
    this.#all()
    for (let b = 0; b < this.#split.length; b++) {
      const start = this.#starts[b]!
      const entries = this.#whole(b)
      if (entries !== null) {
        for (let i = 0; i < entries.length; i++) f(entries[i]!.key, entries[i]!.ord, start + i)
        continue
      }
      const j = this.#joined[b]!
      const keys = textOf(j.keys).split(US)
      const ords = j.ords.split(US)
      for (let i = 0; i < keys.length; i++) f(keys[i]!, +ords[i]!, start + i)
    }
  }

  /**
   * The keys a finished replay counted by their entries (src/replay-keys.ts), at `positions` (the
   * replay's `implicit`, rising): searched in the record's keys when it released every entry
   * (`released`), else the keys at those positions. Keeps the blocks' keys alone, not their outcomes.
   */
  replayedKeys(positions: RisingRuns, released: boolean): ReplayedKeys {
    this.#all()
    const keys = this.#joined.map((j, b) => (j !== null ? j.keys : this.#whole(b)!.map((e) => e.key)))
    if (released) return new ReplayedKeys(keys)
    const starts = this.#starts
    const set = new Set<string>()
    let b = 0
    let split: readonly string[] | null = null
    positions.forEach((i) => {
      if (i >= starts[b + 1]!) {
        while (starts[b + 1]! <= i) b++
        split = null
      }
      const k = keys[b]!
      split ??= Array.isArray(k) ? k : textOf(k).split(US)
      set.add(split[i - starts[b]!]!)
    })
    return new ReplayedKeys(null, set)
  }

  /** Whether some key includes `text` (asked of a joined block's keys at once; of blocks to come, as they tell). */
  keysInclude(text: string): boolean {
    if (this.#include(0, text)) return true
    const pending = this.#pending
    if (pending === null) return false
    const known = pending.keysInclude(text)
    if (known !== null) return known
    const from = this.#split.length
    this.#all()
    return this.#include(from, text)
  }

  #include(from: number, text: string): boolean {
    for (let b = from; b < this.#split.length; b++) {
      const j = this.#joined[b]
      if (j !== null && j !== undefined ? j.keys.includes(text) : this.#whole(b)!.some((e) => e.key.includes(text))) return true
    }
    return false
  }

  /**
   * Every entry, split (a reader of the record whole, and the rare paths that read all of it):
   * units not split are split for it alone, not kept so. Not once a replay has passed a unit.
   */
  toArray(): Entry[] {
    this.#all()
    const out: Entry[] = []
    for (let b = 0; b < this.#split.length; b++) {
      if (b < this.#kept && this.#joined[b] !== null) throw letGo(this.#starts[b]!)
      const entries = this.#whole(b) ?? split(this.#joined[b] as JoinedBlock)!
      for (let i = 0; i < entries.length; i++) out.push(entries[i]!)
    }
    return out
  }
}

/**
 * A thread's record as a replay consumes it: the recorded entries in completion order, an index
 * by (key, ordinal), the requests held back, and the text of the divergence messages built from
 * them. The weft drives it (src/weft-replay.ts).
 */
import type { Call } from './call.js'
import type { Entry, RecordBlocks } from './replay-blocks.js'
import { decodeArgs } from './encoding.js'
import { valueText } from './value-text.js'

export type { Entry } from './replay-blocks.js'

/** The state of one replay: the next entry to release and the requests held back. */
export class Replay {
  /** The record, by position (src/replay-blocks.ts: split as the replay reaches it). */
  readonly record: RecordBlocks
  next = 0
  held: Call[] = []
  scheduled = false
  /** When set, recorded entries the thread never asks for are dropped instead of diverging. */
  skipUnrequested = false
  /**
   * Positions, in increasing order, of the entries that are the first of their key and whose call,
   * asked in recorded order, was counted by them rather than in the weft's counts (`firstCounted`).
   */
  readonly implicit = new RisingRuns()
  /** Positions of the entries by key and ordinal, built at the first lookup out of order. */
  #index: Map<string, Array<number | undefined>> | null = null

  constructor(record: RecordBlocks) {
    this.record = record
  }

  /** Whether an entry from `next` on is one the thread has not asked for yet. */
  unasked(): boolean {
    for (let i = this.next; this.record.has(i); i++) {
      const e = this.record.at(i)
      if (e === undefined) return false // its blocks stopped coming: the weave closed
      if (e.call === null) return true
    }
    return false
  }

  find(key: string, ord: number): Entry | undefined {
    const n = this.record.at(this.next)
    if (n !== undefined && n.call === null && n.ord === ord && n.key === key) return n
    // Behind the replay (or -1, none): released (never asked for again: ordinals only grow) or
    // dropped by a replay that continues past a divergence (a call of it now is one the record lacks).
    const at = this.positionOf(key, ord)
    return at < this.next ? undefined : this.record.at(at)
  }

  /** The position of the entry of `key` and `ord` in the record, or -1. */
  positionOf(key: string, ord: number): number {
    return this.#positions(key)?.[ord] ?? -1
  }

  /**
   * How many calls of `key` were counted by the record's entry of ordinal 0 (0 or 1): a record
   * holds each (key, ordinal) once, so only the first call of a key is ever counted so.
   */
  firstCounted(key: string): number {
    const at = this.#positions(key)?.[0]
    return at !== undefined && this.implicit.has(at) ? 1 : 0
  }

  #positions(key: string): Array<number | undefined> | undefined {
    if (this.#index === null) {
      const index = new Map<string, Array<number | undefined>>()
      this.record.eachKey((k, ord, i) => {
        let arr = index.get(k)
        if (arr === undefined) index.set(k, (arr = []))
        arr[ord] = i
      })
      this.#index = index
    }
    return this.#index.get(key)
  }
}

/**
 * Positions added in rising order, held as runs of consecutive ones (two numbers a run): a replay
 * in recorded order adds 0, 1, 2, … (each key called once), one run however long the record,
 * where an array of them held a number an entry and copied itself as it grew.
 */
export class RisingRuns {
  /** Each run's first position and one past its last, in turn. */
  readonly #bounds: number[] = []

  get empty(): boolean {
    return this.#bounds.length === 0
  }

  /** Adds `i`, greater than every position added before. */
  push(i: number): void {
    const b = this.#bounds
    const n = b.length
    if (n > 0 && i < b[n - 1]!) throw new RangeError(`position ${i} added after ${b[n - 1]! - 1}: positions are added rising`)
    if (n > 0 && b[n - 1] === i) b[n - 1] = i + 1
    else b.push(i, i + 1)
  }

  has(i: number): boolean {
    const b = this.#bounds
    // The last run starting at or before `i`.
    let lo = 0
    let hi = b.length / 2
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (b[2 * mid]! <= i) lo = mid + 1
      else hi = mid
    }
    return lo > 0 && i < b[2 * lo - 1]!
  }

  /** Calls `f` with each position, rising. */
  forEach(f: (i: number) => void): void {
    const b = this.#bounds
    for (let r = 0; r < b.length; r += 2) for (let i = b[r]!; i < b[r + 1]!; i++) f(i)
  }
}

/** Splits a key into its call name and argument text. */
export function splitKey(key: string): { call: string; args: string } {
  const i = key.indexOf(':')
  return { call: key.slice(0, i), args: key.slice(i + 1) }
}

/** `fs.readFile("a.txt")` from a key. */
export function describeKey(key: string, max = 120): string {
  const { call, args } = splitKey(key)
  let a = args.startsWith('[') ? args.slice(1, -1) : readable(args)
  if (a.length > max) a = a.slice(0, max) + '…'
  return `${call}(${a})`
}

/** Arguments that plain JSON could not hold (NaN, a Date, a Map), as the code writes them, not as they are encoded. */
function readable(args: string): string {
  // Shown cut short anyway: a huge one is not decoded for a message.
  if (args.length > 100_000) return args
  try {
    return decodeArgs(args).map(argText).join(',')
  } catch {
    return args
  }
}

/**
 * `v` as code writes it: `NaN`, `10n`, `Date("…")`, `Map([["k",1]])`, `Set([1])`,
 * `TypeError("…")`, an instance of a class as `Name{…}`, objects and arrays as JSON of those.
 */
function argText(v: unknown): string {
  if (v === null || typeof v !== 'object') return valueText(v)
  if (v instanceof Date) return `Date(${JSON.stringify(Number.isNaN(v.getTime()) ? 'Invalid Date' : v.toISOString())})`
  if (v instanceof Map) return `Map(${argText([...v.entries()])})`
  if (v instanceof Set) return `Set(${argText([...v.values()])})`
  if (v instanceof Error) return `${v.name}(${JSON.stringify(v.message)})`
  if (v instanceof RegExp) return String(v)
  if (Array.isArray(v)) return `[${v.map(argText).join(',')}]`
  if (ArrayBuffer.isView(v)) return `${v.constructor.name}(${argText(Array.from(v as unknown as ArrayLike<unknown>))})`
  const proto: unknown = Object.getPrototypeOf(v)
  const fields = `{${Object.entries(v).map(([k, x]) => `${JSON.stringify(k)}:${argText(x)}`).join(',')}}`
  return proto === Object.prototype || proto === null ? fields : `${(v.constructor as { name?: string } | undefined)?.name ?? 'Object'}${fields}`
}

/** How many characters of arguments a call shows in a list. */
const SHORT = 60

/** The first few items of a list, joined, and how many more there are. */
function list(items: string[], max = 3): string {
  const more = items.length - max
  return items.slice(0, max).join('; ') + (more > 0 ? ` and ${more} more` : '')
}

/** The recorded requests nearest to one the record lacks, for the divergence message. */
export function nearest(r: Replay, got: Call): string {
  const name = got.lib.name + '.' + got.method + ':'
  // Keys and ordinals only: the units the replay passed hold no more.
  const all: Array<{ key: string; ord: number }> = []
  r.record.eachKey((key, ord) => all.push({ key, ord }))
  const same = all.filter((e) => e.key.startsWith(name))
  const pool = same.length > 0 ? same : all
  const score = (k: string): number => {
    let i = 0
    while (i < k.length && i < got.key.length && k[i] === got.key[i]) i++
    return i
  }
  const best = [...pool].sort((a, b) => score(b.key) - score(a.key)).slice(0, 3)
  if (best.length === 0) return ''
  return ` Nearest recorded requests: ${best.map((e) => `${describeKey(e.key)} (ordinal ${e.ord})`).join('; ')}.`
}

/**
 * The message for a replay in which the thread asked for nothing the record lacks, yet not for
 * the next recorded request: it waits on calls the record holds later (reordered, or removed).
 */
export function reordered(r: Replay, expected: Entry, pending: readonly Call[]): string {
  const waiting = pending.map((c) => {
    const e = r.find(c.key, c.ord)
    const at = e !== undefined && e.call === c ? `, recorded later as outcome #${r.positionOf(c.key, c.ord) + 1}` : ''
    return `${describeKey(c.key, SHORT)} (ordinal ${c.ord}${at})`
  })
  const unasked: Entry[] = []
  for (let i = r.next; i < r.record.length; i++) {
    const e = r.record.at(i)
    if (e?.call === null) unasked.push(e)
  }
  const first = describeKey(expected.key, SHORT)
  return (
    `the record holds ${describeKey(expected.key)} (ordinal ${expected.ord}) as outcome #${r.next + 1} of ${r.record.lengthText} (seq ${expected.seq}), ` +
    `but the thread has not asked for it: it is waiting on ${list(waiting)}. ` +
    `Recorded requests it has not made: ${list(unasked.map((e) => `${describeKey(e.key, SHORT)} (ordinal ${e.ord})`))}. ` +
    `The calls look reordered: if the thread still makes ${first}, make it before ${describeKey(pending[0]!.key, SHORT)} again, as it did when recorded.`
  )
}

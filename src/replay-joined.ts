/**
 * The record's text as the resume reads it (src/replay-load.ts): a block of rows as one row of
 * joined columns, separated by US; its check and cut into units (`cut`), its entries split
 * (`split`), and the entry objects the replay sees. src/replay-blocks.ts holds a record of them.
 */
import type { Call } from './call.js'

/** A recorded outcome, as the replay sees it. */
export interface Entry {
  readonly seq: number
  readonly key: string
  readonly ord: number
  readonly ok: boolean
  /** The encoded outcome (from the journal), or undefined when `value` holds it (from a dump). */
  readonly text: string | undefined
  readonly value?: unknown
  call: Call | null
}

/**
 * An entry read from the journal (split from a joined block, or read by row: one shape). A class,
 * not an object literal: V8 tracks an object literal's allocation site and, once the objects made
 * there survive young (a resume makes each thread's first entry at open, and it waits there for
 * the thread's turn), allocates all later ones in the old generation ("pretenuring"). The million entries a replay makes and drops at once
 * then died old, and kept their young strings alive through every scavenge until the next full
 * GC (a resume of 10,000 x 100 promoted ~50 MB more, and took ~0.5 s more, measured with V8's
 * `--no-allocation-site-pretenuring`).
 */
export class SplitEntry implements Entry {
  call: Call | null = null
  constructor(
    readonly seq: number,
    readonly key: string,
    readonly ord: number,
    readonly ok: boolean,
    readonly text: string,
  ) {}
}

/** An entry read by row, `[seq, key, ord, ok, outcome, …]` (of the shape of those split from blocks: one shape for the weft to see). */
export function rowEntry(r: readonly [number, string, number, 0 | 1, string, ...unknown[]]): SplitEntry {
  return new SplitEntry(r[0], r[1], r[2], r[3] === 1, r[4])
}

/** Separator of the joined columns (U+001F): JSON text, which keys and outcomes are, never holds it raw. */
export const US = '\x1f'
export const US_CODE = 0x1f

/** A block's columns as SQLite joined them: n rows; seqs, keys, ords, outcomes separated by US; oks one '0' or '1' a row. */
export interface JoinedBlock {
  readonly n: number
  readonly seqs: string
  readonly keys: string
  readonly ords: string
  readonly oks: string
  readonly texts: string
  /** Where each entry is, from the worker that read it ahead (src/replay-ahead.ts `AheadBlock`). */
  readonly index?: Float64Array
  /** `keys` as UTF-8, likewise (kept once the replay has passed the block). */
  readonly keyBytes?: Buffer
}

/**
 * A unit the replay has passed: its keys and ordinals, US between. The keys of a block the
 * worker read ahead are its UTF-8 (`keyBytes`), off V8's heap: kept as strings, a million-entry
 * record's keys (the keys counted by their entries, src/replay-keys.ts) were copied by every
 * scavenge until promoted, ~10 % of its replay's time. Others stay as read (encoding the keys of
 * 10,000 resumed threads as they finish their replay cost more than it saved).
 */
export interface PassedUnit {
  readonly passed: true
  readonly n: number
  readonly keys: string | Buffer
  readonly ords: string
}

/** A column of a unit, joined: as read, or passed (UTF-8). */
export function textOf(column: string | Buffer): string {
  return typeof column === 'string' ? column : column.toString('utf8')
}

/** Rows of a unit, the part of a block let go whole once the replay has passed it. */
const UNIT = 256

/** Where each unit of `text`'s pieces begins (every UNIT-th piece), or null when it does not split into `n`. */
function cuts(text: string, n: number): number[] | null {
  const out = [0]
  let count = 1
  for (let i = text.indexOf(US); i !== -1; i = text.indexOf(US, i + 1)) {
    if (count % UNIT === 0) out.push(i + 1)
    count++
  }
  return count === n ? out : null
}

/** The pieces of unit `u` of `text`, cut at `at`. */
function piece(text: string, at: readonly number[], u: number): string {
  return u + 1 < at.length ? text.slice(at[u], at[u + 1]! - 1) : text.slice(at[u])
}

/**
 * Cuts a joined block into units of UNIT rows, checking that it splits cleanly into its rows,
 * seqs rising from after `after`; returns them and the block's last seq, or null when it does
 * not (read it by row).
 */
export function cut(b: JoinedBlock, after: number): { units: Array<JoinedBlock | Entry[]>; last: number } | null {
  const n = b.n
  if (b.oks.length !== n) return null
  // The seqs are checked in place (no piece made): a record of a few entries stays joined, as a
  // big one's units do, until the replay reaches it (10,000 threads resumed at once would
  // otherwise hold a million entries and their strings through every scavenge until replayed).
  const seqs = b.seqs
  const seqAt = [0]
  let prev = after
  let start = 0
  const len = seqs.length
  for (let i = 0; i < n; i++) {
    // A seq as SQLite writes an integer: digits (anything else is read by row).
    let seq = 0
    let at = start
    for (let c = seqs.charCodeAt(at); c >= 48 && c <= 57; c = seqs.charCodeAt(++at)) seq = seq * 10 + (c - 48)
    if (at === start || (at === len ? i !== n - 1 : seqs.charCodeAt(at) !== US_CODE || i === n - 1)) return null
    if (!(seq > prev)) return null
    prev = seq
    start = at + 1
    if ((i + 1) % UNIT === 0 && i + 1 < n) seqAt.push(start)
  }
  const keyAt = cuts(b.keys, n)
  const ordAt = cuts(b.ords, n)
  const textAt = cuts(b.texts, n)
  if (keyAt === null || ordAt === null || textAt === null) return null
  if (seqAt.length === 1) return { units: [b], last: prev }
  const units: Array<JoinedBlock | Entry[]> = []
  for (let u = 0; u < seqAt.length; u++) {
    const from = u * UNIT
    const len = Math.min(UNIT, n - from)
    units.push({
      n: len,
      seqs: piece(b.seqs, seqAt, u),
      keys: piece(b.keys, keyAt, u),
      ords: piece(b.ords, ordAt, u),
      oks: b.oks.slice(from, from + len),
      texts: piece(b.texts, textAt, u),
    })
  }
  return { units, last: prev }
}

/** A joined block's entries; null when a column does not split into its rows. */
export function split(b: JoinedBlock): Entry[] | null {
  const seqs = b.seqs.split(US)
  const keys = b.keys.split(US)
  const ords = b.ords.split(US)
  const texts = b.texts.split(US)
  const oks = b.oks
  if (seqs.length !== b.n || keys.length !== b.n || ords.length !== b.n || texts.length !== b.n) return null
  const out = new Array<Entry>(b.n)
  for (let i = 0; i < b.n; i++) {
    const o = ords[i]!
    out[i] = new SplitEntry(+seqs[i]!, keys[i]!, o === '0' ? 0 : +o, oks.charCodeAt(i) === 49, texts[i]!)
  }
  return out
}

/** Entry `i` of a block the worker indexed (`index`, src/replay-ahead.ts `AheadBlock`): two slices. */
export function indexedEntry(b: JoinedBlock, x: Float64Array, i: number): SplitEntry {
  const n = b.n
  return new SplitEntry(x[i]!, indexedKey(b, x, i), x[n + i]!, b.oks.charCodeAt(i) === 49, b.texts.slice(x[3 * n + 1 + i], x[3 * n + 2 + i]! - 1))
}

/** The key of entry `i` of a block the worker indexed. */
export function indexedKey(b: JoinedBlock, x: Float64Array, i: number): string {
  return b.keys.slice(x[2 * b.n + i], x[2 * b.n + i + 1]! - 1)
}

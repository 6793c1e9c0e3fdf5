/**
 * What a blocked thread waits for, read off the live wait calls it has pending: the built-in
 * waits of the mailbox (`take`, `peek`), the clock (`sleepUntil`) and threads (`join`, here or
 * across weaves). A thread waiting on anything else (a library's own wait, two joins at once) is
 * not passivated: nothing in SQLite would wake it.
 */
import { decodeArgs, decodeValue, encodeValue } from '../encoding.js'
import { matches } from '../message-shapes.js'
import { splitKey } from '../replay-record.js'
import { hasMarker } from '../secrets/marker.js'

/** What wakes a passivated thread (a row of the `passivated` table). */
export interface Wake {
  /** The soonest wall-clock time (ms) one of its waits ends, or null. */
  due: number | null
  /** It waits for a message (which one: `filter`). */
  mailbox: boolean
  /**
   * Which message wakes it, encoded (`wakesFor` reads it): the pattern of its receive (the
   * `match` of a take), or the number its predicate receive has looked up to (a peek after n);
   * null: any message (replay evaluates its receive again).
   */
  filter: string | null
  /** The thread whose end it waits for, or null. */
  joins: string | null
}

/** A filter as encoded: a take's pattern, or a peek's number. */
export type Filter = { match: unknown } | { after: number }

/** The filter of a mailbox wait, encoded; null when any message is to wake it. */
function filterOf(f: Filter): string | null {
  try {
    return encodeValue(f)
  } catch {
    return null
  }
}

/**
 * Whether message number `n` of encoded value `body` wakes a thread waiting with `filter`: it
 * matches the receive's pattern, or comes after what its predicate receive has looked at. A
 * superset of what the receive takes (the pattern is its own, decoded from the call's key, which
 * encodes it exactly); anything not understood wakes.
 */
export function wakesFor(filter: string | null, n: number, body: string): boolean {
  const f = readFilter(filter)
  if (f === null) return true
  if ('after' in f) return n > f.after
  try {
    return matches(decodeValue(body), f.match)
  } catch {
    // A body that does not decode: the receive decides.
    return true
  }
}

/** A filter as `filterOf` encoded it; null for none, or one not understood (any message wakes). */
export function readFilter(filter: string | null): Filter | null {
  if (filter === null) return null
  try {
    const f = decodeValue(filter) as Partial<{ match: unknown; after: unknown }>
    if (typeof f.after === 'number') return { after: f.after }
    if ('match' in f) return { match: f.match }
  } catch {
    // Not one this Raiment wrote.
  }
  return null
}

/**
 * One pending wait call: its library's name, method and journal key. Its arguments are read off
 * the key (a call lets go of its own once made, src/call.ts), so a wait keeps nothing for this.
 */
export interface WaitCall {
  readonly lib: { readonly name: string }
  readonly method: string
  readonly key: string
}

/** The arguments of a call, decoded from its key; null when they cannot be (a secret's digest). */
function argsOf(c: WaitCall): readonly unknown[] | null {
  try {
    const args = decodeArgs(splitKey(c.key).args)
    return Array.isArray(args) ? args : null
  } catch {
    return null
  }
}

/** A pending call of a weft, as passivation reads it (src/call.ts). */
interface Pending extends WaitCall {
  readonly started: number
  readonly answered: boolean
  readonly abortHook: unknown
  readonly nextPending: Pending | null
}

/**
 * The calls a thread waits on when it does nothing else: every call it made and that is not
 * settled is a live wait (it registered `onAbort`) still unanswered. 'busy' when it waits with
 * other work in flight (or outcomes to release); null when it waits on nothing.
 */
export function waitsOf<T extends Pending>(first: T | 'busy' | null): T[] | 'busy' | null {
  if (first === null || first === 'busy') return first
  const out: T[] = []
  let busy = false
  for (let c: Pending | null = first; c !== null; c = c.nextPending) {
    if (c.started !== 0 && !c.answered && c.abortHook !== null) out.push(c as T)
    else busy = true
  }
  return out.length === 0 ? null : busy ? 'busy' : out
}

/**
 * What wakes a thread blocked in `calls`, or null when something it waits for is not known here.
 * `nextMessage`: the number the next message into an inbox will have (a predicate receive's
 * number is of use only below it: a thread that moved here may have looked further on the weave
 * it left, where numbers ran higher).
 */
export function wakeOf(calls: readonly WaitCall[], nextMessage = Infinity): Wake | null {
  const w: Wake = { due: null, mailbox: false, filter: null, joins: null }
  let mailboxWaits = 0
  const until = (t: unknown): boolean => {
    // No time limit (none given, or `timeout: Infinity`): nothing is due.
    if (t === undefined || t === null || t === Infinity) return true
    if (typeof t !== 'number' || !Number.isFinite(t)) return false
    w.due = w.due === null ? t : Math.min(w.due, t)
    return true
  }
  for (const c of calls) {
    const m = `${c.lib.name}.${c.method}`
    const args = argsOf(c)
    if (args === null) return null
    if (m === 'mailbox.take') {
      w.mailbox = true
      const o = args[0] as { match?: unknown; until?: unknown } | undefined
      // A key with secrets masked in it (src/secrets/) does not hold the pattern itself.
      if (++mailboxWaits === 1 && o?.match !== undefined && !hasMarker(c.key)) w.filter = filterOf({ match: o.match })
      if (!until(o?.until)) return null
    } else if (m === 'mailbox.peek') {
      w.mailbox = true
      if (++mailboxWaits === 1 && typeof args[0] === 'number' && args[0] < nextMessage) w.filter = filterOf({ after: args[0] })
      if (!until(args[1])) return null
    } else if (m === 'clock.sleepUntil') {
      if (!until(args[0])) return null
    } else if (m === 'threads.join') {
      const id = args[0]
      if (typeof id !== 'string' || (w.joins !== null && w.joins !== id)) return null
      w.joins = id
    } else return null
  }
  // Two receives at once: any message may be for either.
  if (mailboxWaits > 1) w.filter = null
  return w
}

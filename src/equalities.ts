/**
 * superjson's referential equalities (`meta.referentialEqualities`: an object met at several
 * paths of a value, restored as one) that it writes and cannot restore:
 *
 * - NaN. superjson counts NaN as an object (its `isPrimitive` leaves NaN out), so the NaNs of
 *   one value are written as one object met several times. Read back, each of those paths is set
 *   to the first NaN again, and where it is a Map's key or a Set's member the old one is deleted
 *   first (`NaN !== NaN`): a Map keyed by NaN lost that entry, a Set moved its NaN to the end.
 * - Paths into what a codec wrote (src/codecs.ts: an Error inside a value), which superjson
 *   reads as the codec's value before it restores equalities, so the path no longer exists and
 *   the read threw. Records so written have equalities among the `error` codec's own annotations
 *   (an error whose fields held two NaNs or two equal bigints); the codec writes none now.
 *
 * Invariant: a payload is read without those equalities (each NaN is restored by its own value
 * annotation already; a codec's annotations are its own), every other equality kept. What is
 * written is left as it was: call arguments keep the keys their journals hold, and every record
 * and dump written so reads right.
 */

/** What superjson writes (`serialize`) and reads (`deserialize`). */
interface Payload {
  json: unknown
  meta?: { values?: unknown; referentialEqualities?: unknown; v?: unknown }
}

/**
 * `payload` without the referential equalities superjson cannot restore (a copy where there
 * were some; the payload itself otherwise, at the cost of one property test when it has none).
 */
export function restorableEqualities<P>(payload: P): P {
  const meta = (payload as Payload | null)?.meta
  const eq = meta?.referentialEqualities
  if (eq === undefined || eq === null || typeof eq !== 'object') return payload
  const read: Read = { json: (payload as Payload).json, values: meta!.values, legacy: !(typeof meta!.v === 'number' && meta!.v >= 1), coded: null }
  let kept: unknown
  if (Array.isArray(eq)) {
    // [paths equal to the root, other groups]: the root is no NaN (it holds the others).
    const [root, other] = eq as [unknown, Record<string, unknown> | undefined]
    if (other === undefined || other === null || typeof other !== 'object') return payload
    const o = keep(read, other)
    if (o === other) return payload
    kept = o === null ? [root] : [root, o]
  } else {
    const o = keep(read, eq as Record<string, unknown>)
    if (o === eq) return payload
    kept = o ?? undefined
  }
  return { ...(payload as Payload), meta: { ...meta, referentialEqualities: kept } } as P
}

interface Read {
  json: unknown
  values: unknown
  /** superjson's paths before its version 1 had no escapes. */
  legacy: boolean
  /** The paths a codec wrote (`['custom', name]`), made at the first need. */
  coded: string[][] | null
}

/** `groups` (by the path of the first of each) without those superjson cannot restore: itself when none is, null when all are. */
function keep(read: Read, groups: Record<string, unknown>): Record<string, unknown> | null {
  const out: Record<string, unknown> = {}
  let dropped = false
  for (const path of Object.keys(groups)) {
    const segs = segments(path, read.legacy)
    // NaN is written as the text 'NaN' (annotated `number`); nothing else that joins an equality is
    // (a Date is written as its ISO text, a bigint as digits, a Buffer as padded base64, the rest
    // as objects or arrays).
    if (at(read.json, segs) === 'NaN' || (read.coded ??= codedPaths(read.values, read.legacy)).some((c) => within(segs, c))) dropped = true
    else Object.defineProperty(out, path, { value: groups[path], enumerable: true, writable: true, configurable: true })
  }
  if (!dropped) return groups
  return Object.keys(out).length === 0 ? null : out
}

/** What `segs` name in the written json (a Map is there an array of [key, value], a Set an array); undefined for nothing. */
function at(json: unknown, segs: readonly string[]): unknown {
  let v = json
  for (const seg of segs) {
    if (v === null || typeof v !== 'object' || !Object.hasOwn(v, seg)) return undefined
    v = (v as Record<string, unknown>)[seg]
  }
  return v
}

/** Whether `path` lies inside what `coded` names. */
function within(path: readonly string[], coded: readonly string[]): boolean {
  if (path.length <= coded.length) return false
  for (let i = 0; i < coded.length; i++) if (path[i] !== coded[i]) return false
  return true
}

/**
 * The paths whose value annotation is a codec's (`['custom', name]`), from superjson's tree of
 * annotations: `[type]` or `[type, children]` at a node, children (and the root's) an object by
 * path relative to the node.
 */
function codedPaths(values: unknown, legacy: boolean): string[][] {
  const out: string[][] = []
  const walk = (tree: unknown, at: string[]): void => {
    if (tree === null || typeof tree !== 'object') return
    if (!Array.isArray(tree)) {
      for (const [k, sub] of Object.entries(tree)) walk(sub, [...at, ...segments(k, legacy)])
      return
    }
    const [type, children] = tree as [unknown, unknown]
    if (Array.isArray(type) && type[0] === 'custom') out.push(at)
    walk(children, at)
  }
  walk(values, [])
  return out
}

/** A superjson path's keys: joined by `.`, with `\.` and `\\` escaped (legacy: no escapes). */
function segments(path: string, legacy: boolean): string[] {
  if (legacy || !path.includes('\\')) return path.split('.')
  const out: string[] = []
  let seg = ''
  for (let i = 0; i < path.length; i++) {
    const c = path[i]!
    if (c === '\\' && i + 1 < path.length) seg += path[++i]!
    else if (c === '.') {
      out.push(seg)
      seg = ''
    } else seg += c
  }
  out.push(seg)
  return out
}

/**
 * How values are written into the journal.
 *
 * Invariant: `decodeValue(encodeValue(v))` is deep-equal to `v`, with the same classes, for every
 * value this module accepts (a hole in an array comes back as `undefined`, an object without a
 * prototype as a plain object, and a field of an Error that cannot be recorded as its text, as a
 * thrown error's); anything it cannot round-trip is refused with `UnrecordableValue` naming the
 * path, never recorded lossily.
 *
 * Text forms: `U` is undefined; `J…` is JSON (used whenever JSON represents the value exactly,
 * since it is ~4.5× faster than superjson); `S…` is superjson (Date, Map, Set, BigInt, undefined
 * inside objects, typed arrays, Buffers, errors, registered classes; Raiment's codecs are in
 * src/codecs.ts); `E…` is superjson whose object keys are escaped (see escapeKey), written only
 * when a key is one superjson refuses. An Error inside a value is written as its record (the
 * `error` codec); one written before that codec, in superjson's own form, still reads as it did:
 * an Error with its name and message.
 *
 * Call arguments are encoded canonically (object keys sorted) so that the same request always
 * yields the same journal key. Errors are recorded as plain records: src/error-records.ts.
 */
import superjson, { type SuperJSONResult } from 'superjson'
import { bufferCodec, registerCodecs, typedArrayProtos, type TypedArray } from './codecs.js'
import * as errors from './errors.js'
import { UnrecordableValue } from './errors.js'
import { restorableEqualities } from './equalities.js'

export { registerCodecs, writingErrors } from './codecs.js'

/**
 * How deep values inside each other (arrays, objects, maps, sets) may be where superjson writes
 * them: it reads and writes them by recursion, and failed with a RangeError past ~2,000.
 */
export const MAX_DEPTH = 1000

/** Thrown (preallocated, never escapes) when a value needs superjson. */
const NEEDS_SUPERJSON = new Error('needs superjson')

const registeredClasses = new Set<object>()
/** The class each name decodes to, registered with registerClass (errors: `errorClasses`). */
const classNames = new Map<string, new (...args: never[]) => object>()
/** While above 0, Raiment imports an I/O library: a name already registered keeps its class (`keepingRegistered`). */
let keeping = 0
/** Error classes by name (built-ins and those registered), for decoding recorded errors (src/error-records.ts). */
export const errorClasses = new Map<string, new (...args: never[]) => Error>()

for (const C of [Error, TypeError, RangeError, SyntaxError, ReferenceError, EvalError, URIError, AggregateError]) {
  errorClasses.set(C.name, C)
}
for (const C of Object.values(errors)) {
  if (typeof C === 'function' && C.prototype instanceof Error) {
    errorClasses.set(C.name, C)
  }
}

/**
 * Lets instances of `cls` be recorded (as arguments, outcomes, params or results) and come
 * back from the journal as instances of the same class. Register the class under the same name
 * in every process that replays the record.
 * @example registerClass(Money, 'Money')
 */
export function registerClass(cls: new (...args: never[]) => object, name = cls.name): void {
  if (cls.prototype instanceof Error) {
    registerError(cls as new (...args: never[]) => Error, name)
    return
  }
  if ((cls as unknown) === Buffer) {
    // A Buffer is recorded without it (the `buffer` codec); registered, as an error once told
    // users to, its values recorded then as a class (its bytes as fields) read as they did, and
    // its call arguments keep the keys they were recorded with.
    decodeAs(superjson, name, cls)
    keyJson.registerClass(cls, name)
    return
  }
  superjson.registerClass(cls, name)
  keyJson.registerClass(cls, name)
  registeredClasses.add(cls.prototype as object)
  const kept = keeping > 0 ? classNames.get(name) : undefined
  // Both copies are recorded under the name (the library's instances stay recordable); the name
  // still decodes to the class registered first.
  if (kept !== undefined && kept !== cls) {
    decodeAs(superjson, name, kept)
    decodeAs(keyJson, name, kept)
  } else classNames.set(name, cls)
}

/**
 * Makes `name` decode to `cls` again in `sj` (a class registered already is not registered
 * twice, so its registry's map from names is set here; test/encoding.property.test.ts holds it).
 */
function decodeAs(sj: object, name: string, cls: unknown): void {
  // (superjson's default export is its class; its static methods use its default instance.)
  const instance = (sj as { defaultInstance?: object }).defaultInstance ?? sj
  ;(instance as { classRegistry?: { kv?: { keyToValue?: Map<string, unknown> } } }).classRegistry?.kv?.keyToValue?.set(name, cls)
}

/**
 * Lets a recorded error be re-thrown, on replay and resume, as an instance of `cls` (same class,
 * name, message and own fields such as `code`). Unregistered error classes come back as `Error`
 * with the recorded `name`.
 */
export function registerError(cls: new (...args: never[]) => Error, name = cls.name): void {
  if (keeping > 0 && errorClasses.has(name)) return
  errorClasses.set(name, cls)
}

/**
 * @internal Runs `load` (Raiment importing an I/O library module) with every name already
 * registered keeping its class. A test runner that loads modules its own way (vitest) gives the
 * test one copy of a library's module and Raiment's import another: the classes the test
 * imported (and registered first) stay those that recorded errors and values decode to, so
 * `instanceof` holds in the test.
 */
export async function keepingRegistered<T>(load: () => Promise<T>): Promise<T> {
  keeping++
  try {
    return await load()
  } finally {
    keeping--
  }
}

const plainProtos = new Set<unknown>([Object.prototype, null])

/** Canonical JSON of a value that JSON represents exactly; throws NEEDS_SUPERJSON otherwise. */
function canonJson(v: unknown): string {
  switch (typeof v) {
    case 'string':
      return JSON.stringify(v)
    case 'number':
      // A finite number's JSON text is its string (ECMA-262 JSON.stringify), made faster.
      if (Number.isFinite(v) && !Object.is(v, -0)) return String(v)
      throw NEEDS_SUPERJSON
    case 'boolean':
      return v ? 'true' : 'false'
    case 'object': {
      if (v === null) return 'null'
      if (Array.isArray(v)) {
        let out = '['
        for (let i = 0; i < v.length; i++) {
          if (i > 0) out += ','
          if (!(i in v)) throw NEEDS_SUPERJSON
          out += canonJson(v[i])
        }
        return out + ']'
      }
      if (!plainProtos.has(Object.getPrototypeOf(v))) throw NEEDS_SUPERJSON
      const keys = Object.keys(v).sort()
      let out = '{'
      for (let i = 0; i < keys.length; i++) {
        const k = keys[i]!
        if (i > 0) out += ','
        out += JSON.stringify(k) + ':' + canonJson((v as Record<string, unknown>)[k])
      }
      return out + '}'
    }
    default:
      throw NEEDS_SUPERJSON
  }
}

/** Does JSON represent `v` exactly (so JSON.parse(JSON.stringify(v)) is deep-equal to it)? */
function jsonExact(v: unknown): boolean {
  switch (typeof v) {
    case 'string':
    case 'boolean':
      return true
    case 'number':
      return Number.isFinite(v) && !Object.is(v, -0)
    case 'object': {
      if (v === null) return true
      if (Array.isArray(v)) {
        for (let i = 0; i < v.length; i++) if (!(i in v) || !jsonExact(v[i])) return false
        return true
      }
      if (!plainProtos.has(Object.getPrototypeOf(v))) return false
      for (const k in v) if (!jsonExact((v as Record<string, unknown>)[k])) return false
      return true
    }
    default:
      return false
  }
}

registerCodecs(superjson)

/**
 * The superjson of call arguments: without the codecs above, as keys were first written; a
 * Buffer, refused before, is written by the `buffer` codec.
 */
const keyJson = new superjson()
keyJson.registerCustom<Buffer, string>(bufferCodec, 'buffer')

function describe(v: unknown): string {
  if (typeof v === 'function') return `a function (${(v as { name?: string }).name || 'anonymous'})`
  if (typeof v === 'symbol') return `a symbol (${String(v)})`
  const proto = Object.getPrototypeOf(v) as { constructor?: { name?: string } } | null
  return `an instance of an unregistered class (${proto?.constructor?.name ?? 'unknown'})`
}

/**
 * Keys superjson refuses inside a value (its guards against prototype pollution) are written
 * with a NUL before them, and so are keys that begin with a NUL, so that unescapeKeys gives back
 * exactly the keys there were. A value with such a key is tagged `E` instead of `S`.
 */
const ESC = '\u0000'

function needsEscape(k: string): boolean {
  return k === '__proto__' || k === 'constructor' || k === 'prototype' || k.charCodeAt(0) === 0
}

/** What one prepare walk carries. */
export interface Walk {
  /**
   * Call arguments: keys sorted, and written exactly as before the `bytes` and `invalid-date`
   * codecs, the copies and the holes written as `undefined` (each call's key must stay the text
   * its record holds, so that a thread recorded by an earlier version resumes).
   */
  sortKeys: boolean
  seen: Set<object>
  /** Set when a key was escaped: the text is tagged `E`. */
  escaped: boolean
}

export function walk(sortKeys: boolean): Walk {
  return { sortKeys, seen: new Set(), escaped: false }
}

/** Sets an own field, also one named `__proto__` (which an assignment would take as the prototype). */
export function setOwn(o: Record<string, unknown>, k: string, v: unknown): void {
  if (k === '__proto__') Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true })
  else o[k] = v
}

/**
 * Checks that superjson can round-trip `v` exactly, and returns a copy whose plain-object keys
 * are sorted when `w.sortKeys` (so the encoding is canonical) and escaped where superjson would
 * refuse them. Throws UnrecordableValue naming the path.
 */
export function prepare(v: unknown, path: string, w: Walk): unknown {
  if (v === null) return v
  const t = typeof v
  if (t === 'function' || t === 'symbol') throw new UnrecordableValue(path, describe(v))
  if (t !== 'object') return v
  const o = v as object
  if (w.seen.has(o)) throw new UnrecordableValue(path, 'a circular reference')
  // `seen` holds the objects on the path to `o`: their number is its depth.
  if (w.seen.size > MAX_DEPTH) throw tooDeep(path)
  w.seen.add(o)
  try {
    if (Array.isArray(o)) {
      if (w.sortKeys) return o.map((x, i) => prepare(x, `${path}[${i}]`, w))
      // A hole becomes undefined (superjson would write it as null).
      const copy = new Array<unknown>(o.length)
      for (let i = 0; i < o.length; i++) copy[i] = i in o ? prepare(o[i], `${path}[${i}]`, w) : undefined
      return copy
    }
    const proto = Object.getPrototypeOf(o) as unknown
    if (plainProtos.has(proto)) {
      const keys = Object.keys(o)
      if (w.sortKeys) keys.sort()
      const copy: Record<string, unknown> = {}
      for (const k of keys) {
        const x = prepare((o as Record<string, unknown>)[k], `${path}.${k}`, w)
        if (needsEscape(k)) {
          w.escaped = true
          copy[ESC + k] = x
        } else {
          copy[k] = x
        }
      }
      return copy
    }
    if (o instanceof Map) {
      let i = 0
      const copy = new Map()
      for (const [k, x] of o) {
        copy.set(prepare(k, `${path}.keys[${i}]`, w), prepare(x, `${path}.get(${i})`, w))
        i++
      }
      return copy
    }
    if (o instanceof Set) {
      let i = 0
      const copy = new Set()
      for (const x of o) copy.add(prepare(x, `${path}.values[${i++}]`, w))
      return copy
    }
    if (w.sortKeys && (typedArrayProtos.has(proto) || proto === Buffer.prototype || proto === Date.prototype || proto === RegExp.prototype || proto === URL.prototype)) return o
    // A copy: superjson restores an object met twice by its paths, and puts a wrong one back
    // inside a Set (`{ a: new Set([d1, d2]), b: new Set([d1, d2]) }` gave b two d2s).
    if (typedArrayProtos.has(proto)) return (o as TypedArray).slice()
    if (proto === Buffer.prototype) return Buffer.from(o as Buffer)
    if (proto === Date.prototype) return new Date((o as Date).getTime())
    if (proto === RegExp.prototype) return new RegExp((o as RegExp).source, (o as RegExp).flags)
    if (proto === URL.prototype) return new URL((o as URL).href)
    if (o instanceof Error) return o
    if (registeredClasses.has(proto as object)) return o
    throw new UnrecordableValue(path, describe(o))
  } finally {
    w.seen.delete(o)
  }
}

/** UnrecordableValue for a value nested too deeply at `path` (shortened: it names every level). */
function tooDeep(path: string): UnrecordableValue {
  const at = path.length > 80 ? `${path.slice(0, 80)}…` : path
  return new UnrecordableValue(
    at,
    `nested more than ${MAX_DEPTH.toLocaleString('en-US')} levels deep (arrays, objects, maps or sets inside each other)`,
    'Record it flatter: a list of items with parent ids, say, or a string the thread parses.',
  )
}

/** The superjson text of what prepare made, tagged `S`, or `E` when keys were escaped. */
export function superText(prepared: unknown, w: Walk, path: string): string {
  try {
    return (w.escaped ? 'E' : 'S') + (w.sortKeys ? keyJson : superjson).stringify(prepared)
  } catch (e) {
    // The stack overflowed (a registered class's fields, which prepare does not walk, nest deeply).
    if (e instanceof RangeError) throw tooDeep(path)
    // Left: a key superjson refuses among the own fields of a registered class's instance.
    throw new UnrecordableValue(path, `a value superjson refuses (${(e as Error).message})`)
  }
}

/**
 * Gives back the keys escaped by prepare (or escapeKeys), in a value superjson decoded. Plain
 * objects, arrays, maps and sets are rebuilt; anything else is returned as it is.
 */
export function unescapeKeys(v: unknown): unknown {
  if (v === null || typeof v !== 'object') return v
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) if (i in v) v[i] = unescapeKeys(v[i])
    return v
  }
  const proto = Object.getPrototypeOf(v) as unknown
  if (plainProtos.has(proto)) {
    const out: Record<string, unknown> = {}
    for (const k of Object.keys(v)) setOwn(out, k.charCodeAt(0) === 0 ? k.slice(1) : k, unescapeKeys((v as Record<string, unknown>)[k]))
    return out
  }
  if (v instanceof Map) return new Map([...(v as Map<unknown, unknown>)].map(([k, x]) => [unescapeKeys(k), unescapeKeys(x)]))
  if (v instanceof Set) return new Set([...(v as Set<unknown>)].map(unescapeKeys))
  return v
}

/**
 * Escapes, as prepare does, the keys superjson refuses, in a value that is not checked (a dump's
 * decoded values, which may hold stand-ins for classes this process does not know). Returns the
 * value itself when nothing needed escaping.
 */
export function escapeKeys(v: unknown, seen = new Set<object>()): unknown {
  if (v === null || typeof v !== 'object' || seen.has(v)) return v
  seen.add(v)
  try {
    if (Array.isArray(v)) {
      let out: unknown[] | undefined
      for (let i = 0; i < v.length; i++) {
        if (!(i in v)) continue
        const x = escapeKeys(v[i], seen)
        if (x !== v[i]) (out ??= v.slice())[i] = x
      }
      return out ?? v
    }
    const proto = Object.getPrototypeOf(v) as unknown
    if (plainProtos.has(proto)) {
      let changed = false
      const out: Record<string, unknown> = {}
      for (const k of Object.keys(v)) {
        const x0 = (v as Record<string, unknown>)[k]
        const x = escapeKeys(x0, seen)
        if (needsEscape(k)) {
          changed = true
          out[ESC + k] = x
        } else {
          changed ||= x !== x0
          out[k] = x
        }
      }
      return changed ? out : v
    }
    if (v instanceof Map) {
      const entries = [...(v as Map<unknown, unknown>)]
      const out = entries.map(([k, x]) => [escapeKeys(k, seen), escapeKeys(x, seen)] as const)
      return out.some(([k, x], i) => k !== entries[i]![0] || x !== entries[i]![1]) ? new Map(out) : v
    }
    if (v instanceof Set) {
      const values = [...(v as Set<unknown>)]
      const out = values.map((x) => escapeKeys(x, seen))
      return out.some((x, i) => x !== values[i]) ? new Set(out) : v
    }
    return v
  } finally {
    seen.delete(v)
  }
}

/**
 * The canonical text of a call's arguments: the same request always gives the same text.
 * @throws UnrecordableValue naming the argument path (`args[1].onDone`)
 */
export function encodeArgs(args: readonly unknown[]): string {
  try {
    return canonJson(args)
  } catch (e) {
    // A RangeError: a circular reference, which prepare names (UnrecordableValue).
    if (e !== NEEDS_SUPERJSON && !(e instanceof RangeError)) throw e
  }
  const w = walk(true)
  return superText(prepare(args, 'args', w), w, 'args')
}

/** Decodes what encodeArgs wrote. */
export function decodeArgs(text: string): unknown[] {
  return decodeTagged(text, () => JSON.parse(text)) as unknown[]
}

/**
 * Encodes a value (an outcome, params or a result) exactly, or throws UnrecordableValue.
 * @param path how to name the value in an error (`params`, `outcome of fs.stat`)
 */
export function encodeValue(v: unknown, path = 'value'): string {
  if (v === undefined) return 'U'
  if (typeof v === 'number' && Number.isFinite(v) && !Object.is(v, -0)) return 'J' + String(v)
  try {
    if (jsonExact(v)) return 'J' + JSON.stringify(v)
  } catch (e) {
    // The stack overflowed: a circular value, or one nested very deeply; prepare names which.
    if (!(e instanceof RangeError)) throw e
  }
  const w = walk(false)
  return superText(prepare(v, path, w), w, path)
}

/** Decodes what encodeValue wrote. */
export function decodeValue(text: string): unknown {
  const tag = text.charCodeAt(0)
  if (tag === 74 /* J */) return digits(text) ?? JSON.parse(text.slice(1))
  if (tag === 85 /* U */) return undefined
  return decodeTagged(text, () => superjson.parse(text.slice(1)))
}

/**
 * The number of `J` and up to 15 digits with no leading zero (a count, a time stamp: exact as a
 * double), as JSON.parse reads it, without the slice and the parser; undefined for anything else.
 */
function digits(text: string): number | undefined {
  const len = text.length
  if (len < 2 || len > 16 || (len > 2 && text.charCodeAt(1) === 48)) return undefined
  let n = 0
  for (let i = 1; i < len; i++) {
    const c = text.charCodeAt(i) - 48
    if (c < 0 || c > 9) return undefined
    n = n * 10 + c
  }
  return n
}

/**
 * Decodes superjson text tagged `S` or `E` (with `sj`, which may know stand-in classes);
 * anything else is decoded by `other`. Read as superjson's `parse` does, without the equalities
 * of NaN (src/equalities.ts).
 */
export function decodeTagged(text: string, other: () => unknown, sj: Pick<superjson, 'deserialize'> = superjson): unknown {
  const tag = text.charCodeAt(0)
  if (tag === 83 /* S */) return readSuper(sj, text)
  if (tag === 69 /* E */) return unescapeKeys(readSuper(sj, text))
  return other()
}

/** The superjson text after the tag, read by `sj` without the equalities of NaN. */
function readSuper(sj: Pick<superjson, 'deserialize'>, text: string): unknown {
  return sj.deserialize(restorableEqualities(JSON.parse(text.slice(1)) as SuperJSONResult), { inPlace: true })
}

/**
 * How values are written into the journal.
 *
 * Invariant: `decodeValue(encodeValue(v))` is deep-equal to `v`, with the same classes, for every
 * value this module accepts; anything it cannot round-trip exactly is refused with
 * `UnrecordableValue` naming the path, never recorded lossily.
 *
 * Text forms: `U` is undefined; `J…` is JSON (used whenever JSON represents the value exactly,
 * since it is ~4.5× faster than superjson); `S…` is superjson (Date, Map, Set, BigInt, undefined
 * inside objects, typed arrays, errors, registered classes).
 *
 * Call arguments are encoded canonically (object keys sorted) so that the same request always
 * yields the same journal key.
 */
import superjson from 'superjson'
import * as errors from './errors.js'
import { UnrecordableValue } from './errors.js'

/** Thrown (preallocated, never escapes) when a value needs superjson. */
const NEEDS_SUPERJSON = new Error('needs superjson')

const registeredClasses = new Set<object>()
const errorClasses = new Map<string, new (...args: never[]) => Error>()

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
  superjson.registerClass(cls, name)
  registeredClasses.add(cls.prototype as object)
}

/**
 * Lets a recorded error be re-thrown, on replay and resume, as an instance of `cls` (same class,
 * name, message and own fields such as `code`). Unregistered error classes come back as `Error`
 * with the recorded `name`.
 */
export function registerError(cls: new (...args: never[]) => Error, name = cls.name): void {
  errorClasses.set(name, cls)
}

const plainProtos = new Set<unknown>([Object.prototype, null])

/** Canonical JSON of a value that JSON represents exactly; throws NEEDS_SUPERJSON otherwise. */
function canonJson(v: unknown): string {
  switch (typeof v) {
    case 'string':
      return JSON.stringify(v)
    case 'number':
      if (Number.isFinite(v) && !Object.is(v, -0)) return JSON.stringify(v)
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

const typedArrayProtos = new Set<unknown>(
  [Int8Array, Uint8Array, Uint8ClampedArray, Int16Array, Uint16Array, Int32Array, Uint32Array,
    Float32Array, Float64Array, BigInt64Array, BigUint64Array].map((C) => C.prototype),
)
const builtinProtos = new Set<unknown>([Date.prototype, RegExp.prototype, URL.prototype])

function describe(v: unknown): string {
  if (typeof v === 'function') return `a function (${(v as { name?: string }).name || 'anonymous'})`
  if (typeof v === 'symbol') return `a symbol (${String(v)})`
  const proto = Object.getPrototypeOf(v) as { constructor?: { name?: string } } | null
  return `an instance of an unregistered class (${proto?.constructor?.name ?? 'unknown'})`
}

/**
 * Checks that superjson can round-trip `v` exactly, and returns a copy whose plain-object keys
 * are sorted (so the encoding is canonical). Throws UnrecordableValue naming the path.
 */
function prepare(v: unknown, path: string, sortKeys: boolean, seen: Set<object>): unknown {
  if (v === null) return v
  const t = typeof v
  if (t === 'function' || t === 'symbol') throw new UnrecordableValue(path, describe(v))
  if (t !== 'object') return v
  const o = v as object
  if (seen.has(o)) throw new UnrecordableValue(path, 'a circular reference')
  seen.add(o)
  try {
    if (Array.isArray(o)) return o.map((x, i) => prepare(x, `${path}[${i}]`, sortKeys, seen))
    const proto = Object.getPrototypeOf(o) as unknown
    if (plainProtos.has(proto)) {
      const keys = Object.keys(o)
      if (sortKeys) keys.sort()
      const copy: Record<string, unknown> = {}
      for (const k of keys) copy[k] = prepare((o as Record<string, unknown>)[k], `${path}.${k}`, sortKeys, seen)
      return copy
    }
    if (o instanceof Map) {
      let i = 0
      const copy = new Map()
      for (const [k, x] of o) {
        copy.set(prepare(k, `${path}.keys[${i}]`, sortKeys, seen), prepare(x, `${path}.get(${i})`, sortKeys, seen))
        i++
      }
      return copy
    }
    if (o instanceof Set) {
      let i = 0
      const copy = new Set()
      for (const x of o) copy.add(prepare(x, `${path}.values[${i++}]`, sortKeys, seen))
      return copy
    }
    if (builtinProtos.has(proto) || typedArrayProtos.has(proto)) return o
    if (o instanceof Error) return o
    if (registeredClasses.has(proto as object)) return o
    throw new UnrecordableValue(path, describe(o))
  } finally {
    seen.delete(o)
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
    if (e !== NEEDS_SUPERJSON) throw e
  }
  return 'S' + superjson.stringify(prepare(args, 'args', true, new Set()))
}

/** Decodes what encodeArgs wrote. */
export function decodeArgs(text: string): unknown[] {
  return (text.startsWith('S') ? superjson.parse(text.slice(1)) : JSON.parse(text)) as unknown[]
}

/**
 * Encodes a value (an outcome, params or a result) exactly, or throws UnrecordableValue.
 * @param path how to name the value in an error (`params`, `outcome of fs.stat`)
 */
export function encodeValue(v: unknown, path = 'value'): string {
  if (v === undefined) return 'U'
  if (jsonExact(v)) return 'J' + JSON.stringify(v)
  return 'S' + superjson.stringify(prepare(v, path, false, new Set()))
}

/** Decodes what encodeValue wrote. */
export function decodeValue(text: string): unknown {
  const tag = text.charCodeAt(0)
  if (tag === 74 /* J */) return JSON.parse(text.slice(1))
  if (tag === 85 /* U */) return undefined
  return superjson.parse(text.slice(1))
}

interface ErrorRecord {
  name: string
  message: string
  stack?: string | undefined
  fields: Record<string, unknown>
  cause?: ErrorRecord | { value: unknown }
}

function errorRecord(e: unknown, depth = 0): ErrorRecord {
  if (!(e instanceof Error)) {
    return { name: 'Error', message: `non-error thrown: ${safeString(e)}`, fields: { thrown: safeValue(e) } }
  }
  const fields: Record<string, unknown> = {}
  for (const k of Object.keys(e)) {
    if (k === 'message' || k === 'stack' || k === 'cause') continue
    fields[k] = safeValue((e as unknown as Record<string, unknown>)[k])
  }
  const rec: ErrorRecord = { name: e.name, message: e.message, stack: e.stack, fields }
  if (e.cause !== undefined && depth < 5) {
    rec.cause = e.cause instanceof Error ? errorRecord(e.cause, depth + 1) : { value: safeValue(e.cause) }
  }
  return rec
}

function safeValue(v: unknown): unknown {
  try {
    prepare(v, 'field', false, new Set())
    return v
  } catch {
    return safeString(v)
  }
}

function safeString(v: unknown): string {
  try {
    return String(v)
  } catch {
    return typeof v
  }
}

function fromRecord(rec: ErrorRecord): Error {
  const C = errorClasses.get(rec.name) ?? Error
  const e = Object.create(C.prototype as object) as Error
  Object.defineProperty(e, 'message', { value: rec.message, writable: true, configurable: true, enumerable: false })
  if (rec.stack !== undefined) {
    Object.defineProperty(e, 'stack', { value: rec.stack, writable: true, configurable: true, enumerable: false })
  }
  if (e.name !== rec.name) {
    Object.defineProperty(e, 'name', { value: rec.name, writable: true, configurable: true, enumerable: false })
  }
  Object.assign(e, rec.fields)
  if (rec.cause !== undefined) {
    const cause = 'value' in rec.cause ? rec.cause.value : fromRecord(rec.cause)
    Object.defineProperty(e, 'cause', { value: cause, writable: true, configurable: true, enumerable: false })
  }
  return e
}

/** Encodes a thrown value so decodeError gives back the same class, name, message and own fields. */
export function encodeError(e: unknown): string {
  return 'S' + superjson.stringify(errorRecord(e))
}

/** Rebuilds an error recorded by encodeError. */
export function decodeError(text: string): Error {
  return fromRecord(decodeValue(text) as ErrorRecord)
}

/** The plain record of an error, for dumps and the CLI. */
export function errorToRecord(e: unknown): ErrorRecord {
  return errorRecord(e)
}

/** Rebuilds an error from errorToRecord's output. */
export function errorFromRecord(rec: ErrorRecord): Error {
  return fromRecord(rec)
}

export type { ErrorRecord }

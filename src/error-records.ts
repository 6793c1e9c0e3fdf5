/**
 * Errors in the journal: a thrown value recorded as a plain record (class name, message, stack,
 * own fields, cause) and rebuilt as an instance of the same class (built-in or registered with
 * `registerError`, src/encoding.ts), for outcomes, thread ends, dumps and the CLI; and an Error
 * inside a value (the `error` codec of src/encoding.ts), whose record is the same. An
 * AggregateError's `errors` (not an enumerable field) are recorded too, each as a cause is; a
 * record made before they were has none, and comes back without them, as it was handed live.
 */
import { decodeValue, errorClasses, prepare, setOwn, superText, walk, writingErrors } from './encoding.js'
import { valueText } from './value-text.js'

interface ErrorRecord {
  name: string
  message: string
  stack?: string | undefined
  fields: Record<string, unknown>
  cause?: ErrorRecord | { value: unknown }
  /** An AggregateError's `errors`, each an error's record or `{ value }` (a thrown value that is not an Error). */
  errors?: Array<ErrorRecord | { value: unknown }>
  /** The weave failed the thread with it (a divergence, a type it cannot load, a linked exit): its code did not throw it. */
  weave?: true
}

/** Errors a weave fails a thread with, its code not having thrown them (src/record-end.ts). */
const imposed = new WeakSet<object>()

/** Marks `e` as an error the weave fails a thread with: its record says so (`weave: true`). */
export function imposedByWeave<E extends Error>(e: E): E {
  imposed.add(e)
  return e
}

function errorRecord(e: unknown, depth = 0): ErrorRecord {
  if (!(e instanceof Error)) return nonErrorRecord(e)
  const fields: Record<string, unknown> = {}
  for (const k of Object.keys(e)) {
    if (k === 'message' || k === 'stack' || k === 'cause') continue
    setOwn(fields, k, safeValue((e as unknown as Record<string, unknown>)[k]))
  }
  const rec: ErrorRecord = { name: e.name, message: e.message, stack: e.stack, fields }
  if (depth === 0 && imposed.has(e)) rec.weave = true
  // An own cause that is undefined is kept too (superjson's Error gives one: an argument a dump decoded).
  if ((e.cause !== undefined || Object.hasOwn(e, 'cause')) && depth < 5) {
    rec.cause = inner(e.cause, depth)
  }
  // (An enumerable `errors` is among the fields already.)
  if (e instanceof AggregateError && Array.isArray(e.errors) && !Object.prototype.propertyIsEnumerable.call(e, 'errors') && depth < 5) {
    rec.errors = (e.errors as unknown[]).map((x) => inner(x, depth))
  }
  return rec
}

/** The record of a cause, or of an AggregateError's item, of an error `depth` deep. */
function inner(v: unknown, depth: number): ErrorRecord | { value: unknown } {
  return v instanceof Error ? errorRecord(v, depth + 1) : { value: safeValue(v) }
}

/**
 * The record of a thrown value that is not an Error: an Error whose `thrown` field holds it. Of
 * an object (a library's `{ code: 'rate_limit', message: '…' }`), a string `code` is kept as the
 * Error's code (so retryOn, exit messages and catch blocks see it, live and on replay) and a
 * string `message` is its text.
 */
function nonErrorRecord(e: unknown): ErrorRecord {
  const fields: Record<string, unknown> = {}
  let text = safeString(e)
  if (typeof e === 'object' && e !== null) {
    try {
      const { code, message } = e as { code?: unknown; message?: unknown }
      if (typeof code === 'string') fields['code'] = code
      text = typeof message === 'string' ? message : valueText(e)
    } catch {
      // A getter that throws: the object as String shows it.
    }
  }
  fields['thrown'] = safeValue(e)
  return { name: 'Error', message: `non-error thrown: ${text.length > MAX_TEXT ? `${text.slice(0, MAX_TEXT)}…` : text}`, fields }
}

/** The longest text of a non-Error an error message quotes. */
const MAX_TEXT = 500

function safeValue(v: unknown): unknown {
  try {
    prepare(v, 'field', walk(false))
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
  // (A record edited by hand, in a dump, may have no fields.)
  const fields = rec.fields ?? {}
  for (const k of Object.keys(fields)) setOwn(e as unknown as Record<string, unknown>, k, fields[k])
  if (rec.cause !== undefined) {
    Object.defineProperty(e, 'cause', { value: fromInner(rec.cause), writable: true, configurable: true, enumerable: false })
  }
  // As AggregateError has it: an own field, not enumerable. (A record edited by hand may hold another value.)
  if (Array.isArray(rec.errors)) {
    Object.defineProperty(e, 'errors', { value: rec.errors.map(fromInner), writable: true, configurable: true, enumerable: false })
  }
  return e
}

/** A cause, or an AggregateError's item, from its record (as it is where a dump edited by hand holds no record). */
function fromInner(rec: unknown): unknown {
  if (rec === null || typeof rec !== 'object') return rec
  return 'value' in rec ? rec.value : fromRecord(rec as ErrorRecord)
}

/** Encodes a thrown value so decodeError gives back the same class, name, message and own fields. */
export function encodeError(e: unknown): string {
  const w = walk(false)
  // An error among its own fields (`e.self = e`) is written as its name and message (writingErrors).
  const own = e instanceof Error && !writingErrors.has(e)
  if (own) writingErrors.add(e)
  try {
    return superText(prepare(errorRecord(e), 'error', w), w, 'error')
  } finally {
    if (own) writingErrors.delete(e)
  }
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

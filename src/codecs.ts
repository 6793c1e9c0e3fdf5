/**
 * The codecs Raiment teaches superjson (src/encoding.ts): typed arrays as their bytes, an invalid
 * Date, a Buffer, and an Error inside a value as its record (src/error-records.ts). Each writes a
 * form of its own; a record written before a codec existed (superjson's own form) still reads as
 * it did.
 */
import superjson, { type SuperJSONResult } from 'superjson'
import { prepare, unescapeKeys, walk } from './encoding.js'
import { errorFromRecord, errorToRecord, type ErrorRecord } from './error-records.js'
import { restorableEqualities } from './equalities.js'

const typedArrays = [Int8Array, Uint8Array, Uint8ClampedArray, Int16Array, Uint16Array, Int32Array, Uint32Array,
  Float32Array, Float64Array, BigInt64Array, BigUint64Array]
export const typedArrayProtos = new Set<unknown>(typedArrays.map((C) => C.prototype))
export type TypedArray = InstanceType<(typeof typedArrays)[number]>

/**
 * Errors being written as records by the `error` codec or encodeError: one met again inside its
 * own fields (`e.self = e`) is written in superjson's own form (its name and message), as every
 * Error in a value was before the codec, so the record ends.
 */
export const writingErrors = new Set<object>()

/** A Buffer, as the base64 of its bytes (not a typed array to superjson: its class is Buffer). */
export const bufferCodec = {
  isApplicable: (v: unknown): v is Buffer => Buffer.isBuffer(v),
  serialize: (v: Buffer) => v.toString('base64'),
  deserialize: (text: string) => Buffer.from(text, 'base64'),
}

/** What the `error` codec writes: the superjson of the error's record, `escaped` when its keys are (prepare). */
// (A type, not an interface: superjson's JSONValue asks for an index signature.)
type ErrorCodecText = { json: SuperJSONResult['json']; meta?: SuperJSONResult['meta']; escaped?: true }

/**
 * Teaches a superjson to write typed arrays as the base64 of their bytes: exact (superjson's own
 * form writes their numbers as JSON, where Infinity and NaN become null) and compact; an invalid
 * Date as one; and an Error as its record (src/error-records.ts: class name, message, stack, own
 * fields, cause), as a thrown one is, so it comes back as the same class with its `code` and
 * fields. Records written in superjson's own form still read.
 */
export function registerCodecs(sj: Pick<superjson, 'registerCustom' | 'serialize' | 'deserialize'>): void {
  sj.registerCustom<TypedArray, [string, string]>(
    {
      isApplicable: (v): v is TypedArray => ArrayBuffer.isView(v) && typedArrayProtos.has(Object.getPrototypeOf(v)),
      serialize: (v) => [v.constructor.name, Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64')],
      deserialize: ([name, text]) => {
        const C = typedArrays.find((c) => c.name === name)
        if (C === undefined) throw new TypeError(`unknown typed array ${name}`)
        const b = Buffer.from(text, 'base64')
        return new C(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength))
      },
    },
    'bytes',
  )
  // superjson writes an invalid Date as null.
  sj.registerCustom<Date, string>(
    { isApplicable: (v): v is Date => v instanceof Date && Number.isNaN(v.getTime()), serialize: () => 'Invalid Date', deserialize: () => new Date(NaN) },
    'invalid-date',
  )
  sj.registerCustom<Buffer, string>(bufferCodec, 'buffer')
  sj.registerCustom<Error, ErrorCodecText>(
    {
      isApplicable: (v): v is Error => v instanceof Error && !writingErrors.has(v),
      serialize: (e) => {
        writingErrors.add(e)
        try {
          const w = walk(false)
          const { json, meta } = sj.serialize(prepare(errorToRecord(e), 'error', w))
          // A copy that shares nothing: superjson gives an annotation met twice (two NaNs, two
          // equal bigints) as one array, and the value around it then recorded an equality
          // between the two, which it could not read back (src/equalities.ts).
          const out = JSON.parse(JSON.stringify(meta === undefined ? { json } : { json, meta })) as ErrorCodecText
          if (w.escaped) out.escaped = true
          return out
        } finally {
          writingErrors.delete(e)
        }
      },
      deserialize: ({ json, meta, escaped }) => {
        const rec = sj.deserialize(restorableEqualities(meta === undefined ? { json } : { json, meta }))
        return errorFromRecord((escaped === true ? unescapeKeys(rec) : rec) as ErrorRecord)
      },
    },
    'error',
  )
}

/**
 * The body of a journal record (src/replication/records.ts): a batch's or a snapshot part's
 * logical writes `[sql, params]`, encoded compactly and decoded fast, as a rebuild decodes a
 * whole journal's worth of them.
 *
 * Format 1 (what `encodeWrites` writes), all counts unsigned LEB128 varints:
 *   u8 1 (the format)
 *   strings: count, then each one's length in UTF-16 code units, then the byte length of their
 *     UTF-8 text, then that text (all of them one after another)
 *   writes: count, then each write: the index of its SQL in strings, its parameter count, and
 *     each parameter as a tag byte and its value:
 *     0 null · 1 a whole number in the int32 range (zigzag varint) · 2 any other number (float64
 *     LE: NaN, ±Infinity and -0 as they are) · 3 a string (its index in strings) · 4 a bigint
 *     (its decimal text: varint length, ASCII) · 5 a Buffer (varint length, bytes) · 6 a string
 *     that is not well-formed UTF-16 (lone surrogates; varint byte length, UTF-16LE)
 * Every string of a record is stored once (an SQL text, a thread id, a call key repeated by
 * many threads of one batch), and the table is decoded with one UTF-8 decode and slices of it.
 * An outcome goes as the text the journal holds, not escaped into another JSON.
 *
 * Format 0 (streams written before format 1; read, never written): JSON `[sqls, writes]`, each
 * write `[index into sqls, params]`, parameters JSON cannot carry tagged `{ "$": kind, "v": text }`.
 * Its first byte is '[', never 1.
 */
import type { Write } from '../journal.js'

const FORMAT = 1
const NULL = 0
const INT = 1
const F64 = 2
const STR = 3
const BIG = 4
const BLOB = 5
const UTF16 = 6

/** Where writes are encoded before their string table is known (reused: encoding is synchronous). */
let scratch = Buffer.allocUnsafe(64 * 1024)

/** Encodes writes as a record body (format 1). */
export function encodeWrites(writes: readonly Write[]): Buffer {
  const strings: string[] = []
  const index = new Map<string, number>()
  const intern = (s: string): number => {
    let k = index.get(s)
    if (k === undefined) {
      k = strings.length
      strings.push(s)
      index.set(s, k)
    }
    return k
  }
  let buf = scratch
  let p = 0
  const room = (n: number): void => {
    if (p + n <= buf.length) return
    const bigger = Buffer.allocUnsafe(Math.max(buf.length * 2, p + n))
    buf.copy(bigger, 0, 0, p)
    buf = scratch = bigger
  }
  const varint = (n: number): void => {
    room(10)
    while (n >= 0x80) {
      buf[p++] = (n & 0x7f) | 0x80
      n = Math.floor(n / 128)
    }
    buf[p++] = n
  }
  const bytes = (b: Uint8Array): void => {
    varint(b.length)
    room(b.length)
    buf.set(b, p)
    p += b.length
  }
  varint(writes.length)
  for (const [sql, params] of writes) {
    varint(intern(sql))
    varint(params.length)
    for (const v of params) {
      room(1)
      if (v === null || v === undefined) buf[p++] = NULL
      else if (typeof v === 'string') {
        if (isWellFormed(v)) {
          buf[p++] = STR
          varint(intern(v))
        } else {
          buf[p++] = UTF16
          bytes(Buffer.from(v, 'utf16le'))
        }
      } else if (typeof v === 'number') {
        if ((v | 0) === v && !Object.is(v, -0)) {
          buf[p++] = INT
          varint(((v << 1) ^ (v >> 31)) >>> 0)
        } else {
          buf[p++] = F64
          room(8)
          p = buf.writeDoubleLE(v, p)
        }
      } else if (typeof v === 'bigint') {
        buf[p++] = BIG
        bytes(Buffer.from(v.toString(), 'latin1'))
      } else if (v instanceof Uint8Array) {
        buf[p++] = BLOB
        bytes(v)
      } else throw new TypeError(`a journal write has a parameter of type ${typeof v}, which SQLite does not take`)
    }
  }
  const text = strings.join('')
  const textBytes = Buffer.byteLength(text)
  // The head: format, string count and lengths, text length (at most 10 bytes per varint).
  const head = Buffer.allocUnsafe(1 + 10 * (strings.length + 2))
  let h = 0
  const headVarint = (n: number): void => {
    while (n >= 0x80) {
      head[h++] = (n & 0x7f) | 0x80
      n = Math.floor(n / 128)
    }
    head[h++] = n
  }
  head[h++] = FORMAT
  headVarint(strings.length)
  for (const s of strings) headVarint(s.length)
  headVarint(textBytes)
  const out = Buffer.allocUnsafe(h + textBytes + p)
  head.copy(out, 0, 0, h)
  out.write(text, h, 'utf8')
  buf.copy(out, h + textBytes, 0, p)
  return out
}

/** Decodes a record body (format 1, or 0 as older weaves wrote it) into its writes. @throws on a body that is not one */
export function decodeWrites(body: Buffer): Write[] {
  if (body.length > 0 && body[0] === FORMAT) return decodeBinary(body)
  if (body.length > 0 && body[0] === 0x5b) return decodeJson(body)
  throw new Error(body.length === 0 ? 'an empty record body' : `a record body of format ${body[0]}, which this version of Raiment does not read (written by a newer one?)`)
}

function decodeBinary(body: Buffer): Write[] {
  let p = 1
  const end = body.length
  const varint = (): number => {
    let n = 0
    let mul = 1
    for (;;) {
      if (p >= end) throw new Error('a record body ends inside a number')
      const b = body[p++]!
      n += (b & 0x7f) * mul
      if (b < 0x80) return n
      mul *= 128
    }
  }
  const take = (n: number): number => {
    const at = p
    if (n > end - p) throw new Error('a record body ends inside a value')
    p += n
    return at
  }
  const count = varint()
  const lengths = new Array<number>(count)
  for (let i = 0; i < count; i++) lengths[i] = varint()
  const textBytes = varint()
  const at = take(textBytes)
  const text = body.toString('utf8', at, at + textBytes)
  const strings = new Array<string>(count)
  for (let i = 0, c = 0; i < count; i++) {
    strings[i] = text.slice(c, c + lengths[i]!)
    c += lengths[i]!
  }
  const str = (k: number): string => {
    const s = strings[k]
    if (s === undefined) throw new Error(`a record body names string ${k} of ${count}`)
    return s
  }
  const n = varint()
  const out = new Array<Write>(n)
  for (let i = 0; i < n; i++) {
    const sql = str(varint())
    const np = varint()
    const params = new Array<unknown>(np)
    for (let j = 0; j < np; j++) {
      const tag = body[take(1)]
      if (tag === STR) params[j] = str(varint())
      else if (tag === INT) {
        const z = varint()
        params[j] = (z >>> 1) ^ -(z & 1)
      } else if (tag === F64) params[j] = body.readDoubleLE(take(8))
      else if (tag === NULL) params[j] = null
      else if (tag === BIG) {
        const len = varint()
        const a = take(len)
        params[j] = BigInt(body.toString('latin1', a, a + len))
      } else if (tag === BLOB) {
        const len = varint()
        const a = take(len)
        params[j] = Buffer.from(body.subarray(a, a + len))
      } else if (tag === UTF16) {
        const len = varint()
        const a = take(len)
        params[j] = body.toString('utf16le', a, a + len)
      } else throw new Error(`a record body has a parameter of unknown kind ${String(tag)}`)
    }
    out[i] = [sql, params]
  }
  if (p !== end) throw new Error(`a record body has ${end - p} bytes after its last write`)
  return out
}

const wellFormed = (String.prototype as { isWellFormed?: () => boolean }).isWellFormed
/** No lone surrogate (which UTF-8 cannot carry). */
function isWellFormed(s: string): boolean {
  if (wellFormed !== undefined) return wellFormed.call(s)
  return !/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(s)
}

/** Format 0 (JSON). */
function decodeJson(body: Buffer): Write[] {
  const [sqls, ws] = JSON.parse(body.toString()) as [string[], Array<[number, unknown[]]>]
  const out = new Array<Write>(ws.length)
  for (let i = 0; i < ws.length; i++) {
    const [k, params] = ws[i]!
    const sql = sqls[k]
    if (sql === undefined) throw new Error(`write ${i} names SQL ${k} of ${sqls.length}`)
    out[i] = [sql, tagged(params) ? params.map(untag) : params]
  }
  return out
}

function tagged(params: readonly unknown[]): boolean {
  for (const v of params) if (v !== null && typeof v === 'object') return true
  return false
}

function untag(v: unknown): unknown {
  if (v === null || typeof v !== 'object') return v
  const o = v as { $: string; v: string }
  if (o.$ === 'n') return BigInt(o.v)
  if (o.$ === 'f') return Number(o.v)
  if (o.$ === 'b') return Buffer.from(o.v, 'base64')
  return v
}

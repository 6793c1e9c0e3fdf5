/**
 * Every recordable value comes back from the journal as it went in, also when its objects have
 * keys that superjson refuses (`__proto__`, `constructor`, `prototype`) next to values JSON cannot
 * hold (a Date, a Map): as an outcome, as call arguments (the same key for the same request), as
 * an error's fields, and through a dump file that a strict replay then reproduces; and NaN as a
 * Map's key or a Set's member, next to other NaNs (superjson writes all of a value's NaNs as one
 * object met several times: src/equalities.ts).
 *
 * Reproduce a failure with FC_SEED=<seed>.
 */
import { join } from 'node:path'
import { expect, test } from 'vitest'
import { fc, test as fcTest } from '@fast-check/vitest'
import { makeDump, thread, Weave } from 'raiment'
import { dumpText, readDump, record, replay, type Dump } from 'raiment/testing'
import { decodeArgs, decodeValue, encodeArgs, encodeValue, keepingRegistered, registerClass } from '../src/encoding.js'
import { decodeError, encodeError } from '../src/error-records.js'
import { tempDir } from './support/tmp.js'

declare module 'raiment' {
  interface Libraries {
    keysApi: { get(q: { constructor: number }): Promise<unknown> }
  }
}

const seed = process.env['FC_SEED'] !== undefined ? Number(process.env['FC_SEED']) : Date.now() % 2 ** 31
console.log(`encoding: fast-check seed ${seed} (FC_SEED=${seed} to reproduce)`)
const params = { seed, numRuns: 300 }

/** Keys that superjson refuses, keys that look escaped, and ordinary ones. */
const key = fc.oneof(fc.constantFrom('__proto__', 'constructor', 'prototype', '\u0000', '\u0000constructor', '\u0000\u0000a'), fc.string())
const value = fc.anything({ key, withBigInt: true, withDate: true, withMap: true, withSet: true, withTypedArray: true })

/**
 * Own keys, deeply, as a list: deep equality that also sees a `__proto__` own field, and an
 * invalid Date equal to another (isDeepStrictEqual finds two invalid Dates different).
 */
function shape(v: unknown): unknown {
  if (v === null || typeof v !== 'object') return v
  if (v instanceof Date) return ['Date', String(v.getTime())]
  if (ArrayBuffer.isView(v)) return [v.constructor.name, Array.from(v as unknown as ArrayLike<unknown>)]
  if (Array.isArray(v)) return v.map(shape)
  if (v instanceof Map) return ['Map', [...(v as Map<unknown, unknown>)].map(([k, x]) => [shape(k), shape(x)])]
  if (v instanceof Set) return ['Set', [...(v as Set<unknown>)].map(shape)]
  // Sorted: call arguments are written with their keys in order.
  if (Object.getPrototypeOf(v) === Object.prototype) return Object.keys(v).sort().map((k) => [k, shape((v as Record<string, unknown>)[k])])
  return v
}

fcTest.prop([value], params)('a value comes back deep-equal, with the same own keys', (v) => {
  expect(shape(decodeValue(encodeValue(v)))).toStrictEqual(shape(v))
})

/** Values with many NaNs: as Map keys, Set members, fields and items (fc.double gives NaN rarely). */
const nanValues = [fc.constant(NaN), fc.constant(NaN), fc.integer(), fc.string({ maxLength: 3 }), fc.constant(null), fc.constant(undefined)]
const withNaN = fc.anything({ key, withMap: true, withSet: true, withBigInt: true, withDate: true, values: nanValues })

fcTest.prop([withNaN], params)('NaN as a Map key or a Set member, next to other NaNs, comes back: no entry lost, nothing reordered', (v) => {
  expect(shape(decodeValue(encodeValue(v)))).toStrictEqual(shape(v))
  const e = Object.assign(new Error('boom'), { v })
  expect(shape((decodeError(encodeError(e)) as Error & { v: unknown }).v)).toStrictEqual(shape(v))
  expect(shape((decodeValue(encodeValue([e])) as Array<Error & { v: unknown }>)[0]!.v)).toStrictEqual(shape(v))
})

const withNaNArgs = fc.anything({ key, withMap: true, withSet: true, values: [...nanValues, fc.bigInt(), fc.date({ noInvalidDate: true })] })

fcTest.prop([fc.array(withNaNArgs, { maxLength: 3 })], params)('arguments with NaN Map keys and Sets come back, and re-encode to the same key', (args) => {
  const text = encodeArgs(args)
  expect(shape(decodeArgs(text))).toStrictEqual(shape(args))
  expect(encodeArgs(decodeArgs(text))).toBe(text)
})

fcTest.prop([withNaN, withNaN, withNaN, fc.array(withNaNArgs, { maxLength: 2 })], params)('a dump holding NaN Map keys and Sets reads back as it was written', (params, result, value, args) => {
  // (Each value its own, as makeDump decodes each.)
  const d: Dump = {
    format: 1,
    thread: { id: 't', type: 't', params, parent: null, status: 'done', result, created: 0, ended: 1 },
    entries: [{ seq: 0, call: 'stats.count', args, ord: 0, ok: true, value, started: 0, duration: 1 }],
  }
  expect(shape(readDump(dumpText(d)))).toStrictEqual(shape(d))
})

test('an Error inside a value whose fields hold two NaNs or two equal bigints reads back, also as a record wrote it before', () => {
  const e = Object.assign(new Error('boom'), { a: 1n, b: 1n, n: [NaN, NaN] })
  e.stack = 'Error: boom'
  // Written without equalities into the codec's text.
  expect(encodeValue({ e })).not.toContain('"e.meta.values')
  const back = (decodeValue(encodeValue({ e })) as { e: Error & { a: bigint; b: bigint; n: number[] } }).e
  expect([back.message, back.a, back.b, back.n]).toStrictEqual(['boom', 1n, 1n, [NaN, NaN]])
  // Written so until 2026-12-07: equalities between the error codec's own annotations, which did not read back.
  const old =
    'S{"json":{"e":{"json":{"name":"Error","message":"boom","stack":"Error: boom","fields":{"a":"1","b":"1","n":["NaN","NaN"]}},"meta":{"values":{"fields.a":["bigint"],"fields.b":["bigint"],"fields.n.0":["number"],"fields.n.1":["number"]},"referentialEqualities":{"fields.a":["fields.b"],"fields.n.0":["fields.n.1"]},"v":1}}},"meta":{"values":{"e":[["custom","error"]]},"referentialEqualities":{"e.meta.values.fields\\\\.a":["e.meta.values.fields\\\\.b"],"e.meta.values.fields\\\\.n\\\\.0":["e.meta.values.fields\\\\.n\\\\.1"]},"v":1}}'
  const read = (decodeValue(old) as { e: Error & { a: bigint; b: bigint; n: number[] } }).e
  expect(read).toBeInstanceOf(Error)
  expect([read.message, read.a, read.b, read.n]).toStrictEqual(['boom', 1n, 1n, [NaN, NaN]])
})

test('a Map keyed by NaN, in a value with another NaN, reaches the thread whole, and its dump replays', async () => {
  const stats = {
    byScore: async () => ({ mean: NaN, byScore: new Map<number, string[]>([[NaN, ['unscored']], [3, ['r2']]]), seen: new Set([NaN, 1]) }),
    count: async (m: Map<number, string>, s: Set<number>) => m.size + s.size,
  }
  const t = thread({
    uses: ['stats'] as never,
    async does(p: { threshold: number }) {
      const s = (this as unknown as { stats: typeof stats }).stats
      const r = await s.byScore()
      const n = await s.count(new Map([[NaN, 'x'], [p.threshold === 0 ? 0 : 1, 'y']]), new Set([NaN, 2]))
      return { unscored: r.byScore.get(NaN), keys: [...r.byScore.keys()], seen: [...r.seen], n }
    },
  })
  const want = { unscored: ['unscored'], keys: [NaN, 3], seen: [NaN, 1], n: 4 }
  const live = await record(t, { threshold: NaN }, { name: 'nan-stats', libraries: { stats }, ioLibs: false })
  expect(live.result).toStrictEqual(want)
  const run = await replay(t, readDump(dumpText(live.dump)), { libraries: { stats }, ioLibs: false })
  expect(run.status).toBe('done')
  expect(run.result).toStrictEqual(want)
})

/** Numbers, most of all counts and time stamps: read and written by short paths, as JSON would. */
const number = fc.oneof(fc.nat(), fc.maxSafeNat(), fc.integer(), fc.double(), fc.constantFrom(0, -0, 1e21, 1e-7, 2 ** 53, 2 ** 53 + 2, 123456789012345, 1234567890123456))

fcTest.prop([number], params)("a number's text is JSON's, and reads back as JSON reads it", (n) => {
  const json = JSON.stringify(n)
  if (Number.isFinite(n) && !Object.is(n, -0)) {
    expect(encodeValue(n)).toBe('J' + json)
    expect(encodeArgs([n, [n]])).toBe(`[${json},[${json}]]`)
  }
  expect(Object.is(decodeValue('J' + json), JSON.parse(json))).toBe(true)
  for (const text of ['J0' + json, 'J' + json + 'x', 'J-' + json]) {
    let want: unknown
    try {
      want = JSON.parse(text.slice(1))
    } catch {
      expect(() => decodeValue(text)).toThrow()
      continue
    }
    expect(Object.is(decodeValue(text), want)).toBe(true)
  }
})

/** Call arguments: written as keys always were, which holds these exactly (not holes, typed arrays or invalid Dates). */
const argValue = fc.anything({
  key,
  withMap: true,
  withSet: true,
  values: [fc.boolean(), fc.integer(), fc.double(), fc.string(), fc.constant(null), fc.constant(undefined), fc.bigInt(), fc.date({ noInvalidDate: true })],
})

fcTest.prop([fc.array(argValue, { maxLength: 3 })], params)('arguments come back, and the same request gives the same key', (args) => {
  const text = encodeArgs(args)
  expect(shape(decodeArgs(text))).toStrictEqual(shape(args))
  expect(encodeArgs(decodeArgs(text))).toBe(text)
})

fcTest.prop([fc.dictionary(key, value)], params)("an error's own fields come back", (fields) => {
  const e = new Error('boom')
  for (const k of Object.keys(fields)) Object.defineProperty(e, k, { value: fields[k], enumerable: true, writable: true, configurable: true })
  const back = decodeError(encodeError(e)) as Error & Record<string, unknown>
  expect(back.message).toBe('boom')
  for (const k of Object.keys(fields)) {
    if (k === 'message' || k === 'stack' || k === 'cause') continue
    expect(shape(back[k]), `field ${JSON.stringify(k)}`).toStrictEqual(shape(fields[k]))
  }
})

test('an object met twice comes back right, also inside sets', () => {
  const d1 = new Date(1)
  const d2 = new Date(2)
  const u = Uint16Array.from([1])
  const v = { a: new Set([d1, d2, u]), b: new Set([d1, d2, u]), c: [d1, /x/g, new URL('http://127.0.0.1/'), /x/g] }
  expect(decodeValue(encodeValue(v))).toStrictEqual(v)
})

test('a circular value is refused with UnrecordableValue naming where, as a value and as arguments', () => {
  const o: Record<string, unknown> = { a: 1 }
  o['self'] = o
  expect(() => encodeValue(o, 'params')).toThrow(/^params\.self is a circular reference/)
  expect(() => encodeArgs([o])).toThrow(/^args\[0\]\.self is a circular reference/)
})

test('a hole in an array comes back as undefined, never as null', () => {
  // eslint-disable-next-line no-sparse-arrays
  for (const v of [[, 1], [, new Date(0)]]) expect(decodeValue(encodeValue(v))).toStrictEqual([undefined, v[1]])
})

test('call arguments are keyed as an earlier version recorded them, so its threads resume', () => {
  // The texts written by the version before the bytes and invalid-date codecs (2026-12-03).
  const d = new Date(5)
  const recorded: Array<[unknown[], string]> = [
    [[new Uint8Array([1, 2, 3])], 'S{"json":[[1,2,3]],"meta":{"values":{"0":[["typed-array","Uint8Array"]]},"v":1}}'],
    [[Float64Array.from([1.5, Infinity])], 'S{"json":[[1.5,null]],"meta":{"values":{"0":[["typed-array","Float64Array"]]},"v":1}}'],
    [[new Date(NaN)], 'S{"json":[null]}'],
    // eslint-disable-next-line no-sparse-arrays
    [[[1, , 2]], 'S{"json":[[1,null,2]]}'],
    [[{ a: d, b: d }], 'S{"json":[{"a":"1970-01-01T00:00:00.005Z","b":"1970-01-01T00:00:00.005Z"}],"meta":{"values":{"0.a":["Date"],"0.b":["Date"]},"referentialEqualities":{"0.a":["0.b"]},"v":1}}'],
    [[new Set([new Date(1), new Date(2)])], 'S{"json":[["1970-01-01T00:00:00.001Z","1970-01-01T00:00:00.002Z"]],"meta":{"values":{"0":["set",{"0":["Date"],"1":["Date"]}]},"v":1}}'],
    // NaNs as one object met several times, as superjson writes them (read without: src/equalities.ts).
    [[new Map([[NaN, 'x'], [1, 'y']]), NaN], 'S{"json":[[["NaN","x"],[1,"y"]],"NaN"],"meta":{"values":{"0":["map",{"0.0":["number"]}],"1":["number"]},"referentialEqualities":{"1":["0.0.0"]},"v":1}}'],
    [
      [{ when: new Date(0), tags: new Set(['a']), n: 10n, u: undefined, m: new Map([[1, 'x']]) }],
      'S{"json":[{"m":[[1,"x"]],"n":"10","tags":["a"],"u":null,"when":"1970-01-01T00:00:00.000Z"}],"meta":{"values":{"0.m":["map"],"0.n":["bigint"],"0.tags":["set"],"0.u":["undefined"],"0.when":["Date"]},"v":1}}',
    ],
  ]
  for (const [args, text] of recorded) expect(encodeArgs(args)).toBe(text)
})

test('a thread whose outcomes have such keys is dumped, read back and replayed to the same result', async () => {
  const answer = { constructor: { at: new Date(0) }, prototype: new Map([['a', { __proto__: 1 }]]) }
  Object.defineProperty(answer.prototype.get('a'), '__proto__', { value: [1n], enumerable: true, writable: true, configurable: true })
  const t = thread({
    uses: ['keysApi'],
    async does() {
      const got = await this.keysApi.get({ constructor: 1 })
      return { got, again: await this.keysApi.get({ constructor: 1 }) }
    },
  })
  const weave = await Weave.open({
    db: join(tempDir('raiment-encoding-'), 'w.db'),
    threads: { t },
    libraries: { keysApi: { get: async () => answer } },
    ioLibs: false,
  })
  try {
    const id = weave.spawn('t', {})
    const end = await weave.join(id)
    expect(end.status).toBe('done')
    const dump = readDump(dumpText(makeDump(weave.journal, id)))
    expect(shape(dump.entries[0]!.value)).toEqual(shape(answer))
    const run = await replay(t, dump, { ioLibs: false })
    expect(run.status).toBe('done')
    expect(shape(run.result)).toEqual(shape({ got: answer, again: answer }))
  } finally {
    await weave.close()
  }
})

test("a second copy of a class, registered under its name while Raiment imports a library (vitest's own copy), records, and decodes to the first", async () => {
  class Money {
    constructor(readonly cents = 0) {}
  }
  registerClass(Money, 'KeptMoney')
  const Copy = await keepingRegistered(async () => {
    class Money {
      constructor(readonly cents = 0) {}
    }
    registerClass(Money, 'KeptMoney')
    return Money
  })
  for (const v of [new Money(5), new Copy(5)]) {
    const back = decodeValue(encodeValue(v, 'the outcome'))
    expect(back).toBeInstanceOf(Money)
    expect(back).toEqual(new Money(5))
    expect(decodeArgs(encodeArgs([v]))).toEqual([new Money(5)])
  }
})

/**
 * An AggregateError (what Promise.any rejects with; Node's net gives one for a refused connection
 * to a name of several addresses) keeps its `errors` when recorded (src/error-records.ts): thrown
 * by a library (live, replayed, through a dump file), inside a value, nested; and a record made
 * before they were recorded still reads, without them, as it was handed then.
 *
 * Reproduce a failure of the property with FC_SEED=<seed>.
 */
import { expect, test } from 'vitest'
import { fc, test as fcTest } from '@fast-check/vitest'
import { thread } from 'raiment'
import { dumpText, readDump, record, replay } from 'raiment/testing'
import { decodeValue, encodeValue } from '../src/encoding.js'
import { decodeError, encodeError } from '../src/error-records.js'

const mirrors = {
  async firstOf(urls: string[]) {
    return await Promise.any(urls.map(async (u) => {
      throw Object.assign(new Error(`${u} refused`), { code: 'ECONNREFUSED' })
    }))
  },
}

const t = thread({
  uses: ['mirrors'] as never,
  async does() {
    try {
      await (this as unknown as { mirrors: typeof mirrors }).mirrors.firstOf(['a', 'b'])
      return null
    } catch (e) {
      const a = e as AggregateError
      return { aggregate: a instanceof AggregateError, message: a.message, errors: a.errors?.map((x: Error) => [x.message, (x as { code?: string }).code]) ?? 'LOST' }
    }
  },
})

test("a library's AggregateError reaches the thread with its errors, live, replayed and through a dump file", async () => {
  const want = { aggregate: true, message: 'All promises were rejected', errors: [['a refused', 'ECONNREFUSED'], ['b refused', 'ECONNREFUSED']] }
  const { dump, result } = await record(t, undefined, { name: 't', libraries: { mirrors }, ioLibs: false })
  expect(result).toEqual(want)
  expect((await replay(t, dump, { libraries: { mirrors }, ioLibs: false })).result).toEqual(want)
  expect((await replay(t, readDump(dumpText(dump)), { libraries: { mirrors }, ioLibs: false })).result).toEqual(want)
})

test('errors that are not Errors, nested aggregates and an aggregate inside a value come back', () => {
  const inner = new AggregateError([new TypeError('deep'), 7], 'inner')
  const e = new AggregateError([inner, 'text', { code: 'x' }, undefined], 'outer')
  for (const back of [decodeError(encodeError(e)), (decodeValue(encodeValue({ e })) as { e: Error }).e]) {
    expect(back).toBeInstanceOf(AggregateError)
    const errors = (back as AggregateError).errors
    expect(Object.getOwnPropertyDescriptor(back, 'errors')?.enumerable).toBe(false)
    expect(errors.slice(1)).toEqual(['text', { code: 'x' }, undefined])
    expect(errors[0]).toBeInstanceOf(AggregateError)
    expect(errors[0].message).toBe('inner')
    expect(errors[0].errors[0]).toBeInstanceOf(TypeError)
    expect(errors[0].errors[0].message).toBe('deep')
    expect(errors[0].errors[1]).toBe(7)
  }
})

test('a record made before errors were recorded reads as it did: an AggregateError without them', () => {
  // encodeError of `new AggregateError([new Error('a')], 'all failed')` before the change (no stack kept here).
  const old = encodeValue({ name: 'AggregateError', message: 'all failed', fields: {} })
  const back = decodeError(old)
  expect(back).toBeInstanceOf(AggregateError)
  expect(back.message).toBe('all failed')
  expect((back as AggregateError).errors).toBeUndefined()
  // A dump edited by hand: items that are not records are taken as they are.
  const edited = decodeError(encodeValue({ name: 'AggregateError', message: 'm', fields: {}, errors: [null, 3, { value: 'v' }] }))
  expect((edited as AggregateError).errors).toEqual([null, 3, 'v'])
})

const seed = process.env['FC_SEED'] !== undefined ? Number(process.env['FC_SEED']) : Date.now() % 2 ** 31
console.log(`aggregate-error: fast-check seed ${seed} (FC_SEED=${seed} to reproduce)`)

const item = fc.oneof(
  fc.tuple(fc.string(), fc.option(fc.string(), { nil: undefined })).map(([m, code]) => (code === undefined ? new Error(m) : Object.assign(new RangeError(m), { code }))),
  fc.anything({ withDate: true, withMap: true, withSet: true, withBigInt: true }),
)

/** What a test compares of an item: an error's class, message and code; any other value as it is. */
function shape(x: unknown): unknown {
  return x instanceof Error ? ['error', x.constructor.name, x.message, (x as { code?: unknown }).code] : x
}

fcTest.prop([fc.array(item, { maxLength: 5 }), fc.string()], { seed, numRuns: 200 })('an AggregateError comes back with its errors, in order', (items, message) => {
  const back = decodeError(encodeError(new AggregateError(items, message))) as AggregateError
  expect(back).toBeInstanceOf(AggregateError)
  expect(back.message).toBe(message)
  expect(back.errors.map(shape)).toStrictEqual(items.map(shape))
})

/**
 * How a divergence message names a request (src/replay-record.ts `describeKey`): arguments plain
 * JSON cannot hold are shown as the code writes them, not in their encoding, and two different
 * ones never look the same.
 */
import { expect, it } from 'vitest'
import { encodeArgs } from '../src/encoding.js'
import { describeKey } from '../src/replay-record.js'

const key = (args: unknown[]): string => describeKey('lib.call:' + encodeArgs(args))

it('shows NaN, bigints, Dates, Maps and Sets as code writes them', () => {
  expect(key(['plain', { a: 1 }])).toBe('lib.call("plain",{"a":1})')
  expect(key([NaN, { n: 10n, u: undefined }])).toBe('lib.call(NaN,{"n":10n,"u":undefined})')
  expect(key([new Date(0)])).toBe('lib.call(Date("1970-01-01T00:00:00.000Z"))')
  expect(key([new Map([['k', 1]]), new Set([1, 2])])).toBe('lib.call(Map([["k",1]]),Set([1,2]))')
  // Two different Maps, and a Date and its text, are told apart.
  expect(key([new Map([['a', 1]])])).not.toBe(key([new Map([['b', 2]])]))
  expect(key([new Date(0)])).not.toBe(key(['1970-01-01T00:00:00.000Z']))
  expect(key([NaN])).not.toContain('"json"')
  // An error's message, and an instance's class, are shown too.
  expect(key(['failed', { err: new TypeError('edited by hand') }])).toBe('lib.call("failed",{"err":TypeError("edited by hand")})')
  expect(key([new Float64Array([1.5, 2])])).toBe('lib.call(Float64Array([1.5,2]))')
})

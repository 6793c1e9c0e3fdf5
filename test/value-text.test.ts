/** How an error message shows the value it got (src/value-text.ts). */
import { expect, it } from 'vitest'
import { valueText } from '../src/value-text.js'

it('shows a value as the caller wrote it: strings quoted, NaN, Infinity and bigints as JS writes them, in objects too', () => {
  expect(valueText('100')).toBe('"100"')
  expect(valueText(100)).toBe('100')
  expect(valueText(Number.NaN)).toBe('NaN')
  expect(valueText(-Infinity)).toBe('-Infinity')
  expect(valueText(7n)).toBe('7n')
  expect(valueText(undefined)).toBe('undefined')
  expect(valueText(null)).toBe('null')
  expect(valueText(() => 1)).toBe('a function')
  expect(valueText({ wait: Number.NaN, list: [Infinity, 2n, 'x'] })).toBe('{"wait":NaN,"list":[Infinity,2n,"x"]}')
  const loop: { self?: unknown } = {}
  loop.self = loop
  expect(valueText(loop)).toBe('[object Object]')
})

/**
 * How an error message shows the value it got: as the caller would write it, so that what was
 * wrong can be seen. JSON.stringify alone would show NaN and Infinity as `null` and a bigint not
 * at all, and String alone would hide that '100' was a string.
 */

/**
 * Stands for a number or bigint JSON has no text for, inside the JSON of an object (a string of
 * the value's own that starts with it is shown unquoted too: this is a message, not a codec).
 */
const MARK = '\u0000'

/**
 * `v` as an error message shows it: a string quoted (`"100"`), a number as JS writes it (`NaN`,
 * `Infinity`), a bigint with its `n`, undefined as `undefined`, a function as `a function`, an
 * object or array as JSON (with NaN, Infinity and bigints written as above).
 * @example
 * throw new InvalidArgument(`timeout must be a number of ms from 0 up, got ${valueText(t)}`)
 */
export function valueText(v: unknown): string {
  switch (typeof v) {
    case 'string':
      return JSON.stringify(v)
    case 'number':
    case 'boolean':
    case 'undefined':
    case 'symbol':
      return String(v)
    case 'bigint':
      return `${v}n`
    case 'function':
      return 'a function'
    default:
      try {
        const text = JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? `${MARK}${x}n` : typeof x === 'number' && !Number.isFinite(x) ? `${MARK}${x}` : x))
        return text.replace(/"\\u0000([^"]*)"/g, '$1')
      } catch {
        return String(v)
      }
  }
}

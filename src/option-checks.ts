/**
 * The check of an options object given to a public function (`Weave.send`, `Weave.spawn`,
 * `replay`, `record`): an object whose keys the function knows, or a clear error saying which
 * options there are; never a TypeError from reading a field of `null`.
 */
import { InvalidArgument } from './errors.js'

/**
 * @throws InvalidArgument for options that are not an object, or have a key `fn` does not know
 *   (a misspelt option would be ignored otherwise)
 * @example
 * checkOptions('send', { key: 'req-1' }, ['key']) // passes; checkOptions('send', null, ['key']) throws
 */
export function checkOptions(fn: string, options: unknown, known: readonly string[]): void {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new InvalidArgument(`${fn}(): options must be an object (${known.join(', ')}), got ${options === null ? 'null' : Array.isArray(options) ? 'an array' : typeof options}`)
  }
  for (const k of Object.keys(options)) {
    if (!known.includes(k)) throw new InvalidArgument(`${fn}(): unknown option '${k}'; the options are ${known.join(', ')}`)
  }
}

/** The `--passivate-after` option of `raiment start`: a duration, or `never`. */
import { parseDuration } from '../durations.js'

/**
 * `500ms`, `30s`, `5m`, `1h`, a bare number of ms, or `never`/`off` (false: no passivation).
 * @throws InvalidArgument for anything else, naming what it got
 * @example
 * parsePassivateAfter('30s') // 30000
 */
export function parsePassivateAfter(text: string): number | false {
  const t = text.trim().toLowerCase()
  if (t === 'never' || t === 'off' || t === 'false') return false
  return parseDuration(text, '--passivate-after', ", or 'never'")
}

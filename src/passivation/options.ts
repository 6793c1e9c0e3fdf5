/** The `--passivate-after` option of `raiment start`: a duration, or `never`. */
import { InvalidArgument } from '../errors.js'

const UNITS: Readonly<Record<string, number>> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 }

/**
 * `500ms`, `30s`, `5m`, `1h`, a bare number of ms, or `never`/`off` (false: no passivation).
 * @throws InvalidArgument for anything else, naming what it got
 * @example
 * parsePassivateAfter('30s') // 30000
 */
export function parsePassivateAfter(text: string): number | false {
  const t = text.trim().toLowerCase()
  if (t === 'never' || t === 'off' || t === 'false') return false
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(t)
  if (m === null) throw new InvalidArgument(`--passivate-after must be a duration such as 0, 500ms, 30s, 5m or 1h, or 'never', got '${text}'`)
  return Math.round(Number(m[1]) * UNITS[m[2] ?? 'ms']!)
}

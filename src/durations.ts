/** Durations as the CLI's options take them: `500ms`, `30s`, `5m`, `1h`, or a bare number of ms. */
import { InvalidArgument } from './errors.js'

const UNITS: Readonly<Record<string, number>> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 }

/** The longest delay a Node timer takes (24.8 days): a longer one fires at once. */
export const MAX_TIMER_MS = 2 ** 31 - 1

/**
 * The ms of `text`, a duration of option `option`; `words`: what else it may be (for the error).
 * @throws InvalidArgument for anything else, naming the option and what it got
 * @example
 * parseDuration('30s', '--stop-wait') // 30000
 */
export function parseDuration(text: string, option: string, words = ''): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim().toLowerCase())
  if (m === null) throw new InvalidArgument(`${option} must be a duration such as 0, 500ms, 30s, 5m or 1h${words}, got '${text}'`)
  return Math.round(Number(m[1]) * UNITS[m[2] ?? 'ms']!)
}

/**
 * Cron expressions, parsed and stepped by croner (5 fields: minute precision; 6: seconds; 7:
 * years), in a named IANA time zone. Times are whole seconds, in ms since the epoch.
 */
import { Cron } from 'croner'
import { InvalidSchedule } from './errors.js'

export class CronTimes {
  readonly expr: string
  readonly tz: string
  readonly #cron: Cron

  /**
   * @throws InvalidSchedule RAIMENT_BAD_TIME_ZONE for a time zone Intl does not know
   * @throws InvalidSchedule RAIMENT_BAD_CRON for an expression croner refuses, or one that never fires
   */
  constructor(expr: string, tz: string) {
    if (typeof tz !== 'string' || !validZone(tz)) {
      throw new InvalidSchedule('RAIMENT_BAD_TIME_ZONE', `unknown time zone ${JSON.stringify(tz)}; give an IANA name such as UTC or Europe/Paris`)
    }
    if (typeof expr !== 'string') throw new InvalidSchedule('RAIMENT_BAD_CRON', `the cron expression must be a string, got ${typeof expr}`)
    try {
      this.#cron = new Cron(expr, { paused: true, timezone: tz })
    } catch (e) {
      const why = (e as Error).message.replace(/^CronPattern: /, '')
      throw new InvalidSchedule('RAIMENT_BAD_CRON', `invalid cron expression ${JSON.stringify(expr)}: ${why}; e.g. "*/5 * * * *" (every 5 minutes) or "0 9 * * MON-FRI"`, { cause: e })
    }
    this.expr = expr
    this.tz = zoneName(tz)
  }

  /** The first time strictly after `after`, or null when there is none. */
  next(after: number): number | null {
    const d = this.#cron.nextRun(new Date(after))
    return d === null ? null : d.getTime()
  }

  /** The last time t with `after` < t <= `upto`, or null when there is none. */
  latest(after: number, upto: number): number | null {
    if (upto <= after) return null
    // A run earlier in the reference's second counts (croner); times are whole seconds.
    const [d] = this.#cron.previousRuns(1, new Date(upto + 1))
    if (d !== undefined && d.getTime() <= upto) return d.getTime() > after ? d.getTime() : null
    // Not found that way: step from `after`.
    let last: number | null = null
    for (const t of this.between(after, upto)) last = t
    return last
  }

  /** The times t with `after` < t <= `upto`, in order. */
  *between(after: number, upto: number): Generator<number> {
    for (let t = this.next(after); t !== null && t <= upto; t = this.next(t)) yield t
  }
}

function validZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz })
    return tz !== ''
  } catch {
    return false
  }
}

/** A zone as IANA spells it where only the case differs (`europe/paris`: `Europe/Paris`); else as given (an alias, or one not valid). */
export function zoneName(tz: string): string {
  let resolved: string
  try {
    resolved = new Intl.DateTimeFormat('en-US', { timeZone: tz }).resolvedOptions().timeZone
  } catch {
    return tz
  }
  return resolved.toLowerCase() === tz.toLowerCase() ? resolved : tz
}

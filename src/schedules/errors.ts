/** The errors of schedules: each a RaimentError with a stable code. */
import { RaimentError } from '../errors.js'

/** A schedule definition that cannot be used (its name, cron expression, time zone, policy or params); nothing was written. */
export class InvalidSchedule extends RaimentError {
  constructor(code: 'RAIMENT_BAD_CRON' | 'RAIMENT_BAD_TIME_ZONE' | 'RAIMENT_BAD_SCHEDULE', message: string, options?: { cause?: unknown }) {
    super(code, message, options)
  }
}

/** `schedules.add` of a name that is taken; nothing was written. */
export class ScheduleExists extends RaimentError {
  readonly schedule: string
  constructor(name: string) {
    super('RAIMENT_SCHEDULE_EXISTS', `a schedule named '${name}' exists already; remove it first (raiment schedule rm ${name}) or choose another name`)
    this.schedule = name
  }
}

/** No schedule has that name. */
export class UnknownSchedule extends RaimentError {
  readonly schedule: string
  constructor(name: string, known: readonly string[]) {
    super('RAIMENT_UNKNOWN_SCHEDULE', `no schedule named '${name}'; schedules: ${known.length ? known.join(', ') : '(none)'} (raiment schedule ls)`)
    this.schedule = name
  }
}

/** A schedule declared by a thread module, which only that module changes or removes. */
export class DeclaredSchedule extends RaimentError {
  constructor(name: string, type: string, what: string) {
    super('RAIMENT_DECLARED_SCHEDULE', `schedule '${name}' is declared by the module of thread type '${type}' (its exported 'schedule'); ${what} there, then restart the weave`)
  }
}

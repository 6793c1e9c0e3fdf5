/**
 * What a schedule is: its definition as given (API, CLI, a thread module's `schedule` export),
 * checked at the door, and the thread ids of its times.
 */
import { encodeValue } from '../encoding.js'
import { CronTimes } from './cron.js'
import { InvalidSchedule } from './errors.js'

/** What happens to the times that passed while no weave ran the schedule. */
export type MissedPolicy = 'skip' | 'once' | 'all'
export const MISSED_POLICIES: readonly MissedPolicy[] = ['skip', 'once', 'all']

/** Where a schedule came from: `weave.schedules.add`, `raiment schedule add`, or a thread module's export. */
export type ScheduleSource = 'api' | 'cli' | 'module'

/** A schedule as `weave.schedules.add` takes it. */
export interface ScheduleOptions {
  /** A cron expression: 5 fields (minute precision), 6 (seconds first) or 7 (years last). */
  cron: string
  /** The thread type to spawn at each time. */
  type: string
  /** The params of each thread (a plain object); `scheduledAt` (ISO 8601) is added to them. */
  params?: Record<string, unknown>
  /** Times missed while no weave ran: `skip` them (default), run `once` for the latest, or run `all`. */
  missed?: MissedPolicy
  /** The IANA time zone the expression is read in (default `UTC`). */
  tz?: string
}

/** What a thread module exports as `schedule` (one, or an array): a ScheduleOptions for its own type. */
export interface ScheduleDeclaration extends Omit<ScheduleOptions, 'type'> {
  /** The schedule's name (default: the type's name, with '/' made '.'). */
  name?: string
}

/** A schedule as `weave.schedules.list()` and `raiment schedule ls` show it. */
export interface ScheduleInfo {
  name: string
  cron: string
  tz: string
  type: string
  params: Record<string, unknown>
  missed: MissedPolicy
  paused: boolean
  source: ScheduleSource
  /** When it was added (ms since the epoch). */
  created: number
  /** The scheduled time of the last thread it spawned, or null. */
  lastFired: number | null
  /** The id of that thread, or null. */
  lastThread: string | null
  /** Its next time, or null (paused, blocked, or no time is left). */
  next: number | null
  /** Why it fires nothing in the running weave, whose code cannot run its type (absent: it can). */
  blocked?: string
}

/** A checked definition, ready to be stored. */
export interface Definition {
  name: string
  cron: CronTimes
  type: string
  params: Record<string, unknown>
  /** `params` encoded for the journal. */
  paramsText: string
  missed: MissedPolicy
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$/
const KNOWN = new Set(['cron', 'type', 'params', 'missed', 'tz'])

/**
 * Checks a schedule's definition (not its type: the caller knows which types exist).
 * @throws InvalidSchedule with a code for what is wrong (RAIMENT_BAD_SCHEDULE, RAIMENT_BAD_CRON, RAIMENT_BAD_TIME_ZONE)
 * @throws UnrecordableValue when params cannot be recorded
 */
export function checkDefinition(name: unknown, o: ScheduleOptions, extra: ReadonlySet<string> = new Set()): Definition {
  checkName(name)
  if (o === null || typeof o !== 'object') throw bad(`schedule '${name}': expected { cron, type, params?, missed?, tz? }, got ${String(o)}`)
  for (const k of Object.keys(o)) {
    if (!KNOWN.has(k) && !extra.has(k)) throw bad(`schedule '${name}': unknown option '${k}'; the options are: ${[...KNOWN, ...extra].join(', ')}`)
  }
  if (typeof o.type !== 'string' || o.type === '') throw bad(`schedule '${name}': 'type' must be a thread type's name, got ${JSON.stringify(o.type)}`)
  const missed = o.missed ?? 'skip'
  if (!MISSED_POLICIES.includes(missed)) throw bad(`schedule '${name}': 'missed' must be one of ${MISSED_POLICIES.join(', ')}, got ${JSON.stringify(missed)}`)
  const params = o.params === undefined ? {} : o.params
  if (params === null || typeof params !== 'object' || Array.isArray(params)) {
    throw bad(`schedule '${name}': params must be an object (each thread gets it with scheduledAt added), got ${Array.isArray(params) ? 'an array' : JSON.stringify(params)}`)
  }
  const cron = new CronTimes(o.cron, o.tz ?? 'UTC')
  if (cron.next(Date.now()) === null) throw new InvalidSchedule('RAIMENT_BAD_CRON', `the cron expression ${JSON.stringify(o.cron)} has no time left to fire at`)
  return { name, cron, type: o.type, params, paramsText: encodeValue(params, 'params'), missed }
}

/** @throws InvalidSchedule RAIMENT_BAD_SCHEDULE for a name a schedule cannot have */
export function checkName(name: unknown): asserts name is string {
  if (typeof name !== 'string' || !NAME.test(name)) {
    throw bad(`a schedule name is 1 to 100 letters, digits, '_', '.' or '-', starting with a letter or digit; got ${JSON.stringify(name)}`)
  }
}

/**
 * The id of the thread of schedule `name` at time `at` on weave `weaveId`: the same every time it
 * is computed, so a time spawned twice (a retry after a crash) is one thread.
 */
export function scheduledThreadId(weaveId: string, name: string, at: number): string {
  return `${weaveId}/${name}@${new Date(at).toISOString().replace(/[-:]|\.000/g, '')}`
}

function bad(message: string): InvalidSchedule {
  return new InvalidSchedule('RAIMENT_BAD_SCHEDULE', message)
}

/**
 * `raiment schedule add|ls|rm|pause|resume`. With a weave running on the journal, the weave makes
 * the change (a control request: it checks the type against the types it runs, and the change
 * reaches its replication); with none, the change is written here, in the transaction that found
 * none, and the next weave picks it up.
 */
import { existsSync } from 'node:fs'
import { decodeError } from '../error-records.js'
import { RaimentError } from '../errors.js'
import { Journal } from '../journal.js'
import { CronTimes } from '../schedules/cron.js'
import { ScheduleExists, UnknownSchedule } from '../schedules/errors.js'
import { checkDefinition, checkName, type MissedPolicy, type ScheduleInfo, type ScheduleOptions } from '../schedules/spec.js'
import { BLOCKED_META, infoOf, scheduleRows, ScheduleStore, type ScheduleRow } from '../schedules/store.js'
import { isoTime, note, openExisting, openReadonly, parseParams, refuseEmpty, runningOwner, say, short, table, threadType, withOwner, type DbOptions, type Owner } from './common.js'
import { askTimeout, askWeave, busyHint, waitText, type AskOptions } from './ask-weave.js'

export interface ScheduleAddOptions extends DbOptions, AskOptions {
  cron: string
  missed: string
  tz: string
  threads: string
}

export interface ScheduleLsOptions extends DbOptions {
  json?: boolean
}

/** `raiment schedule add NAME TYPE [PARAMS_JSON] --cron EXPR [--missed POLICY] [--tz ZONE]`. */
export async function add(name: string, type: string, paramsText: string | undefined, o: ScheduleAddOptions): Promise<number> {
  const params = parseParams(paramsText, type, `raiment schedule add ${name} ${type} '{"name":"ada"}' --cron "*/5 * * * *"`)
  const options: ScheduleOptions = { cron: o.cron, type, params: params as Record<string, unknown>, missed: o.missed as MissedPolicy, tz: o.tz }
  if (params === undefined) delete options.params
  // Everything but the type is checked before any file is touched.
  const d = checkDefinition(name, options)
  const waitMs = askTimeout(o)
  const exists = existsSync(o.db)
  if (exists) refuseEmpty(o.db)
  // No weave runs on a journal that does not exist yet: the type is checked here.
  if (!exists) await threadType(o.threads, type)
  const journal = new Journal(o.db, { own: false })
  try {
    if (exists && runningOwner(journal) === null) await threadType(o.threads, type)
    const owner = withOwner(journal, (owner) => {
      if (owner !== null) return owner
      const store = new ScheduleStore(journal)
      if (store.get(d.name) !== undefined) throw new ScheduleExists(d.name)
      const [stmt, args] = store.insert(d, 'cli', Date.now())
      stmt.run(...args)
      return null
    })
    const info = owner === null ? infoOf(new ScheduleStore(journal).get(d.name)!, d.cron.next(Date.now())) : ((await ask(journal, owner, waitMs, 'add', name, options)) as ScheduleInfo)
    say(`added schedule ${info.name}: ${info.type} at "${info.cron}" (${info.tz}), missed times: ${info.missed}; next ${info.next === null ? '-' : isoTime(info.next)}`)
    if (owner === null) note(`no weave runs on ${o.db}; the schedule fires while one does (raiment start --db ${o.db})`)
    return 0
  } finally {
    journal.close()
  }
}

/** `raiment schedule rm|pause|resume NAME`. */
export async function change(op: 'rm' | 'pause' | 'resume', name: string, o: DbOptions & AskOptions): Promise<number> {
  checkName(name)
  const waitMs = askTimeout(o)
  const journal = openExisting(o.db)
  let declared = false
  try {
    const owner = withOwner(journal, (owner) => {
      if (owner !== null) return owner
      const store = new ScheduleStore(journal)
      const row = store.get(name)
      if (row === undefined) throw new UnknownSchedule(name, store.all().map((r) => r.name))
      // With no weave: a module's schedule may go (its module gone); one still declared comes back at the next start.
      if (op === 'rm' && row.source === 'module') declared = true
      const [stmt, args] = op === 'rm' ? store.delete(name) : op === 'pause' ? store.pause(name) : store.resume(name, Date.now())
      stmt.run(...args)
      return null
    })
    if (owner !== null) await ask(journal, owner, waitMs, op, name)
    say(`${op === 'rm' ? 'removed' : op === 'pause' ? 'paused' : 'resumed'} schedule ${name}`)
    if (declared) note(`schedule ${name} was declared by a thread module: a weave that starts with that module brings it in again (remove the module's 'schedule' export to end it)`)
    return 0
  } finally {
    journal.close()
  }
}

/** `raiment schedule ls`: each schedule with its next time, the last it fired, paused, policy. */
export function ls(o: ScheduleLsOptions): number {
  const journal = openReadonly(o.db)
  try {
    const now = Date.now()
    // What the running weave says it cannot fire (its code cannot run the type); none when no weave runs.
    const blocked = runningOwner(journal) === null ? {} : blockedIn(journal.meta(BLOCKED_META))
    const infos = scheduleRows(journal.db).map((r): ScheduleInfo => {
      const why = blocked[r.name]
      return why === undefined ? infoOf(r, r.paused === 1 ? null : nextOf(r, now)) : { ...infoOf(r, null), blocked: why }
    })
    if (o.json) {
      say(JSON.stringify(infos))
      return 0
    }
    if (infos.length === 0) {
      say(`no schedules in ${o.db} (raiment schedule add NAME TYPE --cron EXPR)`)
      return 0
    }
    const header = ['NAME', 'TYPE', 'CRON', 'TZ', 'MISSED', 'STATE', 'NEXT', 'LAST FIRED', 'LAST THREAD', 'PARAMS']
    const rows = infos.map((s) => [
      s.name,
      s.type,
      s.cron,
      s.tz,
      s.missed,
      s.paused ? 'paused' : s.blocked !== undefined ? 'blocked' : s.source === 'module' ? 'active (module)' : 'active',
      s.next === null ? '-' : isoTime(s.next),
      s.lastFired === null ? '-' : isoTime(s.lastFired),
      s.lastThread ?? '-',
      short(s.params),
    ])
    for (const l of table(header, rows)) say(l)
    for (const s of infos) if (s.blocked !== undefined) note(`schedule '${s.name}' fires nothing in the running weave: ${s.blocked}`)
    return 0
  } finally {
    journal.close()
  }
}

/** The blocked schedules meta holds, by name (nothing readable: none). */
function blockedIn(text: string | undefined): Record<string, string> {
  try {
    const v = text === undefined ? {} : (JSON.parse(text) as unknown)
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, string>) : {}
  } catch {
    return {}
  }
}

/** The next time of a schedule from now (a weave that starts later fires the missed ones by policy). */
function nextOf(row: ScheduleRow, now: number): number | null {
  try {
    return new CronTimes(row.cron, row.tz).next(Math.max(row.upto, now))
  } catch {
    return null
  }
}

/** Asks the weave running on the journal to make the change; its refusal is thrown as its class. */
async function ask(journal: Journal, owner: Owner, waitMs: number, op: string, name: string, options?: ScheduleOptions): Promise<unknown> {
  const reply = await askWeave(journal, 'schedule', null, JSON.stringify({ op, name, options }), true, { waitMs })
  if (reply === null) {
    throw new RaimentError(
      'RAIMENT_SCHEDULE_TIMEOUT',
      `the weave (pid ${owner.pid}) on ${journal.file} did not take the request within ${waitText(waitMs)}; nothing was changed. ${busyHint(waitMs)}`,
    )
  }
  let answer: { ok?: unknown; refused?: string }
  try {
    answer = JSON.parse(reply) as typeof answer
  } catch {
    throw new RaimentError('RAIMENT_SCHEDULE_UNSUPPORTED', `the weave (pid ${owner.pid}) on ${journal.file} does not take schedules (${reply}); start it with this Raiment`)
  }
  if (answer.refused !== undefined) throw decodeError(answer.refused)
  return answer.ok
}

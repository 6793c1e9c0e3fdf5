/**
 * A weave's schedules: at each time of each schedule, a thread of its type, with the time in
 * its params (`scheduledAt`, ISO 8601).
 *
 * Invariants:
 * - A time is fired by one transaction that holds the thread's spawn record and the move of the
 *   schedule's `upto` to that time: after a crash both happened or neither did.
 * - The thread of a time has an id made from (weave, schedule, time) (`scheduledThreadId`), and
 *   a spawn of an id the journal holds records nothing: a time fired again is still one thread.
 * - A schedule lives in one journal and fires only in the weave that owns it (one owner per
 *   journal); with replication it moves with its journal when another weave takes it over.
 * - The times that passed while no weave ran (after `upto`, up to when the weave started) follow
 *   the schedule's policy: none (`skip`), the latest (`once`) or all (`all`). Every time after
 *   the start is fired while the weave runs, however late its timer is. The times that pass while
 *   a schedule is paused are not fired.
 */
import { decodeValue } from '../encoding.js'
import { encodeError } from '../error-records.js'
import { RaimentError, ThreadTypeUnavailable, UnknownThreadType, WeaveClosed } from '../errors.js'
import type { Journal } from '../journal.js'
import type { Weave } from '../weave.js'
import { realClock, type ScheduleClock } from './clock.js'
import { CronTimes, zoneName } from './cron.js'
import { DeclaredSchedule, InvalidSchedule, ScheduleExists, UnknownSchedule } from './errors.js'
import { checkDefinition, checkName, scheduledThreadId, type Definition, type ScheduleDeclaration, type ScheduleInfo, type ScheduleOptions, type ScheduleSource } from './spec.js'
import { BLOCKED_META, infoOf, ScheduleStore, type ScheduleRow, type Write } from './store.js'

/** A schedule this weave runs: its row as committed or queued, and where it is in time. */
interface Live {
  row: ScheduleRow
  cron: CronTimes
  params: Record<string, unknown>
  /** Times up to here are handled. */
  from: number
  /** Its next time, or null (none left, or blocked). */
  next: number | null
  /** Its type cannot run in this weave: it fires nothing here, and keeps its times. */
  blocked: boolean
  /** Why, while blocked. */
  why?: string
}

/** At most this many times fired in one turn; the rest in the next (a long list of missed times). */
const PER_TURN = 1000

export class Schedules {
  readonly #weave: Weave
  readonly #journal: Journal
  readonly #clock: ScheduleClock
  #store: ScheduleStore | null = null
  readonly #live = new Map<string, Live>()
  #cancel: (() => void) | null = null
  #armedFor = Infinity
  #running = false
  /** What meta says is blocked (undefined: not written yet by this weave). */
  #blockedText: string | null | undefined = undefined

  /** @internal The weave makes it; `clock`: the time schedules go by (the real one by default). */
  constructor(weave: Weave, clock: ScheduleClock = realClock) {
    this.#weave = weave
    this.#journal = weave.journal
    this.#clock = clock
    // Left by a weave that did not close (a crash): not this one's, until `start` says.
    if (this.#journal.meta(BLOCKED_META) !== undefined) this.#journal.setMeta(BLOCKED_META, null)
  }

  /**
   * @internal Starts firing: the thread modules' declared schedules are brought in (`declared`:
   * each type's `schedule` export; undefined when the weave was given its types by name), the
   * times missed while no weave ran are handled by policy, and the timer is armed.
   */
  start(declared: ReadonlyMap<string, unknown> | undefined, warn: (e: Error) => void): void {
    const store = (this.#store = new ScheduleStore(this.#journal))
    const now = this.#clock.now()
    const rows = new Map(store.all().map((r) => [r.name, r]))
    if (declared !== undefined) this.#declare(declared, rows, now, warn)
    this.#running = true
    for (const row of rows.values()) {
      let cron: CronTimes
      try {
        cron = new CronTimes(row.cron, row.tz)
      } catch (e) {
        warn(new RaimentError((e as RaimentError).code, `schedule '${row.name}' cannot run: ${(e as Error).message}`))
        continue
      }
      // A type this weave cannot run (not loaded, or its library missing here): the schedule
      // waits, its times kept, for a weave that runs it (which fires them by their policy).
      const why = this.#weave.unavailable.get(row.type) ?? (this.#weave.types.includes(row.type) ? null : new UnknownThreadType(row.type, this.#weave.types))
      const live: Live = { row, cron, params: decodeValue(row.params) as Record<string, unknown>, from: row.upto, next: null, blocked: why !== null }
      this.#live.set(row.name, live)
      if (why !== null) {
        live.why = why.message
        warn(blocked(row.name, why))
        continue
      }
      if (row.paused === 0) this.#missed(live, now)
      live.next = cron.next(live.from)
    }
    this.#saveBlocked()
    this.#arm()
  }

  /**
   * @internal A reload loaded `type`: its schedules that were blocked (src/weave.ts could not run
   * it) fire again, the times they kept by their policy.
   */
  unblock(type: string): void {
    if (!this.#running) return
    const now = this.#clock.now()
    for (const live of this.#live.values()) {
      if (!live.blocked || live.row.type !== type) continue
      live.blocked = false
      if (live.row.paused === 0) this.#missed(live, now)
      live.next = live.cron.next(live.from)
    }
    this.#saveBlocked()
    this.#arm()
  }

  /** Says in meta which schedules are blocked here (read by `raiment schedule ls` while this weave runs). */
  #saveBlocked(): void {
    const out: Record<string, string> = {}
    for (const live of this.#live.values()) if (live.blocked) out[live.row.name] = live.why ?? ''
    const text = Object.keys(out).length === 0 ? null : JSON.stringify(out)
    if (text === this.#blockedText) return
    this.#blockedText = text
    if (!this.#journal.closed) this.#journal.setMeta(BLOCKED_META, text)
  }

  /** @internal Stops firing (the weave closes). */
  stop(): void {
    if (this.#blockedText !== undefined && this.#blockedText !== null && !this.#journal.closed) this.#journal.setMeta(BLOCKED_META, null)
    this.#blockedText = undefined
    this.#running = false
    this.#cancel?.()
    this.#cancel = null
    this.#armedFor = Infinity
  }

  /**
   * Adds a schedule: from now on, at each time of `cron`, this weave spawns a thread of `type`
   * with `{ ...params, scheduledAt }`. Resolves once it is durable. Nothing is recorded when it
   * rejects.
   * @throws ScheduleExists when a schedule has that name
   * @throws InvalidSchedule RAIMENT_BAD_CRON, RAIMENT_BAD_TIME_ZONE or RAIMENT_BAD_SCHEDULE (name, policy, params)
   * @throws UnknownThreadType / ThreadTypeUnavailable when this weave cannot run `type`
   * @example
   * await weave.schedules.add('nightly-report', { cron: '0 3 * * *', type: 'report', params: { to: 'ops' }, missed: 'once' })
   */
  async add(name: string, options: ScheduleOptions): Promise<ScheduleInfo> {
    return this.#add(name, options, 'api')
  }

  /**
   * Removes a schedule; a thread it spawned runs on. Resolves once that is durable.
   * @throws UnknownSchedule when no schedule has that name
   * @throws DeclaredSchedule for a schedule a thread module of this weave declares (remove its export instead)
   */
  async remove(name: string): Promise<void> {
    this.#removeNow(name)
    await this.#journal.committed(true)
  }

  #removeNow(name: string): void {
    const live = this.#get(name)
    // One whose module this weave does not load (gone, or failed to load) may go: it is kept,
    // blocked, for a weave that has the module, and only a remove ends it.
    const t = live.row.type
    if (live.row.source === 'module' && this.#loads(t)) throw new DeclaredSchedule(name, t, 'remove it')
    this.#live.delete(name)
    this.#queue(this.#store!.delete(name))
    this.#arm()
  }

  /**
   * Pauses a schedule: no thread is spawned for the times that pass until it resumes. Resolves
   * once that is durable.
   * @throws UnknownSchedule when no schedule has that name
   */
  async pause(name: string): Promise<ScheduleInfo> {
    const live = this.#pauseNow(name)
    await this.#journal.committed(true)
    return this.#info(live)
  }

  #pauseNow(name: string): Live {
    const live = this.#get(name)
    if (live.row.paused === 0) {
      live.row.paused = 1
      this.#queue(this.#store!.pause(name))
      this.#arm()
    }
    return live
  }

  /**
   * Resumes a paused schedule, from now: the times that passed while it was paused are not fired.
   * @throws UnknownSchedule when no schedule has that name
   */
  async resume(name: string): Promise<ScheduleInfo> {
    const live = this.#resumeNow(name)
    await this.#journal.committed(true)
    return this.#info(live)
  }

  #resumeNow(name: string): Live {
    const live = this.#get(name)
    if (live.row.paused === 1) {
      const now = this.#clock.now()
      live.row.paused = 0
      live.from = Math.max(live.from, now)
      live.row.upto = Math.max(live.row.upto, now)
      if (!live.blocked) live.next = live.cron.next(live.from)
      this.#queue(this.#store!.resume(name, now))
      this.#arm()
    }
    return live
  }

  /** The schedules of this weave, by name, with their next time and the last they fired. */
  list(): ScheduleInfo[] {
    return [...this.#live.values()].sort((a, b) => (a.row.name < b.row.name ? -1 : 1)).map((l) => this.#info(l))
  }

  /** One schedule, or undefined. */
  get(name: string): ScheduleInfo | undefined {
    const live = this.#live.get(name)
    return live === undefined ? undefined : this.#info(live)
  }

  /**
   * @internal A request of `raiment schedule` while this weave runs (src/weave-control.ts):
   * `{ op, name, options? }`; the reply is `{ ok }` or `{ refused: <encoded error> }`. The change
   * is queued now and the reply is returned at once, for the caller to queue into the same batch
   * (a crash then loses both or neither).
   */
  control(arg: string): string {
    try {
      const { op, name, options } = JSON.parse(arg) as { op: string; name: string; options?: ScheduleOptions }
      let ok: unknown
      if (op === 'add') ok = this.#info(this.#addNow(name, options!, 'cli'))
      else if (op === 'rm') ok = (this.#removeNow(name), true)
      else if (op === 'pause') ok = this.#info(this.#pauseNow(name))
      else if (op === 'resume') ok = this.#info(this.#resumeNow(name))
      else throw new RaimentError('RAIMENT_INVALID_ARGUMENT', `unknown schedule request '${op}'`)
      return JSON.stringify({ ok })
    } catch (e) {
      return JSON.stringify({ refused: encodeError(e) })
    }
  }

  async #add(name: string, options: ScheduleOptions, source: ScheduleSource): Promise<ScheduleInfo> {
    const live = this.#addNow(name, options, source)
    await this.#journal.committed(true)
    return this.#info(live)
  }

  #addNow(name: string, options: ScheduleOptions, source: ScheduleSource): Live {
    this.#open()
    const d = checkDefinition(name, options)
    this.#checkType(d.type)
    if (this.#live.has(d.name) || this.#store!.get(d.name) !== undefined) throw new ScheduleExists(d.name)
    const now = this.#clock.now()
    const write = this.#store!.insert(d, source, now)
    this.#queue(write)
    const live: Live = { row: newRow(d, source, now), cron: d.cron, params: d.params, from: now, next: d.cron.next(now), blocked: false }
    this.#live.set(d.name, live)
    this.#arm()
    return live
  }

  /**
   * The times missed while no weave ran, by the schedule's policy: `all` leaves them to the
   * timer's turns (a thousand a turn, oldest first); `skip` and `once` count from `now` on.
   */
  #missed(live: Live, now: number): void {
    if (live.row.missed === 'all') return
    if (live.row.missed === 'once') {
      const t = live.cron.latest(live.from, now)
      if (t !== null) this.#fire(live, t)
    }
    live.from = Math.max(live.from, now)
    // Kept: the times passed over here stay so, should a later start find the policy changed to
    // `all` (before, `upto` stayed where the last fire left it, and that start fired them).
    if (live.row.upto < live.from) {
      live.row.upto = live.from
      this.#queue(this.#store!.upto(live.row.name, live.from))
    }
  }

  /** The timer: fires every time that is due, then arms for the next. */
  readonly #turn = (): void => {
    this.#cancel = null
    this.#armedFor = Infinity
    if (!this.#running) return
    try {
      this.#fireDue()
    } catch (e) {
      this.#error(new RaimentError('RAIMENT_SCHEDULE_FAILED', `the schedules stopped firing: ${(e as Error).message}`, { cause: e }))
      return
    }
    this.#arm()
  }

  #fireDue(): void {
    const now = this.#clock.now()
    let fired = 0
    for (const live of this.#live.values()) {
      if (live.row.paused === 1 || live.next === null || live.next > now) continue
      for (const t of live.cron.between(live.from, now)) {
        this.#fire(live, t)
        if (++fired >= PER_TURN || live.blocked) break
      }
      if (!live.blocked) live.next = live.cron.next(live.from)
      if (fired >= PER_TURN) break
    }
  }

  /** To the weave's `error` listeners, or a process warning when it has none. */
  #error(err: Error): void {
    if (this.#weave.listenerCount('error') > 0) this.#weave.emit('error', err)
    else process.emitWarning(err)
  }

  /** Spawns the thread of time `at`, and moves `upto` to `at`, in one batch. */
  #fire(live: Live, at: number): void {
    const row = live.row
    const id = scheduledThreadId(this.#journal.weaveId, row.name, at)
    let spawned: string | null = null
    try {
      spawned = this.#weave.spawn(row.type, { ...live.params, scheduledAt: new Date(at).toISOString() }, { id })
    } catch (e) {
      if (e instanceof WeaveClosed) return
      if (e instanceof ThreadTypeUnavailable || e instanceof UnknownThreadType) {
        // Its type went (a reload that failed to load it): it waits, as at start, its times kept.
        live.blocked = true
        live.why = e.message
        live.next = null
        this.#saveBlocked()
        return this.#error(blocked(row.name, e))
      }
      this.#error(new RaimentError('RAIMENT_SCHEDULE_NOT_FIRED', `schedule '${row.name}' did not spawn its thread of ${new Date(at).toISOString()}: ${(e as Error).message}`, { cause: e }))
    }
    this.#queue(this.#store!.fired(row.name, at, spawned, { at: row.last_fired, thread: row.last_thread }))
    live.from = at
    row.upto = at
    if (spawned !== null) {
      row.last_fired = at
      row.last_thread = spawned
    }
  }

  #arm(): void {
    if (!this.#running) return
    let soonest = Infinity
    for (const l of this.#live.values()) if (l.row.paused === 0 && l.next !== null && l.next < soonest) soonest = l.next
    if (soonest >= this.#armedFor) return
    this.#cancel?.()
    this.#armedFor = soonest
    this.#cancel = soonest === Infinity ? null : this.#clock.setTimer(soonest, this.#turn)
  }

  /** The declared schedules, brought into `rows` (and the journal): added, changed, or removed. */
  #declare(declared: ReadonlyMap<string, unknown>, rows: Map<string, ScheduleRow>, now: number, warn: (e: Error) => void): void {
    const store = this.#store!
    const named = new Set<string>()
    for (const [type, exported] of declared) {
      for (const decl of Array.isArray(exported) ? exported : [exported]) {
        const name = (decl as ScheduleDeclaration | null)?.name ?? type.replaceAll('/', '.')
        const twice = named.has(name)
        named.add(name)
        // Its type cannot run here (the weave has said why): its row, if any, is kept as it is.
        if (this.#weave.unavailable.has(type)) continue
        try {
          if (twice) throw new InvalidSchedule('RAIMENT_BAD_SCHEDULE', `the name '${name}' is declared by another export too; give each a name of its own`)
          if (decl === null || typeof decl !== 'object') throw new InvalidSchedule('RAIMENT_BAD_SCHEDULE', `expected { cron, params?, missed?, tz?, name? }, got ${String(decl)}`)
          const { name: _n, ...rest } = decl as ScheduleDeclaration
          const d = checkDefinition(name, { ...rest, type }, new Set(['name']))
          const row = rows.get(name)
          if (row === undefined) {
            this.#queue(store.insert(d, 'module', now))
            rows.set(name, newRow(d, 'module', now))
          } else if (row.source !== 'module') {
            throw new ScheduleExists(name)
          } else if (row.cron !== d.cron.expr || row.tz !== d.cron.tz || row.type !== d.type || row.params !== d.paramsText || row.missed !== d.missed) {
            this.#queue(store.define(d))
            // New times count from now: the new expression (or zone) was never due before, so
            // no time of it that passed while no weave ran is fired (a daily schedule made one
            // of every second would fire one for each second of the downtime). A zone stored in
            // another case (`europe/paris`, as kept before) is the same zone.
            const retimed = row.cron !== d.cron.expr || zoneName(row.tz) !== d.cron.tz
            if (retimed) this.#queue(store.upto(name, now))
            rows.set(name, { ...row, cron: d.cron.expr, tz: d.cron.tz, type: d.type, params: d.paramsText, missed: d.missed, upto: retimed ? Math.max(row.upto, now) : row.upto })
          }
        } catch (e) {
          const code = (e as { code?: string }).code ?? 'RAIMENT_BAD_SCHEDULE'
          warn(new RaimentError(code, `the schedule exported by thread type '${type}' is not used: ${(e as Error).message}`, { cause: e }))
        }
      }
    }
    // A declaration gone from its module goes too: only where this weave loads that module (one
    // that failed to load this time, or a weave of other code, a takeover's, keeps it, blocked).
    for (const row of [...rows.values()]) {
      if (row.source === 'module' && !named.has(row.name) && this.#loads(row.type)) {
        this.#queue(store.delete(row.name))
        rows.delete(row.name)
      }
    }
  }

  /** Whether this weave loads the module of thread type `type` (it runs it). */
  #loads(type: string): boolean {
    return this.#weave.types.includes(type) && !this.#weave.unavailable.has(type)
  }

  #get(name: string): Live {
    this.#open()
    checkName(name)
    const live = this.#live.get(name)
    if (live === undefined) throw new UnknownSchedule(name, [...this.#live.keys()])
    return live
  }

  #open(): void {
    if (!this.#running) throw new WeaveClosed()
  }

  #checkType(type: string): void {
    if (this.#weave.types.includes(type)) return
    const why = this.#weave.unavailable.get(type)
    throw why !== undefined ? new ThreadTypeUnavailable(type, why) : new UnknownThreadType(type, this.#weave.types)
  }

  #queue([stmt, params]: Write): void {
    this.#journal.queue(stmt, params)
  }

  #info(live: Live): ScheduleInfo {
    const info = infoOf(live.row, live.row.paused === 1 ? null : live.next)
    return live.blocked ? { ...info, blocked: live.why ?? '' } : info
  }
}

function newRow(d: Definition, source: ScheduleSource, now: number): ScheduleRow {
  return { name: d.name, cron: d.cron.expr, tz: d.cron.tz, type: d.type, params: d.paramsText, missed: d.missed, paused: 0, upto: now, last_fired: null, last_thread: null, source, created: now }
}

/** A schedule whose type this weave cannot run: it fires nothing here, and keeps its times. */
function blocked(name: string, why: Error): RaimentError {
  return new RaimentError(
    'RAIMENT_SCHEDULE_BLOCKED',
    `schedule '${name}' waits: ${why.message.replace(/\.$/, '')}. Its times are kept; a weave that runs its type fires them by the schedule's 'missed' policy when it starts, or this one once a reload loads the type`,
    { cause: why },
  )
}

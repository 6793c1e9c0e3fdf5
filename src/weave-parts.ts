/**
 * What a weave (src/weave.ts) is made of behind its public API, and how the parts are wired
 * together when it is constructed: its types and libraries, the runs of its threads, dumps,
 * control requests, moves, reloads, passivation, spawn ids, joins, and the WeaveHost through which
 * the helpers acting on its runs reach it.
 *
 * Invariants:
 * - One WeaveParts per weave, made once by `weaveParts` in its constructor and held by it alone
 *   (a `#private` field): nothing outside the weave and the modules it hands it to sees it.
 * - `closed` turns true once, in the close (src/weave-stop.ts `closeWeave`), and never back; once
 *   it is, nothing starts a thread or writes a missing dump.
 * - `stopCalls` is set once a close (or the CLI's wait) starts waiting for the calls in flight;
 *   from then `host.stopping()` is true, so a run started after it stops at its next call too.
 */
import { resolve } from 'node:path'
import { DumpWriter } from './dump.js'
import { ThreadTypeUnavailable, UnknownThreadType, type RaimentError } from './errors.js'
import type { Journal } from './journal.js'
import type { Observer } from './observer.js'
import { Schedules } from './schedules/schedules.js'
import type { ScheduleClock } from './schedules/clock.js'
import { attachClock } from './time/attach.js'
import { clockOption } from './time/timers.js'
import { Keyring } from './secrets/keyring.js'
import type { Library } from './libraries.js'
import type { ThreadTypes } from './thread-types.js'
import type { AnyThreadType } from './thread.js'
import { ControlRequests } from './weave-control.js'
import type { Forks } from './check/fork.js'
import { hashFiles, WeaveReloads } from './check/reload.js'
import { givenTypes, HOW_TO_ADD_TYPE, type HowToAddType, type InternalWeaveOptions, type WeaveOptions } from './weave-options.js'
import type { WeaveHost } from './weave-types.js'
import { WeaveMoves } from './weave-moves.js'
import { PendingJoins } from './weave-join.js'
import { Passivation } from './passivation/passivation.js'
import { WeaveRuns } from './weave-runs.js'
import { SpawnIds } from './spawn-ids.js'
import type { StopCalls } from './weave-stop.js'
import type { Weave } from './weave.js'

/** What a weave is made of behind its public API (its `#private` state). */
export interface WeaveParts {
  readonly types: Map<string, AnyThreadType>
  /** Types whose module is there but cannot run (it failed to load, or uses a missing library), with why. */
  readonly unavailable: Map<string, RaimentError>
  /** Where a type it does not know is given, when its types were given as objects (`threads: { … }`); null for a directory. */
  readonly howToAdd: HowToAddType | null
  readonly libs: Map<string, Library>
  /** The runs of its threads: started, ended, resumed (src/weave-runs.ts). */
  readonly runs: WeaveRuns
  /** Writes the dumps of failed threads (src/dump.ts). */
  readonly dumps: DumpWriter
  /** Threads killed here while not running here, until their end commits (see `Weave.kill`). */
  readonly ending: Set<string>
  closed: boolean
  /** The close under way (see `Weave.close`), and its wait for the calls in flight (src/weave-stop.ts). */
  stop: Promise<void> | null
  stopCalls: StopCalls | null
  /** Told of runs, calls and commits (src/observer.ts: OpenTelemetry), or null. */
  observer: Observer | null
  /** What the helpers acting on this weave's runs reach of it (moves, forks, reloads). */
  readonly host: WeaveHost
  /** Moves of threads to and from other weaves (src/weave-moves.ts). */
  readonly moves: WeaveMoves
  forks: Forks | null
  /** Threads leaving memory while they wait, and waking (src/passivation/); null when off. */
  readonly passivation: Passivation | null
  /** Reloads of the threads directory (src/check/reload.ts); null: types given by name. */
  readonly reloads: WeaveReloads | null
  /** What other processes ask of this journal (src/weave-control.ts). */
  readonly control: ControlRequests
  /** The API's joins still pending: rejected when the weave closes (src/weave-join.ts). */
  readonly joins: PendingJoins
  /** Spawns of ids chosen by the caller: once per id (src/spawn-ids.ts). */
  readonly spawnIds: SpawnIds
}

/**
 * Makes the parts of `weave` (its journal, config and messages set already) and wires them: the
 * weave's clock and schedules come back with them, for its public fields.
 * @throws SecretKeyUnusable / InvalidArgument (a bad secret key, a bad clock), as `Weave.open` does
 */
export function weaveParts(weave: Weave, journal: Journal, types: ThreadTypes, o: WeaveOptions): { parts: WeaveParts; clock: ScheduleClock; schedules: Schedules } {
  // Filled in below; the closures that read it run after the constructor.
  const p = {
    spawnIds: new SpawnIds(journal),
    types: types.types,
    unavailable: types.unavailable,
    howToAdd: typeof o.threads !== 'object' ? null : ((o as InternalWeaveOptions)[HOW_TO_ADD_TYPE] ?? givenTypes),
    libs: new Map(),
    ending: new Set<string>(),
    closed: false,
    stop: null,
    stopCalls: null,
    observer: null,
    forks: null,
    joins: new PendingJoins(),
  } as Partial<WeaveParts> as { -readonly [K in keyof WeaveParts]: WeaveParts[K] }
  const dumps = (p.dumps = new DumpWriter(o.dumps === false ? false : resolve(o.dumps ?? 'dumps'), journal, (e) => weave.emit('error', e)))
  // After the open (whoever opened it listens for 'error' by then), unless closed at once, or
  // the open failed (its journal closed, maybe before this weave was made: see below).
  if (journal.dumpsDueSince !== null) {
    const since = journal.dumpsDueSince
    setImmediate(() => {
      if (!p.closed && !journal.closed) dumps.writeMissing(since)
    })
  }
  // The key of secret values' markers (src/secrets/keyring.ts); read or made on first use.
  const keyring = Keyring.forJournal(weave.config.db)
  // A pending row whose kill is queued (not yet committed) is not started.
  p.control = new ControlRequests(weave, (row) => p.ending.has(row.id) || p.runs.adopt(row), () => p.closed, (id) => p.runs.get(id))
  const clock = clockOption(o)
  weave.messages.inboxes.clock = clock
  const schedules = new Schedules(weave, clock)
  const host = (p.host = makeHost(weave, p))
  attachClock(clock, journal, () => p.runs.values(), (run) => p.runs.parked.has(run))
  p.moves = new WeaveMoves(host)
  const dir = typeof o.threads === 'object' ? null : (o.threads ?? 'threads')
  p.reloads = dir === null ? null : new WeaveReloads(host, { dir, ioLibs: o.ioLibs ?? 'io-libs', types: p.types, unavailable: p.unavailable, hashes: hashFiles(types.files.values()) })
  const after = o.passivateAfter ?? 30_000
  p.passivation = after === false || after === Infinity ? null : new Passivation({ ...host, forget: (run) => p.runs.forget(run) }, after)
  p.runs = new WeaveRuns({
    host,
    libs: p.libs,
    dumps,
    keyring,
    onDivergence: o.onDivergence ?? 'fail',
    alwaysReplay: o.alwaysReplay ?? false,
    passivation: p.passivation,
    moves: p.moves,
  })
  return { parts: p, clock, schedules }
}

function makeHost(weave: Weave, p: WeaveParts): WeaveHost {
  return {
    weave,
    closed: () => p.closed,
    stopping: () => p.stopCalls !== null,
    run: (id) => p.runs.get(id),
    runs: () => p.runs.values(),
    type: (name) => p.types.get(name),
    prepare: (id, type, parent, entries, trace, continued, scope) => p.runs.prepare(id, type, parent, entries, trace ?? null, continued, scope ?? null),
    start: (run, t, params, resumed, woke) => p.runs.start(run, t, params, resumed, woke),
    ended: (run, end) => p.runs.ended(run, end),
    cannotRun: (id, type, parent) => p.runs.cannotRun(id, type, parent),
    park: (row) => p.runs.parked.park(row),
    isParked: (run) => p.runs.parked.has(run),
    unpark: (type, replays) => p.runs.parked.unpark(type, replays),
    waitingForCode: (type) => p.runs.parked.waitingForCode(type),
    stillDiverges: (id, where) => p.runs.parked.stillDiverges(id, where),
    cannotRunType: (type) => cannotRunType(p, type),
    entries: (id) => p.runs.entries(id),
    record: (id) => p.runs.record(id),
    weft: (run, entries) => p.runs.weft(run, entries),
    observer: () => p.observer,
    wake: (id, by) => p.runs.woken(id, by),
    passivated: (type) => p.passivation?.ofType(type) ?? [],
  }
}

/** Why the weave cannot run threads of `type`. */
export function cannotRunType(p: WeaveParts, type: string): RaimentError {
  const why = p.unavailable.get(type)
  return why !== undefined ? new ThreadTypeUnavailable(type, why) : new UnknownThreadType(type, [...p.types.keys()], undefined, p.howToAdd?.(type))
}

/**
 * Checking one thread's record against a thread type: a strict replay that calls no library
 * (the weft with no journal), and the verdict drawn from how it ends.
 *
 * Invariants:
 * - Nothing is written and no library method runs: every call is answered from the record, and
 *   a call the record cannot answer stops the replay there.
 * - A thread that has not ended (running, pending, killed) is compatible when its whole record
 *   replays: asking for more once every recorded outcome is released is where it goes on live.
 *   A thread that ended (done, failed) must also end where its record ends.
 * - The replay runs in microtasks only (the weft releases outcomes on drained microtask queues),
 *   so a thread still unsettled when a macrotask runs waits on something outside its record.
 */
import { forget, giveMarks } from '../in-flight.js'
import { isContinueAsNew } from '../continue/continue.js'
import { decodeArgs, decodeValue, encodeArgs } from '../encoding.js'
import { ReplayDivergence, type DivergenceDetail } from '../errors.js'
import { brokenLibrary, Library, threadView, type ReplayParts } from '../libraries.js'
import type { AnyThreadType } from '../thread.js'
import { describeKey, splitKey, Weft, type Entry } from '../weft.js'
import { argsDiff } from './diff.js'
import { callSite } from '../call-site.js'
import type { ErrorRecord } from '../error-records.js'
import { endedByItself } from '../record-end.js'
import { replaysEnded } from '../replay-markers.js'

/** A thread to check: its row, and a way to read its record (fresh entries at each call). */
export interface CheckedThread {
  readonly id: string
  readonly type: string
  readonly status: string
  /** The encoded params, as the journal holds them. */
  readonly params: string
  /** The encoded result or error of a thread that ended, as the journal holds it. */
  readonly outcome?: string | null
  entries(): Entry[]
  /** The calls it had in flight when its weave stopped (src/in-flight.ts `marksIn`): asked for first. */
  readonly inFlight?: ReadonlySet<string>
}

/** A call as a verdict shows it: `lib.method` and its decoded arguments. */
export interface ShownCall {
  readonly call: string
  readonly args: unknown
  readonly ord: number
}

export type Verdict =
  | {
      readonly id: string
      readonly type: string
      readonly status: string
      readonly verdict: 'compatible'
      /** How many recorded outcomes replayed. */
      readonly entries: number
      /** How the replay went on past the record: it ended (`done`, `failed` with its error), or would go on live. */
      readonly then: 'done' | 'failed' | 'live'
      readonly error?: string
    }
  | {
      readonly id: string
      readonly type: string
      readonly status: string
      readonly verdict: 'diverges'
      /** The entry (0-based, in completion order) where the replay left the record, and its seq. */
      readonly at: number
      readonly seq: number | null
      readonly kind: DivergenceDetail['kind'] | 'stuck'
      readonly recorded: ShownCall | null
      readonly made: ShownCall | null
      /** Where the thread's code made `made`: `file:line:column`, or null. */
      readonly where: string | null
      /** How the arguments of `made` differ from those of `recorded`, one line per difference. */
      readonly diff: string[]
      /** What the code threw, where it ended by a throw before the record did (kind `ended`). */
      readonly threw?: string
      readonly message: string
    }
  | {
      readonly id: string
      readonly type: string
      readonly status: string
      readonly verdict: 'does-not-load'
      readonly code: string
      readonly message: string
    }

/** Markers seen in a thread's replay: each marker call, and whether it took the old path. */
export interface MarkerUse {
  /** The change: the marker's single string argument, or the call as text. */
  readonly change: string
  /** True where the record lacked it (the old path), false where the record holds it (the new). */
  readonly old: boolean
}

export interface CheckResult {
  readonly verdict: Verdict
  readonly markers: MarkerUse[]
}


interface Outcome {
  /** How many recorded entries the replay was given. */
  entries: number
  error: Error | null
  markers: MarkerUse[]
}

/** One strict replay of `t`'s record under `type`; `stacks`: keep each call's stack. */
async function replayOnce(type: AnyThreadType, t: CheckedThread, parts: ReadonlyMap<string, ReplayParts>, stacks: boolean): Promise<Outcome> {
  const absent: string[] = []
  let markerLibs: Set<string> | null = null
  for (const u of type.uses) if (parts.get(u)?.markers !== undefined) (markerLibs ??= new Set()).add(u)
  let stopped: (e: Error) => void = () => {}
  const stop = new Promise<never>((_, rej) => (stopped = rej))
  stop.catch(() => {})
  const entries = t.entries()
  const weft = new Weft({
    threadId: t.id,
    type: t.type,
    journal: null,
    config: { db: '', weaveId: 'check' },
    entries,
    stacks,
    trace: markerLibs !== null,
    onStop: (e) => stopped(e),
    onMarker: (key) => absent.push(key),
  })
  if (t.inFlight !== undefined) giveMarks(weft, new Set(t.inFlight))
  if (endedOf(t)) replaysEnded(weft)
  const self = threadView(t.type, type.uses, parts, (u) => replayLibrary(parts, u), weft)
  let stuck: () => void = () => {}
  const idle = new Promise<'stuck'>((res) => (stuck = () => res('stuck')))
  const timer = setImmediate(stuck)
  let out: Outcome
  try {
    const body = Promise.resolve().then(() => type.does.call(self as never, decodeValue(t.params) as never))
    const r = await Promise.race([body, stop, idle])
    if (r === 'stuck' && weft.stopped === null) {
      weft.stop(new ReplayDivergence('stuck'))
      return { entries: entries.length, error: STUCK, markers: [] }
    }
    out = { entries: entries.length, error: weft.finish(), markers: [] }
  } catch (e) {
    out = { entries: entries.length, error: weft.finish(isContinueAsNew(e) ? undefined : e) ?? (e as Error), markers: [] }
  } finally {
    clearImmediate(timer)
    forget(weft)
  }
  if (markerLibs !== null) {
    const old = new Set(absent)
    for (const c of weft.trace!) {
      const lib = c.call.slice(0, c.call.indexOf('.'))
      if (!markerLibs.has(lib) || !Object.hasOwn(parts.get(lib)!.markers!, c.call.slice(lib.length + 1))) continue
      const change = c.args.length === 1 && typeof c.args[0] === 'string' ? c.args[0] : describeKey(c.call + ':' + encodeArgs(c.args))
      out.markers.push({ change, old: old.has(c.call + ':' + encodeArgs(c.args)) })
    }
  }
  return out
}

const STUCK = new Error('stuck')

/** The replay-only libraries of a set of parts, made once each (a thread binds its own view). */
const libraries = new WeakMap<ReadonlyMap<string, ReplayParts>, Map<string, Library>>()

function replayLibrary(parts: ReadonlyMap<string, ReplayParts>, name: string): Library {
  let byName = libraries.get(parts)
  if (byName === undefined) libraries.set(parts, (byName = new Map<string, Library>()))
  let lib = byName.get(name)
  if (lib === undefined) byName.set(name, (lib = Library.replayOnly(name, parts.get(name)?.threadSide, parts.get(name)?.markers, parts.get(name)?.retry)))
  return lib
}

/**
 * Checks thread `t` against `type`: a strict replay of its record; a divergence is replayed a
 * second time keeping stacks, to say where in `file` (the type's module) the call was made.
 */
export async function checkThread(type: AnyThreadType, t: CheckedThread, parts: ReadonlyMap<string, ReplayParts>, file?: string): Promise<CheckResult> {
  const broken = brokenLibrary(type.uses, parts)
  if (broken !== null) return { verdict: { id: t.id, type: t.type, status: t.status, verdict: 'does-not-load', code: broken.code, message: broken.message }, markers: [] }
  const first = await replayOnce(type, t, parts, false)
  const verdict = verdictOf(t, first)
  if (verdict.verdict !== 'diverges' || verdict.made === null) return { verdict, markers: first.markers }
  const second = await replayOnce(type, t, parts, true)
  const d = second.error instanceof ReplayDivergence ? second.error.detail : undefined
  const where = d?.made?.stack !== undefined ? callSite(d.made.stack, file) : null
  return { verdict: { ...verdict, where }, markers: first.markers }
}

function verdictOf(t: CheckedThread, o: Outcome): Verdict {
  const base = { id: t.id, type: t.type, status: t.status }
  const e = o.error
  if (e === STUCK) {
    return {
      ...base,
      verdict: 'diverges',
      at: -1,
      seq: null,
      kind: 'stuck',
      recorded: null,
      made: null,
      where: null,
      diff: [],
      message: `thread ${t.id} (${t.type}) waits on something that is not a call through this.<library> (a timer, a promise of its own), so its record cannot say how it goes on: make it deterministic`,
    }
  }
  const entries = o.entries
  if (e === null) return { ...base, verdict: 'compatible', entries, then: 'done' }
  if (!(e instanceof ReplayDivergence) || e.detail === undefined) {
    return { ...base, verdict: 'compatible', entries, then: 'failed', error: `${e.name}: ${e.message}` }
  }
  const d = e.detail
  if (d.kind === 'beyond' && !endedOf(t)) return { ...base, verdict: 'compatible', entries, then: 'live' }
  const recorded = d.recorded ? shown(d.recorded.key, d.recorded.ord) : null
  const made = d.made ? shown(d.made.key, d.made.ord) : null
  return {
    ...base,
    verdict: 'diverges',
    at: d.index,
    seq: d.recorded?.seq ?? null,
    kind: d.kind,
    recorded,
    made,
    where: null,
    diff: recorded !== null && made !== null ? argsDiff(recorded, made) : [],
    ...(d.threw !== undefined ? { threw: d.threw } : {}),
    message: e.message,
  }
}

/** Whether `t` ended by itself (its record holds its whole run); an end that cannot be read counts as its own. */
function endedOf(t: CheckedThread): boolean {
  let error: ErrorRecord | null = null
  try {
    if (t.status === 'failed' && t.outcome) error = decodeValue(t.outcome) as ErrorRecord
  } catch {
    // (A class this process has not registered: not one of the weave's failures, which it can read.)
  }
  return endedByItself(t.status, error)
}

function shown(key: string, ord: number): ShownCall {
  const { call, args } = splitKey(key)
  let decoded: unknown
  try {
    decoded = decodeArgs(args)
  } catch {
    decoded = args
  }
  return { call, args: decoded, ord }
}

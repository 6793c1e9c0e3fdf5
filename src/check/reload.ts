/**
 * Live reload: thread files that changed on disk are loaded into a running weave (`weave.reload()`,
 * `raiment reload`, SIGHUP, `raiment start --watch`).
 *
 * Invariants:
 * - A file that fails to load (or uses a library that does not exist) changes nothing: the type
 *   keeps the code it ran with, and the report says why.
 * - New spawns of a reloaded type run the new code.
 * - Each running thread of a reloaded type is checked by a strict replay of its record under the
 *   new code (src/check/replay-check.ts). A compatible one is stopped as at a shutdown (its calls
 *   in flight aborted, what it recorded committed) and resumed from its record on the new code,
 *   after a second check of the record as it is then (a call answered between the two checks is
 *   in it); one that is not compatible (at either check) keeps, or resumes on, the code it
 *   started with, whose module stays loaded.
 * - Only the thread file itself is loaded again: modules it imports stay as they were loaded.
 */
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { InvalidThreadModule, RaimentError, WeaveClosed } from '../errors.js'
import { allLibraryFiles, replayParts, type ReplayParts } from '../libraries.js'
import { checkUses, loadThreadType, replacedType, threadFiles } from '../thread-types.js'
import type { AnyThreadType } from '../thread.js'
import { decodeValue } from '../encoding.js'
import type { Run, WeaveHost } from '../weave-types.js'
import type { Entry } from '../weft.js'
import { ownTurn } from '../group-commit.js'
import { holdCalls, MOVE_WAIT_MS } from '../weave-moves.js'
import { marksIn } from '../in-flight.js'
import { checkThread } from './replay-check.js'
import { keptOnOldCode, offOldCode } from '../old-code.js'
import { replayingNow } from '../divergence-wait.js'

/** What a reload did, per thread type whose file changed. */
export interface ReloadReport {
  types: Array<{
    type: string
    file: string
    /** Why the new file was not taken (the old code runs on); absent when it was. */
    error?: { code: string; message: string }
    /** Running threads that continue on the new code. */
    moved: string[]
    /** Running threads that keep the code they started with, and why. */
    kept: Array<{ id: string; why: string }>
    /** Threads that waited for the type (this weave could not run it) and run now; absent for none. */
    resumed?: string[]
    /** Threads that waited for code that replays their record (on-divergence wait) and resumed, since it does; absent for none. */
    replayed?: string[]
    /** Threads that wait for code that replays their record (on-divergence wait) and still do under this file, and why; absent for none. */
    waiting?: Array<{ id: string; why: string }>
  }>
  /**
   * Every thread of the weave that runs code a reload kept it on (this one's or an earlier one's),
   * once this one is done: a restart or a crash resumes it under the file on disk, where it
   * diverges (docs/changing-code.md). `raiment reload` exits 2 when there is one.
   */
  oldCode: string[]
  /**
   * Every thread of the weave that waits for code that replays its record (on-divergence wait),
   * once this reload is done: `raiment reload` exits 2 when there is one.
   */
  waitingForCode: string[]
}

/** What the weave lends a reload (src/weave.ts). */
export interface ReloadAccess {
  readonly dir: string
  readonly ioLibs: string | false
  /** The types the weave runs, by name (replaced here for the files that changed). */
  readonly types: Map<string, AnyThreadType>
  readonly unavailable: Map<string, RaimentError>
  readonly libraries: readonly string[]
  /** The content hash of each thread file as last loaded, by file. */
  readonly hashes: Map<string, string>
  /** The threads of `type` running now, with their encoded params. */
  running(type: string): Array<{ id: string; params: string }>
  /** The record of a thread as committed now. */
  entries(id: string): Entry[]
  /** The calls it has in flight as the journal says now (src/in-flight.ts): its new code must ask for them first. */
  inFlight(id: string): ReadonlySet<string>
  /**
   * Stops threads `ids` at their next call and waits, all at once, up to MOVE_WAIT_MS for their
   * calls in flight to be answered and recorded (a call let go of would be made again).
   */
  hold(ids: string[]): Promise<void>
  /**
   * Stops thread `id` (held) as at a shutdown and commits what it recorded; returns its record
   * then (null: it has ended, or it was moved meanwhile).
   */
  stop(id: string): Entry[] | null
  /** Resumes thread `id` from `entries` on `type`; false when it has ended (or moved away) meanwhile. */
  resume(id: string, type: AnyThreadType, entries: Entry[]): boolean
  /** Wakes the passivated threads of `type` (src/passivation/) on the code they run, before it is replaced. */
  wake?(type: string): void
}

let reloads = 0

/** The content hash of each file, by file. */
export function hashFiles(files: Iterable<string>): Map<string, string> {
  const out = new Map<string, string>()
  for (const f of files) out.set(f, hashOf(f))
  return out
}

function hashOf(file: string): string {
  try {
    return createHash('sha256').update(readFileSync(file)).digest('hex')
  } catch {
    return ''
  }
}

/** Loads the thread files of `a.dir` that changed since they were loaded, and moves what can move. */
export async function reload(a: ReloadAccess): Promise<ReloadReport> {
  const report: ReloadReport = { types: [], oldCode: [], waitingForCode: [] }
  let parts: Map<string, ReplayParts> | null = null
  /** The libraries on disk now (read once, at the first changed file). */
  let onDisk: string[] | undefined
  const query = `raiment-reload=${++reloads}`
  for (const [name, file] of threadFiles(a.dir)) {
    const hash = hashOf(file)
    if (a.hashes.get(file) === hash) continue
    const entry: ReloadReport['types'][number] = { type: name, file, moved: [], kept: [] }
    report.types.push(entry)
    let t: AnyThreadType
    try {
      t = await loadThreadType(file, query)
      checkUses(new Map([[name, t]]), a.libraries, undefined, undefined, (onDisk ??= [...allLibraryFiles(a.ioLibs).keys()]))
    } catch (e) {
      const err = e as RaimentError
      entry.error = { code: err.code ?? 'RAIMENT_INVALID_THREAD_MODULE', message: err instanceof InvalidThreadModule ? err.message : `${file}: ${err.message}` }
      // A type not running yet: its spawns are refused with why, as for a module that failed at the start.
      if (!a.types.has(name)) a.unavailable.set(name, err instanceof RaimentError ? err : new InvalidThreadModule(file, String(err), { cause: err }))
      continue
    }
    a.hashes.set(file, hash)
    const old = a.types.get(name)
    // Each call below that reads records flushes the journal: in a turn of its own (`ownTurn`).
    await ownTurn()
    a.wake?.(name)
    if (old !== undefined) replacedType(old, name)
    a.types.set(name, t)
    a.unavailable.delete(name)
    if (old === undefined) continue
    parts ??= await replayParts(a.ioLibs)
    const compatible: Array<{ id: string; params: string }> = []
    for (const run of a.running(name)) {
      const thread = { id: run.id, type: name, status: 'running', params: run.params }
      await ownTurn()
      const recorded = a.entries(run.id)
      const first = await checkThread(t, { ...thread, entries: () => recorded, inFlight: a.inFlight(run.id) }, parts, file)
      if (first.verdict.verdict !== 'compatible') entry.kept.push({ id: run.id, why: why(first.verdict) })
      else compatible.push(run)
    }
    await a.hold(compatible.map((r) => r.id))
    let next = 0
    try {
      for (; next < compatible.length; next++) {
        const run = compatible[next]!
        const thread = { id: run.id, type: name, status: 'running', params: run.params }
        await ownTurn()
        const record = a.stop(run.id)
        if (record === null) continue
        const second = await checkThread(t, { ...thread, entries: () => record.map((e) => ({ ...e, call: null })), inFlight: a.inFlight(run.id) }, parts, file)
        if (second.verdict.verdict === 'compatible') {
          if (a.resume(run.id, t, record)) entry.moved.push(run.id)
        } else if (a.resume(run.id, old, record)) entry.kept.push({ id: run.id, why: why(second.verdict) })
      }
    } finally {
      // Something threw: the threads still held (that one included) go on, on the code they ran.
      for (let i = next; i < compatible.length; i++) {
        await ownTurn()
        const record = a.stop(compatible[i]!.id)
        if (record !== null) a.resume(compatible[i]!.id, old, record)
      }
    }
  }
  return report
}

function why(v: Awaited<ReturnType<typeof checkThread>>['verdict']): string {
  if (v.verdict === 'diverges') {
    // The same call, made otherwise: say how (as `raiment check` does), not the call twice.
    if (v.made !== null && v.recorded !== null && v.made.call === v.recorded.call && v.diff.length > 0) return `diverges at entry ${v.at}: ${v.made.call} differs (${v.diff.join('; ')})`
    return `diverges at entry ${v.at}${v.made !== null ? `: the new code calls ${v.made.call}` : ''}${v.recorded !== null ? ` where the record holds ${v.recorded.call}` : ''}`
  }
  if (v.verdict === 'does-not-load') return v.message
  return 'compatible'
}

/** The reloads of a weave's threads directory (`Weave.reload`): one at a time, a reload asked for during another runs after it. */
export class WeaveReloads {
  #last: Promise<unknown> = Promise.resolve()

  constructor(
    readonly host: WeaveHost,
    readonly files: Pick<ReloadAccess, 'dir' | 'ioLibs' | 'types' | 'unavailable' | 'hashes'>,
  ) {}

  next(): Promise<ReloadReport> {
    const next = this.#last.then(() => {
      if (this.host.closed()) throw new WeaveClosed()
      return reloadWeave(this.host, this.files)
    })
    this.#last = next.catch(() => {})
    return next
  }
}

/**
 * `Weave.reload`, for a weave that is open, given its thread files and the state a reload
 * replaces (types, unavailable, hashes): reloads, then emits 'reload' with the report.
 */
export async function reloadWeave(host: WeaveHost, o: Pick<ReloadAccess, 'dir' | 'ioLibs' | 'types' | 'unavailable' | 'hashes'>): Promise<ReloadReport> {
  const weave = host.weave
  const journal = weave.journal
  /** The wefts `hold` stopped, by thread: `stop` lets go of a thread only if it still runs on its own. */
  const held = new Map<string, Run['weft']>()
  const live = (id: string): Run | null => {
    const run = host.run(id)
    return run === undefined || run.ended || host.closed() ? null : run
  }
  const report = await reload({
    ...o,
    libraries: weave.libraries,
    // Passivated threads of a changed type wake on the code they ran, to be checked and moved or
    // kept like the others; none of them is passivated again until it is moved (`kept`).
    wake: (type) => {
      for (const id of host.passivated(type)) host.wake(id, 'reload')
      for (const r of host.runs()) if (r.type === type && !host.isParked(r)) r.kept = true
    },
    // (Not those waiting for the type, parked: they run no code yet; `unpark` below starts them.)
    running: (type) => [...host.runs()].filter((r) => r.type === type && !r.ended && !host.closed() && !host.isParked(r)).map((r) => ({ id: r.id, params: journal.thread(r.id)!.params })),
    entries: (id) => {
      journal.flushNow()
      return host.entries(id)
    },
    inFlight: (id) => marksIn(journal, id),
    hold: async (ids) => {
      const runs = ids.map(live).filter((r) => r !== null)
      for (const r of runs) held.set(r.id, r.weft)
      await Promise.all(runs.map((r) => holdCalls(r, MOVE_WAIT_MS)))
    },
    stop: (id) => {
      const run = live(id)
      // Ended meanwhile, or moved away (a move that held it too went first): nothing to stop.
      if (run === null || run.weft !== held.get(id)) return null
      run.weft.detach()
      journal.flushNow()
      return host.entries(id)
    },
    resume: (id, t, entries) => {
      const run = live(id)
      if (run === null) return false
      run.weft = host.weft(run, entries)
      // Kept on its old code: never passivated (it would wake on the new code).
      run.kept = t !== host.type(run.type)
      if (!run.kept) offOldCode(journal, id)
      host.start(run, t, decodeValue(journal.thread(id)!.params), true)
      return true
    },
  })
  // Threads and schedules that waited for a type this reload loaded run again (the schedules' kept times by policy).
  for (const t of report.types) {
    for (const k of t.kept) if (live(k.id)?.kept === true) keptOnOldCode(journal, k.id, k.why)
    if (t.error !== undefined) continue
    // Those waiting for code that replays their record (on-divergence wait) resume if it does.
    const replays = await replayingNow(host, t.type, t.file, o.ioLibs, (id, why) => (t.waiting ??= []).push({ id, why }))
    const unparked = host.unpark(t.type, replays)
    const resumed = unparked.filter((id) => !replays.has(id))
    const replayed = unparked.filter((id) => replays.has(id))
    if (resumed.length > 0) t.resumed = resumed
    if (replayed.length > 0) t.replayed = replayed
    weave.schedules.unblock(t.type)
  }
  // (A run being checked is `kept` too: none is now.)
  report.oldCode = [...host.runs()].filter((r) => r.kept === true && !r.ended && !host.isParked(r)).map((r) => r.id)
  report.waitingForCode = host.waitingForCode()
  weave.emit('reload', report)
  return report
}

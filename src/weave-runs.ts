/**
 * The runs of a weave's threads (src/weave.ts): registering a run with its weft, starting its
 * thread, ending it, resuming recorded threads, and letting a passivated one go.
 *
 * Invariants:
 * - A thread has at most one run here: registered (`prepare`) before its thread starts, until
 *   its end is committed or it is passivated (`forget`).
 * - A run ends once. Its end (result, error) is recorded in the same ordered commit stream as its
 *   outcomes, after all of them; its joiners and the 'thread-end' listeners are told once that end
 *   is committed.
 * - Only the run's current weft ends it: a weft replaced meanwhile (re-run, reloaded) does not.
 * - A pending thread starts only once its status 'running' is durable; a running one resumes by
 *   replay of its record. A recorded thread whose type this weave cannot run waits for it
 *   (src/weave-parked.ts); one that moves here ends failed with why.
 */
import { crashArmed, crashPoint } from './crash-points.js'
import { scopeNumber, type WeaveConfig } from './call-context.js'
import { leavesDump, toldError, type DumpWriter } from './dump.js'
import { decodeValue, encodeValue } from './encoding.js'
import { encodeError, errorFromRecord, imposedByWeave, type ErrorRecord } from './error-records.js'
import { ReplayDivergence, ThreadCancelled, ThreadKilled, UnknownThread } from './errors.js'
import { waitForCode } from './divergence-wait.js'
import { attachMarks, dropMarks, loadMarks } from './in-flight.js'
import { cancelApplied, cancelThread, dropCancel } from './cancel.js'
import type { Journal, ThreadRow } from './journal.js'
import { threadView, type Library } from './libraries.js'
import type { Passivation } from './passivation/passivation.js'
import type { RecordBlocks } from './replay-blocks.js'
import { RecordReader, resumeSet } from './replay-load.js'
import type { Keyring } from './secrets/keyring.js'
import type { AnyThreadType } from './thread.js'
import type { Weave } from './weave.js'
import type { WeaveMoves } from './weave-moves.js'
import { exitSignals, killRecorded } from './weave-exits.js'
import { ResumeCounter, watchBody, type ResumeProgress, type Run, type ThreadEnd, type WeaveHost, type WokenBy } from './weave-types.js'
import { Weft, type Entry } from './weft.js'
import { continuedOf, continueRun, isContinueAsNew, runConfig } from './continue/continue.js'
import { ParkedRuns } from './weave-parked.js'
import { noOldCode, offOldCode } from './old-code.js'

/** What the runs reach of their weave: src/weave.ts makes it over its private state. */
export interface RunsOf {
  readonly host: WeaveHost
  readonly libs: ReadonlyMap<string, Library>
  /** Writes the dumps of failed threads (src/dump.ts). */
  readonly dumps: DumpWriter
  readonly keyring: Keyring
  readonly onDivergence: 'fail' | 'continue' | 'wait'
  readonly alwaysReplay: boolean
  readonly passivation: Passivation | null
  /** Moves between weaves: a thread that arrived and cannot be replayed here goes back (src/weave-moves.ts). */
  readonly moves: WeaveMoves
}

export class WeaveRuns {
  readonly #weave: Weave
  readonly #journal: Journal
  readonly #config: WeaveConfig
  readonly #o: RunsOf
  readonly #runs = new Map<string, Run>()
  /** Threads whose type this weave cannot run: they wait for it (src/weave-parked.ts). */
  readonly parked: ParkedRuns
  /** How far the runs resumed at open have replayed. */
  readonly #resuming = new ResumeCounter((run, n) => {
    if (run.obs !== null) this.#o.host.observer()!.replayed(n)
  })
  /** A run's replay is over (live, or stopped): counted in the resume's progress, and told to the observer, then (one function for every weft). */
  readonly #replayed = (weft: Weft, released: number): void => {
    const run = this.#runs.get(weft.threadId)
    if (run !== undefined && run.weft === weft) this.#resuming.done(run, released)
    this.#o.moves.replayed(weft)
  }
  /** Reads one thread's record at a time (a wake, an adoption, a reload), its statements prepared once. */
  #reader: RecordReader | null = null
  /** Ends a run whose body settled (`watchBody`). */
  readonly #ends = (run: Run, ok: boolean, value: unknown): void => this.finish(run, ok, value)
  /** A library of the weave by name, for a thread's `this` (threadView). */
  readonly #lib = (name: string): Library => this.#o.libs.get(name)!
  /** A weft stopped on its own (a divergence): end its thread, if it is still the thread's weft (or send it back, if it just arrived). */
  readonly #weftStopped = (err: Error, weft: Weft): void => {
    const run = this.#runs.get(weft.threadId)
    if (run === undefined || run.weft !== weft || this.#o.moves.diverged(run, err)) return
    // On-divergence wait: it waits, nothing recorded, for code that replays its record.
    if (this.#o.onDivergence === 'wait' && err instanceof ReplayDivergence) return waitForCode(this.parked, this.#config, run, err)
    this.finish(run, false, imposedByWeave(err))
  }

  constructor(o: RunsOf) {
    this.#o = o
    this.#weave = o.host.weave
    this.#journal = o.host.weave.journal
    this.#config = o.host.weave.config
    this.parked = new ParkedRuns({
      host: o.host,
      why: (type) => {
        const u = this.#weave.unavailable.get(type)
        if (u !== undefined) return { text: `its module cannot be used (${(u as { code?: string }).code ?? u.name}: the weave's warning of it says why)`, cause: u }
        const known = this.#weave.types
        return { text: `this weave has no such type (its types: ${known.length > 0 ? known.join(', ') : 'none'})` }
      },
    })
  }

  /** Threads running here now. */
  get size(): number {
    return this.#runs.size
  }

  get(id: string): Run | undefined {
    return this.#runs.get(id)
  }

  has(id: string): boolean {
    return this.#runs.has(id)
  }

  values(): IterableIterator<Run> {
    return this.#runs.values()
  }

  /** How far the threads resumed when the weave opened have replayed their records. */
  progress(): ResumeProgress {
    return this.#resuming.progress()
  }

  /**
   * Registers a thread's run (so it can be joined and killed) before it starts. `trace`: where it
   * was spawned (a traceparent), or for a resumed run (`entries` given) its earlier run.
   */
  prepare(id: string, type: string, parent: string | null, entries: Entry[] | RecordBlocks | null, trace: string | null = null, continued = 0, scope: string | null = null): Run {
    const observer = this.#o.host.observer()
    const obs = observer === null ? null : observer.run(id, type, entries !== null, trace)
    const run: Run = { id, type, parent, joiners: null, ended: false, weft: null as unknown as Weft, obs, waitQueued: 0 }
    if (continued > 0) run.continued = continued
    run.weft = this.weft(run, entries, scopeNumber(scope))
    this.#runs.set(id, run)
    return run
  }

  /** A new weft for the run, replaying `entries`; `scope`: its call scope, by default its weft's. */
  weft(run: Run, entries: Entry[] | RecordBlocks | null, scope: number = (run.weft as Weft | null)?.scope ?? -1): Weft {
    const o = this.#o
    const weft = new Weft({
      threadId: run.id,
      scope,
      type: run.type,
      journal: this.#journal,
      config: runConfig(this.#config, run, scope),
      entries,
      onDivergence: o.onDivergence,
      onStop: this.#weftStopped,
      keyring: o.keyring,
      observe: run.obs,
      retry: o.host.type(run.type)?.retry ?? null,
      onWait: o.passivation === null ? null : o.passivation.onWait,
      onReplayed: this.#replayed,
      ...(o.alwaysReplay ? { onDurable: () => this.#rerun(run) } : {}),
    })
    // A close waits for the calls in flight: a thread that starts meanwhile makes none.
    if (o.host.stopping()) void weft.hold()
    // Replaying its record: calls it had in flight, if the journal says so, come first.
    if (entries !== null) attachMarks(this.#journal, weft, run.id)
    return weft
  }

  start(run: Run, t: AnyThreadType, params: unknown, resumed: boolean, woke?: WokenBy): void {
    const weft = run.weft
    const self = threadView(run.type, t.uses, this.#o.libs, this.#lib, weft)
    this.#weave.emit('thread-start', {
      id: run.id,
      type: run.type,
      resumed,
      ...(run.continued !== undefined ? { continued: run.continued } : {}),
      ...(woke !== undefined ? { woke } : {}),
    })
    // The body starts in a microtask. While it runs, the thread holds one reaction on the body's
    // own promise (a chain through a promise of our own would hold two more, and their resolvers).
    void Promise.resolve().then(() => {
      let body: Promise<unknown>
      try {
        body = Promise.resolve(t.does.call(self as never, params as never))
      } catch (e) {
        body = Promise.reject(e)
      }
      watchBody(body, run, weft, this.#ends)
    })
  }

  /** Always-replay mode: re-run a thread from the start with its journal as the cache. */
  #rerun(run: Run): void {
    if (run.ended || this.#o.host.closed()) return
    const row = this.#journal.thread(run.id)!
    run.weft = this.weft(run, this.record(run.id))
    this.start(run, this.#o.host.type(run.type)!, decodeValue(row.params), true)
  }

  /** The thread's record as committed, for a replay: in blocks, split as the replay reaches them. */
  record(id: string): RecordBlocks {
    const journal = this.#journal
    return (this.#reader ??= new RecordReader(journal.db, false, (t) => journal.mayHaveTail(t))).record(id)
  }

  /** The thread's record as committed, whole. */
  entries(id: string): Entry[] {
    return this.record(id).toArray()
  }

  /**
   * A recorded thread (pending, running, or moved here) whose type this weave cannot run: it
   * ends failed with why, as a thread that threw would (exit messages, dump, joiners).
   */
  cannotRun(id: string, type: string, parent: string | null): void {
    this.endUnstarted(id, type, parent, this.#o.host.cannotRunType(type))
  }

  /**
   * A recorded thread not started here (pending, or running and not adopted yet) ends failed with
   * `error`, as a thread that threw would; adopting it later does nothing (it is in the runs).
   */
  endUnstarted(id: string, type: string, parent: string | null, error: Error): void {
    this.finish(this.prepare(id, type, parent, null), false, imposedByWeave(error), false)
  }

  /**
   * Ends thread `id` with `err` (a thread linked to it ended on another weave): its `run`, or,
   * with none, its record if it is recorded and not started here (pending, or a resume that comes
   * to it later), unless its end is being recorded (`ending`) or it moved away.
   */
  endLinked(run: Run | undefined, id: string, err: Error, ending: boolean): void {
    imposedByWeave(err)
    if (run === undefined) {
      const { journal, messages } = this.#o.host.weave
      const row = journal.thread(id)
      if (row !== undefined && (row.status === 'pending' || row.status === 'running') && !ending && messages.forwardOf(id) === undefined) {
        this.endUnstarted(id, row.type, row.parent, err)
      }
      return
    }
    if (run.ended) return
    run.weft.stop(err)
    this.finish(run, false, err)
  }

  /** `counted`: the weft knows how many entries the thread has (false: the commit counts them). */
  finish(run: Run, ok: boolean, value: unknown, counted = true): void {
    if (run.ended || this.#o.host.closed()) return
    // Held (a move, reload or stop) after a call it made was not: resumed from its record, it makes it.
    if (run.weft.heldBack) return
    const weft = run.weft
    const stop = weft.finish(ok || isContinueAsNew(value) ? undefined : value)
    // Its function ended before its record did, and it waits for code that replays it
    // (on-divergence wait): this finish swapped its weft for a waiting one. A run parked before
    // (waiting for its type or for code) ends here as any other, by a linked thread's end say.
    if (run.weft !== weft && this.parked.has(run)) return
    // Killed, or ended otherwise meanwhile: by a call it made and did not await, held behind an
    // early outcome and started as it ended (a kill of itself, or of a thread linked to it).
    if (stop instanceof ThreadKilled || run.ended) return
    if (stop !== null) {
      ok = false
      value = stop
    } else if (!ok && isContinueAsNew(value)) return continueRun(this.#o.host, run, value)
    run.ended = true
    let text: string
    if (ok) {
      try {
        text = encodeValue(value, 'the result')
      } catch (e) {
        ok = false
        value = e
        text = ''
      }
    } else text = ''
    if (!ok) text = encodeError(value)
    const status = ok ? 'done' : 'failed'
    const error = ok ? null : (decodeValue(text) as ErrorRecord)
    exitSignals(this.#weave, run, status, value, error)
    dropCancel(run.weft, this.#journal, run.id)
    dropMarks(this.#journal, run.id, run.weft)
    this.#journal.endThread(run.id, status, text, () => {
      const end: ThreadEnd = error === null
        ? { id: run.id, type: run.type, status: 'done', result: value }
        : { id: run.id, type: run.type, status: 'failed', error: toldError(errorFromRecord(error), error) }
      if (error !== null) {
        if (crashArmed) crashPoint('failed-committed')
        if (leavesDump(error)) void this.#o.dumps.write(run.id)
      }
      this.ended(run, end)
    }, counted ? run.weft.recorded : undefined)
  }

  /**
   * `Weave.kill` of a thread of this weave (not one that moved away): its run, woken first if it
   * is passivated, or its record (`ending`: killed, its end not yet committed). False when it had
   * ended.
   * @throws UnknownThread when no thread has that id
   */
  kill(id: string, ending: Set<string>): boolean {
    const run = this.woken(id, 'kill')
    // Its end is queued (not yet committed): it has ended, with that end.
    if (run?.ended === true) return false
    if (run === undefined) return killRecorded(this.#weave, ending, id)
    run.ended = true
    run.weft.stop(new ThreadKilled(id))
    dropCancel(run.weft, this.#journal, id)
    dropMarks(this.#journal, id, run.weft)
    exitSignals(this.#weave, run, 'killed', undefined, null)
    this.#journal.endThread(id, 'killed', null, () => this.ended(run, { id, type: run.type, status: 'killed' }), run.weft.recorded)
    return true
  }

  /** The run of thread `id`: in memory, or woken by `by` (it was passivated); undefined for none here. */
  woken(id: string, by: WokenBy): Run | undefined {
    return this.#runs.get(id) ?? this.#o.passivation?.wake(id, by)
  }

  /**
   * `Weave.cancel` of a thread of this weave: its run (woken first if passivated) is interrupted
   * once (src/cancel.ts), the request recorded until applied. False when it has ended or does not
   * run here (of a type this weave cannot run, or moved away).
   * @throws UnknownThread when no thread has that id here
   */
  cancel(id: string, reason: string): boolean {
    const run = this.woken(id, 'cancel')
    if (run === undefined || run.ended) {
      if (this.#journal.thread(id) === undefined) throw new UnknownThread(id)
      return false
    }
    cancelThread(run.weft, this.#journal, id, reason)
    return true
  }

  /** Cancels a weave that stopped did not apply (meta `cancel:<id>`): again, to the threads resumed here; dropped for the others. */
  resumeCancels(): void {
    for (const [id, reason] of this.#journal.metaWithPrefix('cancel:')) {
      const run = this.woken(id, 'cancel')
      // Applied now, or moot: its meta goes; put off to the thread's next call, kept until then.
      if (run === undefined || run.ended || !run.weft.cancel(new ThreadCancelled(id, reason))) cancelApplied(this.#journal, id)
    }
  }

  /** The run leaves memory without an end (it is passivated: src/passivation/); its weft is detached. */
  forget(run: Run): void {
    this.#runs.delete(run.id)
    this.#resuming.done(run)
    run.obs?.end('detached')
    this.#weave.emit('thread-passivated', { id: run.id, type: run.type })
  }

  /** The run's end is committed: tell its joiners and the 'thread-end' listeners. */
  ended(run: Run, end: ThreadEnd): void {
    this.#runs.delete(run.id)
    this.parked.ended(run)
    if (run.kept === true) offOldCode(this.#journal, run.id)
    this.#resuming.done(run)
    run.obs?.end(end.status, end.status === 'failed' ? end.error : undefined)
    const joiners = run.joiners
    run.joiners = null
    if (joiners) for (const j of joiners) j(end)
    this.#weave.emit('thread-end', end)
  }

  /** Starts or resumes every thread recorded as pending or running (the weave opens). */
  resume(): void {
    loadMarks(this.#journal)
    noOldCode(this.#journal)
    // Passivated threads stay so, unless what wakes them came while no weave ran.
    const p = this.#o.passivation
    // With passivation off every running thread resumes: rows a weave with it on left would keep
    // one asleep at the next open with it on, though it runs and waits on other things by then.
    if (p === null && this.#journal.db.prepare('SELECT EXISTS (SELECT 1 FROM passivated)').pluck().get() === 1) {
      this.#journal.queue(this.#journal.db.prepare('DELETE FROM passivated'), [])
    }
    const { rows, records } = resumeSet(this.#journal, p === null ? undefined : () => p.toResume())
    for (const row of rows) this.adopt(row, records.get(row.id))
    p?.start()
  }

  /** Starts (pending) or resumes (running) a recorded thread; `record`: its entries, when read already. */
  adopt(row: ThreadRow, record?: RecordBlocks): void {
    if (this.#runs.has(row.id)) return
    const t = this.#o.host.type(row.type)
    if (t === undefined) {
      // Its record read ahead is let go of (the reader would wait for it to be taken).
      record?.release()
      this.parked.park(row)
      return
    }
    const params = decodeValue(row.params)
    if (row.status === 'pending') {
      const run = this.prepare(row.id, row.type, row.parent, null, row.trace ?? null, 0, row.scope ?? null)
      // Its run's context, in the batch that makes it running: a crash after, and the run resumed is linked to this one.
      if (run.obs !== null) this.#journal.setTrace(row.id, run.obs.traceparent)
      this.#journal.setStatus(row.id, 'running', () => {
        if (!this.#o.host.closed() && !run.ended) this.start(run, t, params, false)
      })
      return
    }
    this.#weave.resumed++
    const entries = record ?? this.record(row.id)
    const run = this.prepare(row.id, row.type, row.parent, entries, row.trace ?? null, continuedOf(row), row.scope ?? null)
    this.#resuming.add(run, entries)
    if (run.obs !== null) this.#journal.setTrace(row.id, run.obs.traceparent)
    this.start(run, t, params, true)
  }
}

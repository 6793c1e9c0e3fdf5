/**
 * `raiment/testing`: replay a thread from a dump with no library called and nothing mocked, and
 * record a dump from a live run to make a fixture.
 */
import { rmSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import './builtins.js'
import { copyOf, dumpEntries, makeDump, readDump, type Dump, type DumpEntry } from './dump.js'
import { editRecord } from './check/fork.js'
import { isContinueAsNew } from './continue/continue.js'
import { decodeValue, encodeValue } from './encoding.js'
import { errorFromRecord, errorToRecord } from './error-records.js'
import { InvalidArgument, InvalidDump, ReplayDivergence, type DivergenceDetail } from './errors.js'
import { brokenLibrary, Library, replayParts, threadView, type LibraryModule, type LibrarySpec } from './libraries.js'
import { passivatedOf, waitText } from './passivation/listing.js'
import { endedByItself } from './record-end.js'
import { replaysEnded } from './replay-markers.js'
import { isThreadType, type AnyThreadType } from './thread.js'
import { SOURCE, typeNameOf, typeNameOfFile } from './thread-name.js'
import { skipTime, testClock, TestClock } from './time/test-clock.js'
import { valueText } from './value-text.js'
import { Weave, type ThreadEnd } from './weave.js'
import { HOW_TO_ADD_TYPE, type InternalWeaveOptions, type WeaveOptions } from './weave-options.js'
import { describeKey, Weft, type CallTrace } from './weft.js'
import { checkOptions } from './option-checks.js'

export type { CallTrace } from './weft.js'
export type { Dump } from './dump.js'

/** What every replay run holds, however it ended. */
interface ReplayRunCommon {
  /**
   * Every request the thread made, in the order it made them, named as recorded (as in the dump
   * and `raiment replay`): a method that runs in the thread is the calls it makes, so
   * `mailbox.receive()` is `mailbox.take` (docs/testing.md).
   */
  calls: CallTrace[]
  /** With `strict: false`, the divergence instead of a throw (status 'failed'). */
  divergence?: ReplayDivergence
  /** The dump replayed. */
  dump: Dump
}

/**
 * How a replayed thread ended, told by `status` (it narrows, as `weave.join`'s end does:
 * `if (run.status === 'done') run.result.total`). 'continued': it called
 * `threads.continueAsNew`; 'unfinished': the dump is of a thread that had not ended (running,
 * killed, moved), and the replay went through its whole record and asked for more, as the thread
 * did live. The fields of the other statuses are there, undefined, so `run.result` reads without
 * narrowing too.
 */
export type ReplayRun<R = unknown> =
  | (ReplayRunCommon & { status: 'done'; result: R; continued?: undefined; error?: undefined; next?: undefined })
  | (ReplayRunCommon & { status: 'failed'; error: Error; result?: undefined; continued?: undefined; next?: undefined })
  /** It called `threads.continueAsNew`: `continued` holds the params it continued with. */
  | (ReplayRunCommon & { status: 'continued'; continued: unknown; result?: undefined; error?: undefined; next?: undefined })
  /** `next`: the request the thread made where its record ends (`inv.take("hat",3) (ordinal 0)`). */
  | (ReplayRunCommon & { status: 'unfinished'; next?: string; result?: undefined; continued?: undefined; error?: undefined })

export interface ReplayOptions {
  /** Throw ReplayDivergence on a mismatch (default); false returns it in `divergence`. */
  strict?: boolean
  /** The project's I/O library directory, for thread-side methods (default `./io-libs`). */
  ioLibs?: string | false
  /**
   * Replay only the entries before seq `at` (as `raiment fork --at`): the thread's next request
   * after them is one the dump does not hold, a divergence (`strict: false` returns it) whose
   * message says the replay stopped at `at`.
   */
  at?: number
  /**
   * Replace recorded outcomes, by seq (as `raiment fork --set`): "what if this call had answered
   * X". A later request that the new answer changes is a divergence, as in any replay.
   */
  set?: Record<number, unknown> | ReadonlyMap<number, unknown>
  /**
   * Libraries by name, as given to `record()` or a weave (`libraries`): none of their methods is
   * called, but a module's thread-side methods, markers and per-call retry options are used, as
   * those of `ioLibs` are. Without it, a dump of a thread that used such a library's thread-side
   * part diverges as if its code had changed.
   */
  libraries?: Record<string, LibrarySpec>
}

/**
 * Re-runs a thread from a dump alone: every request is answered from the dump, in the order the
 * outcomes were recorded; no library is called. The thread's result (or the error it threw) is
 * returned with the requests it made. The thread is given copies of the dump's params and
 * outcomes (as live, where they are decoded from the journal): the dump can be replayed again.
 * `dump`: a path, a dump file's text, a dump, or a dump file's text parsed (`JSON.parse`).
 * @throws ReplayDivergence (strict) when the thread asks for something the dump does not hold,
 *   or skips something it holds; the message shows the request, the nearest recorded ones and
 *   where the thread was
 * @throws InvalidDump when the dump cannot be read, or was recorded from a thread type that uses
 *   other libraries, or from another type: one declared under `threads/` whose name there is not
 *   the dump's `thread.type`, and whose replay diverged (strict or not)
 * @throws InvalidArgument for an `at` or a `set` seq that the dump does not hold
 * @example
 * const run = await replay(greet, 'fixtures/greet-ada.json')
 * expect(run.result).toEqual({ greeted: 'ada' })
 */
export async function replay<R>(type: AnyThreadType & { does: (...a: never[]) => Promise<R> }, dump: string | Dump, options: ReplayOptions = {}): Promise<ReplayRun<R>> {
  checkType('replay', type)
  checkOptions('replay', options, REPLAY_OPTIONS)
  // The libraries first: they register the classes the dump's values may be of.
  const parts = await replayParts(options.ioLibs ?? 'io-libs')
  let d = readDump(dump)
  const where = typeof dump === 'string' && !dump.trimStart().startsWith('{') ? dump : 'the dump'
  const recorded = d.entries.length
  if (options.at !== undefined || options.set !== undefined) {
    const sorted = [...d.entries].sort((a, b) => a.seq - b.seq)
    const entries = editRecord(sorted, (e) => e.seq, (e) => e.call, { ...(options.at !== undefined ? { at: options.at } : {}), ...(options.set !== undefined ? { set: options.set } : {}) }, where, (e, value): DumpEntry => {
      const { error: _error, ...rest } = e
      return { ...rest, ok: true, value }
    })
    d = { ...d, entries }
  }
  for (const e of d.entries) {
    const lib = e.call.slice(0, e.call.indexOf('.'))
    if (!type.uses.includes(lib as never)) {
      throw new InvalidDump(
        where,
        `it was recorded from thread type '${d.thread.type}', which called ${e.call}; this thread type uses only ${type.uses.join(', ')}. Replay the dump with the thread type it came from.`,
      )
    }
  }
  for (const [name, spec] of Object.entries(options.libraries ?? {})) {
    const m = (typeof spec === 'object' && spec !== null && 'default' in spec ? spec : {}) as Partial<LibraryModule>
    parts.set(name, { ...(m.threadSide ? { threadSide: m.threadSide } : {}), ...(m.markers ? { markers: m.markers } : {}), ...(m.retry ? { retry: m.retry } : {}) })
  }
  const broken = brokenLibrary(type.uses, parts)
  if (broken !== null) throw broken
  let stopped: (e: Error) => void = () => {}
  const stop = new Promise<never>((_, rej) => (stopped = rej))
  stop.catch(() => {})
  const weft = new Weft({
    threadId: d.thread.id,
    type: d.thread.type,
    journal: null,
    config: { db: '', weaveId: 'replay' },
    entries: dumpEntries(d),
    trace: true,
    onStop: (e) => stopped(e),
  })
  // The record of a thread that ended (not cut by `at`): a marker past it answers as its code ended without it.
  if (endedByItself(d.thread.status, d.thread.error) && d.entries.length === recorded) replaysEnded(weft)
  const libs = new Map<string, Library>(type.uses.map((u) => [u, Library.replayOnly(u, parts.get(u)?.threadSide, parts.get(u)?.markers, parts.get(u)?.retry)]))
  const self = threadView(d.thread.type, type.uses, parts, (u) => libs.get(u)!, weft)
  let run: ReplayRun<R>
  try {
    // A copy, as live (decoded from the journal): the dump stays as it was if the thread changes its params.
    const result = await Promise.race([type.does.call(self as never, copyOf(d.thread.params) as never), stop])
    const err = weft.finish()
    if (err) throw err
    // A result no journal can hold fails its thread live (RAIMENT_UNRECORDABLE): so here.
    encodeValue(result, 'the result')
    run = { status: 'done', result, calls: weft.trace!, dump: d }
  } catch (e) {
    // A thrown value that is not an Error ends the thread as the live run recorded it: `non-error thrown: …`.
    const err = weft.finish(isContinueAsNew(e) ? undefined : e) ?? (e instanceof Error ? e : errorFromRecord(errorToRecord(e)))
    run = isContinueAsNew(err) ? { status: 'continued', continued: decodeValue(err.params), calls: weft.trace!, dump: d } : { status: 'failed', error: err, calls: weft.trace!, dump: d }
  }
  if (run.status !== 'failed' || !(run.error instanceof ReplayDivergence)) return run
  let error = run.error
  // A record that ends where the thread had not ended: the replay stops there, as the thread did.
  if (error.detail?.kind === 'beyond' && !endedByItself(d.thread.status, d.thread.error)) {
    const made = error.detail.made
    return { status: 'unfinished', calls: run.calls, dump: d, ...(made !== undefined ? { next: `${describeKey(made.key)} (ordinal ${made.ord})` } : {}) }
  }
  // Past the entries `at` kept: where the replay was told to end, not a change of code or inputs.
  if (error.detail?.kind === 'beyond' && options.at !== undefined && d.entries.length < recorded) error = cutAt(d, options.at, error.detail)
  const divergence = withTypeHint(type, d, error)
  if (options.strict ?? true) throw divergence
  return { ...run, error: divergence, divergence }
}

export interface RecordOptions {
  /**
   * The thread type's name in the dump, by which `raiment replay` finds it. Default: the path of
   * the module that declared the type under the nearest `threads/` directory, without extension
   * (`threads/orders/checkout.ts` is `orders/checkout`), as a weave names it; for a module
   * elsewhere, its file name without extension.
   */
  name?: string
  /** Libraries besides the built-ins and the project's `io-libs/`. */
  libraries?: Record<string, LibrarySpec>
  /** The project's I/O library directory (default `./io-libs`). */
  ioLibs?: string | false
  /** Passed to library factories. */
  config?: Record<string, unknown>
  /** Messages sent to the thread, in this order, as `weave.send` sends them, once it is spawned. */
  messages?: readonly unknown[]
  /**
   * The other thread types it spawns, by the names it spawns them by (`{ 'orders/child': child }`):
   * they run live beside it (their own records are not in the dump: a replay of it takes their
   * spawns and joins from its record).
   */
  threads?: Record<string, AnyThreadType>
  /**
   * The time the recording goes by: `'real'` (default); `'skip'`, a test clock starting now; or a
   * test clock of yours (`testClock(start)`). With a test clock, time skips: whenever every
   * thread of the recording only waits (no library call in flight, nothing to commit), the clock
   * jumps to its next timer, so a thread that sleeps for days is recorded at once, and what it
   * recorded (`clock.now()`) is the test clock's time.
   */
  clock?: 'real' | 'skip' | TestClock
}

/**
 * A thread that had not ended when its recording stopped: it waits (for a message, or the end of
 * a thread: `for` says what) and nothing is left to wake it: every thread of the recording waits
 * so, none for a time. Its dump replays to `'unfinished'`.
 */
export interface RecordWaiting {
  id: string
  type: string
  status: 'waiting'
  for: string
}

export interface Recording<R = unknown> {
  dump: Dump
  end: ThreadEnd | RecordWaiting
  result?: R
}

/**
 * Runs a thread live in a temporary weave (real libraries), sends it `messages`, and returns its
 * dump with how it ended; `dumpText(recording.dump)` is the text to save as a fixture. A thread
 * left waiting for a message with none to come (and no timer) ends the recording with status
 * `'waiting'`. The dump names the thread type as a weave would (see `RecordOptions.name`), so
 * `raiment replay` finds it.
 * @throws InvalidArgument when `type` is not a thread type, `name` is not a non-empty string, or
 *   the type's name cannot be told (pass `name`)
 * @example
 * const { dump, result } = await record(greet, { name: 'ada' })
 * writeFileSync('fixtures/greet-ada.json', dumpText(dump))
 */
export async function record<P, R>(type: AnyThreadType & { does: (this: never, params: P) => Promise<R> }, params: P, options: RecordOptions = {}): Promise<Recording<R>> {
  checkType('record', type)
  checkOptions('record', options, RECORD_OPTIONS)
  if (options.name !== undefined && (typeof options.name !== 'string' || options.name === '')) {
    throw new InvalidArgument(`record(): 'name' must be the thread type's name (a non-empty string), got ${JSON.stringify(options.name)}`)
  }
  const name = options.name ?? typeNameOf(type)
  if (name === null) {
    throw new InvalidArgument("record(): the thread type's name cannot be told from where it was declared; pass it: record(type, params, { name: 'greet' })")
  }
  const messages = options.messages ?? []
  if (!Array.isArray(messages)) throw new InvalidArgument(`record(): 'messages' must be an array of the messages to send the thread, got ${typeof messages}`)
  const others = options.threads ?? {}
  if (typeof others !== 'object' || others === null || Array.isArray(others) || Object.values(others).some((t) => !isThreadType(t))) {
    throw new InvalidArgument("record(): 'threads' must map names to thread types made by thread() (the types the thread spawns), got " + (Array.isArray(others) ? 'an array' : typeof others))
  }
  const clock = recordClock(options.clock)
  const dir = await mkdtemp(join(tmpdir(), 'raiment-record-'))
  recording(dir)
  let skipping = clock !== null
  const weave = await Weave.open({
    ...(clock !== null ? { clock } : {}),
    db: join(dir, 'record.db'),
    durability: 'memory',
    threads: { ...others, [name]: type },
    // A type it spawns and was not given: say to give it here (not the threads directory's reload).
    [HOW_TO_ADD_TYPE]: (t: string) =>
      `record() runs the thread in a weave that knows only the type it records and those of its 'threads' option: pass each type the thread spawns there, record(type, params, { threads: { '${t}': … } })`,
    ioLibs: options.ioLibs ?? 'io-libs',
    libraries: options.libraries ?? {},
    dumps: false,
    config: options.config ?? {},
    // A thread that only waits leaves memory at once: then what it waits for is known (below).
    passivateAfter: 0,
  } satisfies InternalWeaveOptions as WeaveOptions)
  try {
    const id = weave.spawn(name, params)
    for (const m of messages) weave.send(id, m)
    const end = await Promise.race([weave.join(id), waitingForever(weave, id), ...(clock !== null ? [skipTime(clock, () => !skipping)] : [])])
    const dump = makeDump(weave.journal, id)
    return end.status === 'done' ? { dump, end, result: end.result as R } : { dump, end }
  } finally {
    skipping = false
    await weave.close()
    await rm(dir, { recursive: true, force: true })
    recordDirs.delete(dir)
  }
}

/** The journals of records not finished yet (a record not awaited, a test cut short): removed as the process exits. */
const recordDirs = new Set<string>()

function recording(dir: string): void {
  if (recordDirs.size === 0 && !exitHooked) {
    exitHooked = true
    process.once('exit', () => {
      for (const d of recordDirs) {
        try {
          rmSync(d, { recursive: true, force: true })
        } catch {
          // (A file held open elsewhere: left, as it was before.)
        }
      }
    })
  }
  recordDirs.add(dir)
}
let exitHooked = false

/**
 * Resolves when thread `id` waits and nothing is left to wake it: no thread of the weave is in
 * memory (each waits, passivated, or has ended) and none waits for a time (a sleep, a receive's
 * timeout). Looked at after each passivation or end, a turn later (a message or an exit it sent
 * has woken its receiver by then).
 */
function waitingForever(weave: Weave, id: string): Promise<RecordWaiting> {
  return new Promise((resolve) => {
    let queued = false
    const check = (): void => {
      queued = false
      if (weave.journal.closed || weave.running > 0) return
      weave.journal.flushNow()
      const db = weave.journal.db
      if (db.prepare('SELECT 1 FROM passivated WHERE due IS NOT NULL LIMIT 1').get() !== undefined) return
      const wait = passivatedOf(db, id)
      if (wait === undefined) return
      weave.off('thread-passivated', soon)
      weave.off('thread-end', soon)
      resolve({ id, type: weave.journal.thread(id)!.type, status: 'waiting', for: waitText(wait) })
    }
    const soon = (): void => {
      if (queued) return
      queued = true
      setImmediate(check)
    }
    weave.on('thread-passivated', soon)
    weave.on('thread-end', soon)
  })
}

/**
 * A replay that diverged, with a thread type declared in a module under a `threads/` directory
 * whose name there (`typeNameOf`, as `raiment start` and `raiment replay` name it) ends otherwise
 * than the name the dump records, may have been given the wrong type: the divergence says so
 * first, naming both. Only a hint: a weave may register a module under another name
 * (`threads: { pay }` for `threads/payment.ts`), and a type that replays its dump is right
 * whatever its name (a module renamed still replays its old dumps). The names' last parts are
 * compared: a weave's `threads: { checkout }` names `orders/checkout.ts` `checkout`, and the
 * built-in types are recorded as `raiment/<name>`.
 */
function withTypeHint(type: AnyThreadType, d: Dump, divergence: ReplayDivergence): ReplayDivergence {
  const file = (type as unknown as Record<symbol, unknown>)[SOURCE]
  if (typeof file !== 'string' || !/[\\/]threads[\\/]/.test(file)) return divergence
  const name = typeNameOfFile(file)
  const recorded = d.thread.type
  const last = (n: string): string => n.slice(n.lastIndexOf('/') + 1)
  if (last(name) === last(recorded)) return divergence
  const at = divergence.detail
  let how = ''
  if (at !== undefined) {
    const made = at.made ? `the thread asked for ${describeKey(at.made.key, 60)}` : 'the thread made no further request'
    how = at.recorded ? ` at outcome #${at.index + 1} of ${d.entries.length} (seq ${at.recorded.seq}), where the record holds ${describeKey(at.recorded.key, 60)} and ${made}` : ` after its ${d.entries.length} outcomes, where ${made}`
  }
  return new ReplayDivergence(
    `the dump was recorded from thread type '${recorded}', and replay() was given thread type '${name}' (threads/), which diverged from it${how}: ` +
      `if it is not the type the dump came from, replay the dump with that one (threads/${recorded}). ${divergence.message}`,
    divergence.detail,
  )
}

const REPLAY_OPTIONS = ['strict', 'ioLibs', 'at', 'set', 'libraries']
const RECORD_OPTIONS = ['name', 'libraries', 'ioLibs', 'config', 'messages', 'threads', 'clock']

/**
 * The test clock of record()'s `clock` option, or null for the real one.
 * @throws InvalidArgument for anything but 'real', 'skip' or a test clock
 */
function recordClock(c: RecordOptions['clock']): TestClock | null {
  if (c === undefined || c === 'real') return null
  if (c === 'skip') return testClock()
  if (c instanceof TestClock) return c
  throw new InvalidArgument(`record(): 'clock' must be 'real', 'skip' or a test clock (testClock() of raiment/testing), got ${valueText(c)}`)
}

function checkType(fn: string, type: unknown): void {
  if (!isThreadType(type)) {
    // A CommonJS module imported from an ES module is its `exports`: the thread type is its `default`.
    if (type !== null && typeof type === 'object' && isThreadType((type as { default?: unknown }).default)) {
      throw new InvalidArgument(`${fn}() expects a thread type first, got the module object of a CommonJS module whose default export is one: pass its .default, or make the project an ES module ("type": "module" in package.json)`)
    }
    const got = type && typeof type === 'object' && 'thread' in type && 'entries' in type ? 'a dump' : typeof type
    throw new InvalidArgument(`${fn}() expects a thread type first (the default export of a module in threads/, made by thread()), got ${got}`)
  }
}

/** The divergence of a replay that asked for more than the entries before seq `at`, saying so. */
function cutAt(d: Dump, at: number, detail: DivergenceDetail): ReplayDivergence {
  const made = detail.made === undefined ? 'more' : `${describeKey(detail.made.key)} (ordinal ${detail.made.ord})`
  return new ReplayDivergence(
    `thread ${d.thread.id} (${d.thread.type}) replayed its ${d.entries.length} recorded outcomes before seq ${at} (at: ${at}), then asked for ${made}: ` +
      `the replay stops there, as told, where a fork (raiment fork --at ${at}) goes on live. The record was cut, nothing diverged; replay without 'at' to run the whole record.`,
    detail,
  )
}

export { readDump, dumpText } from './dump.js'
export { testClock } from './time/test-clock.js'
export type { TestClock } from './time/test-clock.js'
export { assertCrashSafe, crashTest, CRASH_TEST_POINTS } from './crash-test/crash-test.js'
export type { CrashRun, CrashTestEnd, CrashTestOptions, CrashTestPoint, CrashTestReport, RepeatedCall } from './crash-test/crash-test.js'
export { CrashTestFailed } from './crash-test/errors.js'

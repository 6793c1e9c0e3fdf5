/**
 * `raiment/testing`: replay a thread from a dump with no library called and nothing mocked, and
 * record a dump from a live run to make a fixture.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import './builtins.js'
import { dumpEntries, makeDump, readDump, type Dump } from './dump.js'
import { InvalidDump, ReplayDivergence } from './errors.js'
import { BUILTIN_DIR, Library, libraryFiles, type LibraryModule, type LibrarySpec } from './libraries.js'
import type { AnyThreadType } from './thread.js'
import { Weave, type ThreadEnd } from './weave.js'
import { Weft, type CallTrace } from './weft.js'

export type { CallTrace } from './weft.js'
export type { Dump } from './dump.js'

export interface ReplayRun<R = unknown> {
  /** How the replayed thread ended. */
  status: 'done' | 'failed'
  result?: R
  error?: Error
  /** Every request the thread made, in the order it made them. */
  calls: CallTrace[]
  /** With `strict: false`, the divergence instead of a throw. */
  divergence?: ReplayDivergence
  /** The dump replayed. */
  dump: Dump
}

export interface ReplayOptions {
  /** Throw ReplayDivergence on a mismatch (default); false returns it in `divergence`. */
  strict?: boolean
  /** The project's I/O library directory, for thread-side methods (default `./io-libs`). */
  ioLibs?: string | false
}

/**
 * Re-runs a thread from a dump alone: every request is answered from the dump, in the order the
 * outcomes were recorded; no library is called. The thread's result (or the error it threw) is
 * returned with the requests it made.
 * @throws ReplayDivergence (strict) when the thread asks for something the dump does not hold,
 *   or skips something it holds; the message shows the request, the nearest recorded ones and
 *   where the thread was
 * @throws InvalidDump when the dump cannot be read, or was recorded from a thread type that uses
 *   other libraries
 * @example
 * const run = await replay(greet, 'fixtures/greet-ada.json')
 * expect(run.result).toEqual({ greeted: 'ada' })
 */
export async function replay<R>(type: AnyThreadType & { does: (...a: never[]) => Promise<R> }, dump: string | Dump, options: ReplayOptions = {}): Promise<ReplayRun<R>> {
  const d = readDump(dump)
  const where = typeof dump === 'string' && !dump.trimStart().startsWith('{') ? dump : 'the dump'
  for (const e of d.entries) {
    const lib = e.call.slice(0, e.call.indexOf('.'))
    if (!type.uses.includes(lib as never)) {
      throw new InvalidDump(
        where,
        `it was recorded from thread type '${d.thread.type}', which called ${e.call}; this thread type uses only ${type.uses.join(', ')}. Replay the dump with the thread type it came from.`,
      )
    }
  }
  const threadSide = await threadSideMethods(options.ioLibs ?? 'io-libs')
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
  const self: Record<string, object> = {}
  for (const u of type.uses) self[u] = Library.replayOnly(u, threadSide.get(u)).bind(weft)
  let run: ReplayRun<R>
  try {
    const result = await Promise.race([type.does.call(self as never, d.thread.params as never), stop])
    const err = weft.finish()
    if (err) throw err
    run = { status: 'done', result, calls: weft.trace!, dump: d }
  } catch (e) {
    const err = weft.finish() ?? (e as Error)
    run = { status: 'failed', error: err, calls: weft.trace!, dump: d }
  }
  if (run.error instanceof ReplayDivergence) {
    if (options.strict ?? true) throw run.error
    run.divergence = run.error
  }
  return run
}

async function threadSideMethods(ioLibs: string | false): Promise<Map<string, LibraryModule['threadSide']>> {
  const files = libraryFiles(fileURLToPath(BUILTIN_DIR))
  if (ioLibs !== false) for (const [n, f] of libraryFiles(ioLibs)) files.set(n, f)
  const out = new Map<string, LibraryModule['threadSide']>()
  for (const [name, file] of files) {
    const mod = (await import(pathToFileURL(file).href)) as Partial<LibraryModule>
    if (mod.threadSide) out.set(name, mod.threadSide)
  }
  return out
}

export interface RecordOptions {
  /** The thread type's name in the dump (default `thread`). */
  name?: string
  /** Libraries besides the built-ins and the project's `io-libs/`. */
  libraries?: Record<string, LibrarySpec>
  /** The project's I/O library directory (default `./io-libs`). */
  ioLibs?: string | false
  /** Passed to library factories. */
  config?: Record<string, unknown>
}

export interface Recording<R = unknown> {
  dump: Dump
  end: ThreadEnd
  result?: R
}

/**
 * Runs a thread live in a temporary weave (real libraries) and returns its dump, to save as a
 * fixture with `dumpText(dump)`.
 * @example
 * const { dump } = await record(greet, { name: 'ada' })
 * writeFileSync('fixtures/greet-ada.json', dumpText(dump))
 */
export async function record<P, R>(type: AnyThreadType & { does: (this: never, params: P) => Promise<R> }, params: P, options: RecordOptions = {}): Promise<Recording<R>> {
  const dir = await mkdtemp(join(tmpdir(), 'raiment-record-'))
  const name = options.name ?? 'thread'
  const weave = await Weave.open({
    db: join(dir, 'record.db'),
    durability: 'memory',
    threads: { [name]: type },
    ioLibs: options.ioLibs ?? 'io-libs',
    libraries: options.libraries ?? {},
    dumps: false,
    config: options.config ?? {},
  })
  try {
    const id = weave.spawn(name, params)
    const end = await weave.join(id)
    const dump = makeDump(weave.journal, id)
    return end.status === 'done' ? { dump, end, result: end.result as R } : { dump, end }
  } finally {
    await weave.close()
    await rm(dir, { recursive: true, force: true })
  }
}

export { readDump, dumpText } from './dump.js'

/**
 * I/O libraries: loading them (from `io-libs/` directories or given inline), and the thread-side
 * objects through which a thread reaches them (`this.clock.now()`), whose every method is a weft
 * call. The core knows no library by name.
 */
import PQueue from 'p-queue'
import { readdirSync, existsSync } from 'node:fs'
import { join, resolve, extname, basename } from 'node:path'
import { fileURLToPath } from 'node:url'
import { CommonJsModule, InvalidLibraryModule, NotInUses, RaimentError, UnknownMethod } from './errors.js'
import { importModule } from './loader.js'
import { keepingRegistered } from './encoding.js'
import type { WeaveConfig } from './call-context.js'
import type { BoundSecrets, LibrarySecrets } from './secrets/rules.js'
import { checkLibraryRetry, type LibraryRetry } from './retry/policy.js'

type Method = (...args: unknown[]) => unknown

/** What an I/O library module may export. */
export interface LibraryModule {
  /**
   * The methods (async), or a factory that receives the weave's config and returns them. What it
   * holds open for the weave (connections, handles) it lets go of in a method keyed
   * `Symbol.asyncDispose` (or `Symbol.dispose`) of that object: not a method threads can call, it
   * runs once when the weave closes (`Weave.close`), after its threads are let go and its journal
   * closed, and when the weave fails to open after making the library.
   */
  default: Record<string, unknown> | ((config: WeaveConfig) => Record<string, unknown> | Promise<Record<string, unknown>>)
  /** At most this many live calls of the library in flight at once per weave. */
  concurrency?: number
  /**
   * Methods that run inside the thread and are made of other calls of the same library (their
   * `this` is the thread-side library); they are not journaled themselves, their calls are.
   */
  threadSide?: Record<string, Method>
  /** Which values of its calls are secret: recorded as markers, never as they are (docs/secrets.md). */
  secrets?: LibrarySecrets
  /**
   * Marker methods, each with the value it answers on the replay of a record made before the
   * code called it: such a call the record lacks, made while the thread has recorded calls still
   * to make, answers that value unrecorded instead of diverging (`patch.patched`). Live, and
   * past the end of the record, it is an ordinary call.
   */
  markers?: Record<string, unknown>
  /** How its calls are retried by default, and where a call passes its own policy (docs/retries.md). */
  retry?: LibraryRetry
  /**
   * Methods whose calls reach nothing outside the weave's journal (the mailbox's sends and takes,
   * a clock read): what they do commits with the thread's step and leaves the process only after
   * that commit. Their outcomes may reach the thread before their commit, and a thread that holds
   * such an outcome starts calls of other methods only once it is durable (src/weft-pending.ts).
   */
  journalOnly?: readonly string[]
}

/** Where the weft finds a thread's weft, on the thread-side objects. */
export const WEFT = Symbol('raiment.weft')

export interface WeftLike {
  call(lib: Library, method: string, args: unknown[]): Promise<unknown>
}

export class Library {
  readonly name: string
  readonly impl: Record<string, Method>
  readonly methods: readonly string[]
  /** Limits live calls in flight; null when unlimited. */
  readonly queue: PQueue | null
  /** What the module declares secret in its calls. */
  declaredSecrets: LibrarySecrets | undefined = undefined
  /** What is secret in its calls in this weave (declared and added); null: nothing. */
  secrets: BoundSecrets | null = null
  /** Marker methods and the value each answers where the record lacks it (LibraryModule.markers); null for none. */
  markers: ReadonlyMap<string, unknown> | null = null
  /** The module's `retry` declaration, or null (src/retry/). */
  retry: LibraryRetry | null = null
  /** The methods declared `journalOnly` (LibraryModule.journalOnly); null for none. */
  journalOnly: ReadonlySet<string> | null = null
  /** What lets go of what the library holds open (its `Symbol.asyncDispose` or `Symbol.dispose`); null for nothing, and once run. */
  #dispose: (() => unknown) | null = null
  /** The prototype of every thread's view of this library. */
  readonly #proto: Record<string, Method>
  /** `name.method:` by method, made once rather than at every call. */
  readonly #keyPrefixes = new Map<string, string>()
  /** `the outcome of name.method` by method, likewise. */
  readonly #outcomePaths = new Map<string, string>()
  /** `name.method:[]`, the key of a call without arguments, by method, likewise. */
  readonly #bareKeys = new Map<string, string>()
  /**
   * Makes a thread's view of this library: a constructor of its own (prototype `#proto`), so V8
   * sizes its objects to their one field (32 B, where `Object.create` leaves room for four: 56 B).
   */
  readonly #View: new (weft: WeftLike) => object

  private constructor(name: string, impl: Record<string, Method>, methods: readonly string[], queue: PQueue | null, fallback: object) {
    this.name = name
    this.impl = impl
    this.methods = methods
    this.queue = queue
    this.#proto = Object.create(fallback) as Record<string, Method>
    this.#View = viewOf(this.#proto)
  }

  /** How the journal key of every call of `method` starts: `name.method:`. */
  keyPrefix(method: string): string {
    let prefix = this.#keyPrefixes.get(method)
    if (prefix === undefined) this.#keyPrefixes.set(method, (prefix = this.name + '.' + method + ':'))
    return prefix
  }

  /**
   * The journal key of a call of `method` without arguments (`args` encoded as `[]`): one string
   * for every such call, where a key made per call is kept per thread (its ordinal count).
   */
  bareKey(method: string): string {
    let key = this.#bareKeys.get(method)
    if (key === undefined) this.#bareKeys.set(method, (key = [this.keyPrefix(method), '[]'].join('')))
    return key
  }

  /** How an unrecordable outcome of `method` is named in the error: `the outcome of name.method`. */
  outcomePath(method: string): string {
    let path = this.#outcomePaths.get(method)
    if (path === undefined) this.#outcomePaths.set(method, (path = `the outcome of ${this.name}.${method}`))
    return path
  }

  /** A library whose methods are the functions of `impl`, plus thread-side methods. */
  static of(name: string, impl: Record<string, unknown>, concurrency: number | undefined, threadSide: Record<string, Method> | undefined, source: string, markers?: Record<string, unknown>, retry?: unknown, journalOnly?: unknown): Library {
    const fns: Record<string, Method> = {}
    for (const [k, v] of Object.entries(impl)) if (typeof v === 'function') fns[k] = (v as Method).bind(impl)
    const methods = Object.keys(fns)
    if (methods.length === 0) throw new InvalidLibraryModule(source, 'the library exports no methods')
    if (concurrency !== undefined && !(Number.isInteger(concurrency) && concurrency >= 1)) {
      throw new InvalidLibraryModule(source, `'concurrency' must be a whole number from 1 up, got ${String(concurrency)}`)
    }
    const all = [...methods, ...Object.keys(threadSide ?? {})]
    const queue = concurrency === undefined ? null : new PQueue({ concurrency })
    const lib = new Library(name, fns, all, queue, missingMethods(name, all))
    const dispose = (impl as { [Symbol.asyncDispose]?: unknown })[Symbol.asyncDispose] ?? (impl as { [Symbol.dispose]?: unknown })[Symbol.dispose]
    if (typeof dispose === 'function') lib.#dispose = () => (dispose as () => unknown).call(impl)
    for (const m of methods) lib.#proto[m] = weftMethod(lib, m)
    lib.#addThreadSide(threadSide, source)
    lib.#setMarkers(markers)
    lib.#setRetry(retry, source)
    lib.#setJournalOnly(journalOnly, methods, source)
    return lib
  }

  /** Lets go of what the library holds open (LibraryModule.default), once; later calls do nothing. */
  async dispose(): Promise<void> {
    const dispose = this.#dispose
    this.#dispose = null
    if (dispose !== null) await dispose()
  }

  /** Whether `method` is declared journal-only (its outcome may go early: src/weft-pending.ts). */
  isJournalOnly(method: string): boolean {
    return this.journalOnly !== null && this.journalOnly.has(method)
  }

  #setJournalOnly(journalOnly: unknown, methods: readonly string[], source: string): void {
    if (journalOnly === undefined) return
    if (!Array.isArray(journalOnly) || journalOnly.some((m) => typeof m !== 'string' || !methods.includes(m))) {
      throw new InvalidLibraryModule(source, `'journalOnly' must be a list of the library's method names (${methods.join(', ')}), got ${JSON.stringify(journalOnly)}`)
    }
    if (journalOnly.length > 0) this.journalOnly = new Set(journalOnly as string[])
  }

  #setRetry(retry: unknown, source: string): void {
    if (retry === undefined) return
    try {
      checkLibraryRetry(retry, "its 'retry' export")
    } catch (e) {
      throw new InvalidLibraryModule(source, (e as Error).message)
    }
    this.retry = retry
  }

  #setMarkers(markers: Record<string, unknown> | undefined): void {
    if (markers !== undefined && markers !== null && Object.keys(markers).length > 0) this.markers = new Map(Object.entries(markers))
  }

  /**
   * A library known only by name, for replaying a dump: every method is a weft call (nothing is
   * ever called live), and the module's thread-side methods are kept.
   */
  static replayOnly(name: string, threadSide: Record<string, Method> | undefined, markers?: Record<string, unknown>, retry?: LibraryRetry): Library {
    let lib: Library | null = null
    const fallback = new Proxy(Object.create(null) as object, {
      get(_t, prop) {
        if (typeof prop === 'symbol' || passThrough.has(prop)) return undefined
        return weftMethod(lib!, prop)
      },
    })
    lib = new Library(name, {}, Object.keys(threadSide ?? {}), null, fallback)
    lib.#addThreadSide(threadSide, `library '${name}'`)
    lib.#setMarkers(markers)
    // A call's own retry option is taken off its arguments before it is keyed, in replay too.
    lib.#setRetry(retry, `library '${name}'`)
    return lib
  }

  #addThreadSide(threadSide: Record<string, Method> | undefined, source: string): void {
    for (const [m, f] of Object.entries(threadSide ?? {})) {
      if (typeof f !== 'function') throw new InvalidLibraryModule(source, `threadSide.${m} is not a function`)
      this.#proto[m] = f
    }
  }

  /** The thread-side object for one thread. */
  bind(weft: WeftLike): object {
    return new this.#View(weft)
  }
}

/** Makes a thread's `this` (one view per library it uses), by the thread type's `uses`. */
type ThisMaker = new (lib: (name: string) => { bind(weft: WeftLike): object }, weft: WeftLike) => object
/** By the libraries a weave (or a replay) knows, then by thread type: the maker, for the type's `uses` (a reload may give it others). */
const thisMakers = new WeakMap<ReadonlyMap<string, unknown>, Map<string, { uses: readonly string[]; Maker: ThisMaker }>>()

/**
 * A thread's `this`: its view of each library in `uses` (`lib(name)` gives the library). Made by
 * a constructor of the thread type's own, so V8 sizes these objects to their fields (32 B for
 * one library, where an object literal given its properties one by one takes 56 B). Each
 * library of `known` that is not in `uses` is a getter on the constructor's prototype, made
 * once per thread type, that throws NotInUses: `this.log` without 'log' in `uses` fails with a
 * code and what to do, not a TypeError of undefined; a library in `uses` is an own field and
 * never reaches the prototype, so its calls cost nothing more.
 */
export function threadView(type: string, uses: readonly string[], known: ReadonlyMap<string, unknown>, lib: (name: string) => { bind(weft: WeftLike): object }, weft: WeftLike): object {
  let byType = thisMakers.get(known)
  if (byType === undefined) thisMakers.set(known, (byType = new Map<string, { uses: readonly string[]; Maker: ThisMaker }>()))
  let made = byType.get(type)
  if (made === undefined || made.uses !== uses) {
    const Maker = function (this: Record<string, object>, lib: (name: string) => { bind(weft: WeftLike): object }, weft: WeftLike) {
      for (const u of uses) this[u] = lib(u).bind(weft)
    } as unknown as ThisMaker
    for (const name of known.keys()) {
      if (uses.includes(name)) continue
      Object.defineProperty(Maker.prototype, name, {
        get() {
          throw new NotInUses(name, type, uses)
        },
      })
    }
    byType.set(type, (made = { uses, Maker }))
  }
  return new made.Maker(lib, weft)
}

/** A constructor of thread views of one library: objects with `proto` and the weft (`WEFT`). */
function viewOf(proto: object): new (weft: WeftLike) => object {
  // A function of its own per library, not a class: its `prototype` is the library's.
  const View = function (this: { [WEFT]: WeftLike }, weft: WeftLike) {
    this[WEFT] = weft
  } as unknown as new (weft: WeftLike) => object
  View.prototype = proto
  return View
}

/** A thread-side method: one weft call; `this` is the thread's view of the library. */
function weftMethod(lib: Library, method: string): Method {
  return function (this: { [WEFT]: WeftLike }, ...args: unknown[]) {
    return this[WEFT].call(lib, method, args)
  }
}

const passThrough = new Set(['then', 'toJSON', 'constructor', 'asymmetricMatch', '$$typeof', 'nodeType', 'inspect', 'valueOf', 'toString'])

/** The end of every thread-side prototype chain: a clear error for a method that does not exist. */
function missingMethods(lib: string, methods: readonly string[]): object {
  return new Proxy(Object.create(null) as object, {
    get(_t, prop) {
      if (typeof prop === 'symbol' || passThrough.has(prop)) return undefined
      return () => {
        throw new UnknownMethod(lib, prop, methods)
      }
    },
  })
}

/**
 * Lets go of what each of `libs` holds open (Library.dispose), every one of them even when one
 * fails.
 * @throws the first error of a library's dispose, once all have run
 */
export async function disposeLibraries(libs: Iterable<Library>): Promise<void> {
  const errors: unknown[] = []
  for (const lib of libs) await lib.dispose().catch((e: unknown) => errors.push(e))
  if (errors.length > 0) throw errors[0]
}

/** A library given inline: a plain object of methods, or a module-shaped object. */
export type LibrarySpec = object | LibraryModule

export async function makeLibrary(name: string, spec: LibrarySpec, config: WeaveConfig, source: string): Promise<Library> {
  const isModule = typeof spec === 'object' && spec !== null && 'default' in spec
  const mod: LibraryModule = isModule ? (spec) : { default: spec as Record<string, unknown> }
  let impl = mod.default
  if (typeof impl === 'function') impl = await impl(config)
  if (impl === null || typeof impl !== 'object') {
    throw new InvalidLibraryModule(source, 'the default export must be an object of async methods, or a factory returning one')
  }
  const lib = Library.of(name, impl, mod.concurrency, mod.threadSide, source, mod.markers, mod.retry, mod.journalOnly)
  lib.declaredSecrets = mod.secrets
  return lib
}

const SOURCE_EXT = new Set(['.ts', '.mts', '.js', '.mjs'])

/** The library modules of a directory, by name (file name without extension). */
export function libraryFiles(dir: string): Map<string, string> {
  const out = new Map<string, string>()
  if (!existsSync(dir)) return out
  for (const f of readdirSync(dir)) {
    const ext = extname(f)
    // `_name` files are helpers shared by libraries, not libraries.
    if (!SOURCE_EXT.has(ext) || f.startsWith('_') || f.endsWith('.d.ts') || /\.(test|spec)\./.test(f)) continue
    out.set(basename(f, ext), resolve(join(dir, f)))
  }
  return out
}

export async function loadLibraryFile(name: string, file: string, config: WeaveConfig): Promise<Library> {
  let mod: unknown
  try {
    mod = await keepingRegistered(() => importModule(file))
  } catch (e) {
    if (e instanceof CommonJsModule) throw e
    throw new InvalidLibraryModule(file, `could not be loaded: ${(e as Error).message}`)
  }
  if (typeof mod !== 'object' || mod === null || !('default' in mod)) {
    throw new InvalidLibraryModule(file, 'has no default export; export default an object of async methods')
  }
  return makeLibrary(name, mod, config, file)
}

/** The directory of the built-in libraries shipped with Raiment. */
export const BUILTIN_DIR = new URL('../io-libs/', import.meta.url)

/**
 * What a replay keeps of a library module: its thread-side methods, markers, and retry
 * declaration (a call's own retry option is taken off its arguments in replay too); no code of it runs.
 */
export interface ReplayParts {
  threadSide?: LibraryModule['threadSide']
  markers?: LibraryModule['markers']
  retry?: LibraryModule['retry']
  /** The module failed to load: a replay of a thread type that uses it fails with this (others go on). */
  broken?: RaimentError
}

/** The files of the built-in libraries and of those in `ioLibs`, by library name (nothing imported). */
export function allLibraryFiles(ioLibs: string | false): Map<string, string> {
  const files = libraryFiles(fileURLToPath(BUILTIN_DIR))
  if (ioLibs !== false) for (const [n, f] of libraryFiles(ioLibs)) files.set(n, f)
  return files
}

/**
 * The replay parts of the built-in libraries and those of `ioLibs`, by library name: modules are
 * imported, no factory is called.
 */
export async function replayParts(ioLibs: string | false): Promise<Map<string, ReplayParts>> {
  const files = allLibraryFiles(ioLibs)
  const out = new Map<string, ReplayParts>()
  for (const [name, file] of files) {
    let mod: Partial<LibraryModule>
    try {
      mod = (await keepingRegistered(() => importModule(file))) as Partial<LibraryModule>
    } catch (e) {
      out.set(name, { broken: e instanceof RaimentError ? e : new InvalidLibraryModule(file, `could not be loaded: ${(e as Error).message}`) })
      continue
    }
    // What a weave would refuse at its start (a 'journalOnly' naming no method, no methods…), where
    // it can be told without running the library's factory.
    const impl = mod.default
    if (impl !== null && typeof impl === 'object') {
      try {
        Library.of(name, impl, mod.concurrency, mod.threadSide, file, mod.markers, mod.retry, mod.journalOnly)
      } catch (e) {
        out.set(name, { broken: e instanceof RaimentError ? e : new InvalidLibraryModule(file, (e as Error).message) })
        continue
      }
    }
    out.set(name, { ...(mod.threadSide ? { threadSide: mod.threadSide } : {}), ...(mod.markers ? { markers: mod.markers } : {}), ...(mod.retry ? { retry: mod.retry } : {}) })
  }
  return out
}

/** The error of the first library of `uses` whose module failed to load, or null. */
export function brokenLibrary(uses: readonly string[], parts: ReadonlyMap<string, ReplayParts>): RaimentError | null {
  for (const u of uses) {
    const broken = parts.get(u)?.broken
    if (broken !== undefined) return broken
  }
  return null
}

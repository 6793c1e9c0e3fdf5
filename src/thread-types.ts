/**
 * Loading thread types: every module under a threads directory whose default export is a
 * thread type, named by its path without extension (`orders/checkout`).
 *
 * A module that fails to load (a syntax error, a throw at import, a default export that is not a
 * thread type) makes only its own type unavailable: the others load, and the failure is kept,
 * by type name, as the cause to give whoever asks for that type.
 */
import { readdirSync, existsSync, statSync } from 'node:fs'
import { join, relative, extname, resolve, sep } from 'node:path'
import { InvalidThreadModule, RaimentError, ThreadTypeUnavailable, UnknownLibrary, UnknownThreadType } from './errors.js'
import { importModule } from './loader.js'
import { isThreadType, type AnyThreadType } from './thread.js'
import { supervisor } from './supervisor.js'
import { SOURCE, typeNameOf } from './thread-name.js'

const SOURCE_EXT = new Set(['.ts', '.mts', '.js', '.mjs'])

function walk(dir: string, out: string[]): void {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name)
    if (statSync(p).isDirectory()) {
      if (name !== 'node_modules' && !name.startsWith('.')) walk(p, out)
    } else if (SOURCE_EXT.has(extname(name)) && !name.endsWith('.d.ts') && !/\.(test|spec)\./.test(name)) {
      out.push(p)
    }
  }
}

/** The thread types of a directory: those that loaded, and why the others did not. */
export interface ThreadTypes {
  /** The types that loaded, by name. */
  readonly types: Map<string, AnyThreadType>
  /** The types that cannot run, by name, each with why: its module failed to load, or it uses a library that does not exist. */
  readonly unavailable: Map<string, RaimentError>
  /** The module of each type, by name. */
  readonly files: Map<string, string>
  /** What each type's module exports as `schedule`, by type name, where it exports one (src/schedules/). */
  readonly declared?: Map<string, unknown>
}

/** The thread-type modules of `dir` by type name, without loading any. A missing directory has none. */
export function threadFiles(dir: string): Map<string, string> {
  const files = new Map<string, string>()
  if (!existsSync(dir)) return files
  const found: string[] = []
  // Paths under `dir` as given, so messages name files as the user does (`threads/greet.ts`).
  walk(dir, found)
  for (const file of found) files.set(relative(dir, file).slice(0, -extname(file).length).split(sep).join('/'), file)
  return files
}

/**
 * Loads one module as a thread type.
 * @throws InvalidThreadModule naming the file, when it cannot be imported (the import error is
 *   its `cause`) or its default export is not a thread type
 */
export async function loadThreadType(file: string, query?: string): Promise<AnyThreadType> {
  return (await loadThreadModule(file, query)).type
}

/** Loads one module as a thread type, with what it exports as `schedule` (undefined: nothing). */
async function loadThreadModule(file: string, query?: string): Promise<{ type: AnyThreadType; schedule: unknown }> {
  let mod: { default?: unknown; schedule?: unknown }
  try {
    mod = (await importModule(resolve(file), query)) as typeof mod
  } catch (e) {
    const why = e instanceof Error ? `${e.name}: ${e.message}` : String(e)
    throw new InvalidThreadModule(file, `could not be loaded: ${why}`, { cause: e })
  }
  if (!isThreadType(mod.default)) {
    throw new InvalidThreadModule(file, "its default export is not a thread type; write `export default thread({ uses, does })`")
  }
  return { type: mod.default, schedule: mod.schedule }
}

/**
 * Loads the thread types of `dir`. A module that fails to load is not thrown: its type goes to
 * `unavailable` with the InvalidThreadModule that says why.
 */
export async function loadThreadTypes(dir: string): Promise<ThreadTypes> {
  const types = new Map<string, AnyThreadType>()
  const unavailable = new Map<string, RaimentError>()
  const declared = new Map<string, unknown>()
  const files = threadFiles(dir)
  for (const [name, file] of files) {
    try {
      const { type, schedule } = await loadThreadModule(file)
      types.set(name, type)
      if (schedule !== undefined) declared.set(name, schedule)
    } catch (e) {
      if (!(e instanceof InvalidThreadModule)) throw e
      unavailable.set(name, e)
    }
  }
  return { types, unavailable, files, declared }
}

/**
 * Loads only the thread type `name` of `dir` (a broken module of another type is not imported).
 * @throws UnknownThreadType naming the types the directory has, when none is `name`
 * @throws ThreadTypeUnavailable, with the InvalidThreadModule as its cause, when its module fails to load
 */
export async function loadThreadTypeNamed(dir: string, name: string): Promise<AnyThreadType> {
  const files = threadFiles(dir)
  const file = files.get(name)
  if (file === undefined) throw new UnknownThreadType(name, [...files.keys()])
  try {
    return await loadThreadType(file)
  } catch (e) {
    throw e instanceof InvalidThreadModule ? new ThreadTypeUnavailable(name, e) : e
  }
}

/**
 * Checks that every library a thread type uses exists. With `unavailable`, a type that uses one
 * that does not is moved there (with `files` naming its module); without, that is thrown. `added`:
 * libraries whose files are there but not loaded (a reload's): the error says to restart.
 * @throws UnknownLibrary naming the libraries that exist
 */
export function checkUses(
  types: Map<string, AnyThreadType>,
  libraries: readonly string[],
  unavailable?: Map<string, RaimentError>,
  files?: Map<string, string>,
  added: readonly string[] = [],
): void {
  for (const [name, t] of types) {
    const missing = t.uses.find((u) => !libraries.includes(u))
    if (missing === undefined) continue
    const file = files?.get(name)
    const err = new UnknownLibrary(missing, `thread type '${name}'${file !== undefined ? ` (${file})` : ''}`, libraries, added.includes(missing))
    if (unavailable === undefined) throw err
    types.delete(name)
    unavailable.set(name, err)
  }
}

/** Types a reload replaced, by the name they had (a program holds the instance it imported before). */
const formerly = new WeakMap<AnyThreadType, string>()

/** A reload replaced the type `name` was (`old`) with another instance of its module. */
export function replacedType(old: AnyThreadType, name: string): void {
  formerly.set(old, name)
}

/**
 * The name a weave knows thread type `type` by (`Weave.spawn(checkout, …)`): the entry that is
 * this very object, or that a reload put in the place of this object. Never a guess by module:
 * one module may declare several types, and modules may make types with a shared factory, so a
 * type the weave did not load itself (another instance of its module) is not known.
 */
export function nameOfType(types: ReadonlyMap<string, AnyThreadType>, type: AnyThreadType): string | undefined {
  for (const [name, t] of types) if (t === type) return name
  const former = formerly.get(type)
  return former !== undefined && types.has(former) ? former : undefined
}

/**
 * The name of the thread type `Weave.spawn` was given: a name as it is, a thread type object by
 * `nameOfType` (or, where its module failed to load here, the name that module has, for the
 * caller to refuse with that failure: nothing runs).
 * @throws UnknownThreadType naming the module the type was declared in, when the weave has no such type
 */
export function spawnedTypeName(types: ReadonlyMap<string, AnyThreadType>, unavailable: ReadonlyMap<string, unknown>, type: string | AnyThreadType): string {
  if (!isThreadType(type)) return type
  const name = nameOfType(types, type)
  if (name !== undefined) return name
  const guess = typeNameOf(type)
  if (guess !== null && unavailable.has(guess)) return guess
  const file = (type as unknown as Record<symbol, unknown>)[SOURCE]
  throw new UnknownThreadType(guess ?? 'a thread type', [...types.keys()], typeof file === 'string' ? file : 'a module the stack did not name')
}

/**
 * A weave's thread types: those given by name (the program's own), or loaded from the threads
 * directory (default `threads`), with the built-in supervisor unless one is given under its name.
 */
export async function weaveTypes(threads: string | Record<string, AnyThreadType> | undefined): Promise<ThreadTypes> {
  const loaded: ThreadTypes =
    typeof threads === 'object' ? { types: new Map(Object.entries(threads)), unavailable: new Map(), files: new Map() } : await loadThreadTypes(threads ?? 'threads')
  if (!loaded.types.has('raiment/supervisor')) loaded.types.set('raiment/supervisor', supervisor as AnyThreadType)
  return loaded
}

/**
 * Loading thread types: every module under a threads directory whose default export is a
 * thread type, named by its path without extension (`orders/checkout`).
 */
import { readdirSync, existsSync, statSync } from 'node:fs'
import { join, relative, extname, resolve, sep } from 'node:path'
import { pathToFileURL } from 'node:url'
import { InvalidThreadModule, UnknownLibrary } from './errors.js'
import { isThreadType, type AnyThreadType } from './thread.js'

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

/** Loads the thread types of `dir`, by name. A missing directory has none. */
export async function loadThreadTypes(dir: string): Promise<Map<string, AnyThreadType>> {
  const types = new Map<string, AnyThreadType>()
  const root = resolve(dir)
  if (!existsSync(root)) return types
  const files: string[] = []
  walk(root, files)
  for (const file of files) {
    const name = relative(root, file).slice(0, -extname(file).length).split(sep).join('/')
    let mod: { default?: unknown }
    try {
      mod = (await import(pathToFileURL(file).href)) as { default?: unknown }
    } catch (e) {
      throw new InvalidThreadModule(file, `could not be loaded: ${(e as Error).message}`)
    }
    if (!isThreadType(mod.default)) {
      throw new InvalidThreadModule(file, "its default export is not a thread type; write `export default thread({ uses, does })`")
    }
    types.set(name, mod.default)
  }
  return types
}

/** Checks that every library a thread type uses exists. */
export function checkUses(types: Map<string, AnyThreadType>, libraries: readonly string[]): void {
  for (const [name, t] of types) {
    for (const u of t.uses) {
      if (!libraries.includes(u)) throw new UnknownLibrary(u, `thread type '${name}'`, libraries)
    }
  }
}

/**
 * Importing a project's own modules (thread types, I/O libraries) by file. Whoever loads them
 * (the CLI, `Weave.open` in plain `node`, a test) gets the same behaviour:
 *
 * - a TypeScript file loads as it is: the first time one is imported, tsx's loader is registered
 *   for the process (the CLI registers it at its start, and marks that it did);
 * - a module that Node loads as CommonJS and that fails to load fails with `CommonJsModule`,
 *   which says what to change, rather than Node's error about `require()` of an ES module. The
 *   command loads a file with no package.json above it as an ES module (bin/resolve-hooks.js):
 *   there such a file fails with its own error (a syntax error is reported as one).
 */
import { readFileSync } from 'node:fs'
import { dirname, extname, join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { CommonJsModule } from './errors.js'

/** Set on globalThis once tsx's loader is registered (bin/raiment.js sets it too). */
const TS_LOADER = Symbol.for('raiment.typescript-loader')
/** Set on globalThis by bin/raiment.js, whose resolve hooks load a file outside any package as an ES module. */
const ESM_OUTSIDE_PACKAGES = Symbol.for('raiment.esm-outside-packages')

const TS_EXT = new Set(['.ts', '.mts', '.cts'])
/** Extensions Node loads as ES modules whatever the package.json says. */
const ESM_EXT = new Set(['.mjs', '.mts'])

/**
 * Imports the module at `file` (an absolute path) and returns its namespace.
 * @throws CommonJsModule when Node loads the file as CommonJS and loading failed; the import's
 *   own error otherwise
 */
export async function importModule(file: string, query?: string): Promise<unknown> {
  if (TS_EXT.has(extname(file))) await typescriptLoader()
  try {
    // A query makes another module of the same file: its text as it is now (a reload).
    return await import(pathToFileURL(file).href + (query !== undefined ? `?${query}` : ''))
  } catch (e) {
    throw commonJsError(file, e) ?? e
  }
}

let registering: Promise<void> | null = null

/** Registers tsx's ESM loader once per process, unless someone already has. */
async function typescriptLoader(): Promise<void> {
  const g = globalThis as Record<symbol, unknown>
  if (g[TS_LOADER] === true) return
  registering ??= import('tsx/esm/api').then(({ register }) => {
    register()
    g[TS_LOADER] = true
  })
  await registering
}

/** The error to throw instead of `cause` when `file` is in CommonJS scope; null otherwise. */
function commonJsError(file: string, cause: unknown): CommonJsModule | null {
  if (ESM_EXT.has(extname(file))) return null
  const scope = packageScope(dirname(file))
  if (scope !== null && scope.type === 'module') return null
  if (scope === null && (globalThis as Record<symbol, unknown>)[ESM_OUTSIDE_PACKAGES] === true) return null
  return new CommonJsModule(file, scope?.file ?? null, scope?.type, cause)
}

/** The nearest package.json at or above `dir` (the one that decides a file's module format). */
function packageScope(dir: string): { file: string; type: unknown } | null {
  for (let d = dir; ; d = dirname(d)) {
    const file = join(d, 'package.json')
    let text: string
    try {
      text = readFileSync(file, 'utf8')
    } catch {
      if (dirname(d) === d) return null
      continue
    }
    try {
      return { file, type: (JSON.parse(text) as { type?: unknown }).type }
    } catch {
      return { file, type: undefined }
    }
  }
}

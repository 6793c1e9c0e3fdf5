/**
 * Where in a thread's code something happened, from a stack: the first frame outside Raiment and
 * Node (`raiment check`'s place of a call made, a divergence's place of what new code threw).
 */
import { resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

/**
 * The place in the thread's code where a call was made, from the stack kept when it was made:
 * the first frame in `file` (the thread type's module), or else the first frame outside
 * Raiment and Node: `path:line:column`, the path as given or relative to the working directory.
 */
export function callSite(stack: string, file?: string): string | null {
  const frames = stack
    .split('\n')
    .slice(1)
    .map((l) => /\(?((?:file:\/\/)?[^\s()]+):(\d+):(\d+)\)?\s*$/.exec(l.trim()))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ path: m[1]!.startsWith('file://') ? safePath(m[1]!) : m[1]!, line: m[2]!, col: m[3]! }))
  const abs = file === undefined ? undefined : resolve(file)
  const own = abs === undefined ? undefined : frames.find((f) => f.path === abs)
  const pick = own ?? frames.find((f) => !f.path.startsWith('node:') && !RAIMENT_DIRS.some((d) => f.path.startsWith(d)) && !f.path.includes('/node_modules/'))
  if (pick === undefined) return null
  return `${file !== undefined && own !== undefined ? file : pick.path}:${pick.line}:${pick.col}`
}

function safePath(url: string): string {
  try {
    return fileURLToPath(url)
  } catch {
    return url
  }
}

/** Raiment's own sources and built-in libraries (a call made there is not the thread's code). */
const RAIMENT_DIRS = [fileURLToPath(new URL('./', import.meta.url)), fileURLToPath(new URL('../io-libs/', import.meta.url))]

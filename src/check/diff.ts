/**
 * How `raiment check` shows a divergence: the difference between the arguments of the recorded
 * call and of the call made, and where in the thread's code the call was made.
 */
import { isDeepStrictEqual } from 'node:util'
import { resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { short } from '../cli/common.js'
import type { ShownCall } from './replay-check.js'

/** At most this many lines of difference. */
const MAX_LINES = 8

/**
 * One line per difference between the recorded call and the call made: `call: a.x → a.y`, or
 * `args[1].amount: 100 → 10000`, `args[2]: (none) → "x"`.
 */
export function argsDiff(recorded: ShownCall, made: ShownCall): string[] {
  const out: string[] = []
  if (recorded.call !== made.call) out.push(`call: ${recorded.call} → ${made.call}`)
  walk('args', recorded.args, made.args, out)
  if (recorded.ord !== made.ord && out.length === 0) out.push(`ordinal: ${recorded.ord} → ${made.ord} (the same call, made a different number of times before)`)
  return out.length > MAX_LINES ? [...out.slice(0, MAX_LINES), `… and ${out.length - MAX_LINES} more`] : out
}

const NONE = Symbol('none')

function walk(path: string, a: unknown, b: unknown, out: string[]): void {
  if (out.length > MAX_LINES || isDeepStrictEqual(a, b)) return
  const plainA = container(a)
  const plainB = container(b)
  if (plainA !== null && plainA === plainB) {
    const keys = new Set([...Object.keys(a as object), ...Object.keys(b as object)])
    for (const k of keys) {
      const sub = plainA === 'array' ? `${path}[${k}]` : /^[A-Za-z_$][\w$]*$/.test(k) ? `${path}.${k}` : `${path}[${JSON.stringify(k)}]`
      const va = Object.hasOwn(a as object, k) ? (a as Record<string, unknown>)[k] : NONE
      const vb = Object.hasOwn(b as object, k) ? (b as Record<string, unknown>)[k] : NONE
      walk(sub, va, vb, out)
    }
    return
  }
  out.push(`${path}: ${show(a)} → ${show(b)}`)
}

function container(v: unknown): 'array' | 'object' | null {
  if (Array.isArray(v)) return 'array'
  if (v !== null && typeof v === 'object' && (Object.getPrototypeOf(v) === Object.prototype || Object.getPrototypeOf(v) === null)) return 'object'
  return null
}

function show(v: unknown): string {
  return v === NONE ? '(none)' : short(v, 60)
}

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
const RAIMENT_DIRS = [fileURLToPath(new URL('../', import.meta.url)), fileURLToPath(new URL('../../io-libs/', import.meta.url))]

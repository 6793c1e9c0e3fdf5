/**
 * How `raiment check` shows a divergence: the difference between the arguments of the recorded
 * call and of the call made, and where in the thread's code the call was made.
 */
import { isDeepStrictEqual } from 'node:util'
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

/**
 * The name of a thread type known only as an object (as `record()` gets it): a weave names the
 * modules of its threads directory by their path there without extension (`orders/checkout`), so
 * a thread type is named by the module that declared it: its path under the nearest `threads/`
 * directory without extension, or else the module's file name without extension. `thread()`
 * notes that module (from the call stack) when it declares the type.
 */
import { basename, extname, sep } from 'node:path'
import { fileURLToPath } from 'node:url'

/** Where `thread()` keeps the file of the module that declared a type (shared by every copy of Raiment). */
export const SOURCE = Symbol.for('raiment.thread-source')

/** The file of the code that called `fn`, or null when the stack does not tell (eval, native code). */
export function callerFile(fn: (...args: never[]) => unknown): string | null {
  // Kept to be put back as it was, never called here.
  // eslint-disable-next-line @typescript-eslint/unbound-method
  const prepare = Error.prepareStackTrace
  const limit = Error.stackTraceLimit
  try {
    Error.stackTraceLimit = 1
    Error.prepareStackTrace = (_e, frames) => frames
    const holder: { stack?: NodeJS.CallSite[] } = {}
    Error.captureStackTrace(holder, fn)
    const name = holder.stack?.[0]?.getFileName()
    if (!name) return null
    const file = name.startsWith('file:') ? fileURLToPath(name.replace(/[?#].*$/, '')) : name.replace(/[?#].*$/, '')
    return file.startsWith(sep) || /^[A-Za-z]:[\\/]/.test(file) ? file : null
  } finally {
    Error.prepareStackTrace = prepare
    Error.stackTraceLimit = limit
  }
}

/** The type name for a module file: its path under the nearest `threads/` directory, else its base name, without extension. */
export function typeNameOfFile(file: string): string {
  const parts = file.slice(0, -extname(file).length || undefined).split(/[\\/]/)
  const at = parts.lastIndexOf('threads')
  return at >= 0 && at < parts.length - 1 ? parts.slice(at + 1).join('/') : basename(file, extname(file))
}

/** The name of a thread type from the module that declared it, or null when that is not known. */
export function typeNameOf(type: object): string | null {
  const file = (type as Record<symbol, unknown>)[SOURCE]
  return typeof file === 'string' ? typeNameOfFile(file) : null
}

/**
 * Shared by the built-in libraries: how a wrong argument is named in an error message. Files of
 * io-libs/ whose name starts with `_` are helpers, not libraries.
 */
export function describe(v: unknown): string {
  switch (typeof v) {
    case 'string':
      return JSON.stringify(v)
    case 'number':
    case 'bigint':
    case 'boolean':
    case 'undefined':
      return `${typeof v} ${String(v)}`
    case 'object':
      if (v === null) return 'null'
      return (Object.getPrototypeOf(v) as { constructor?: { name?: string } } | null)?.constructor?.name ?? 'an object'
    default:
      return `a ${typeof v}`
  }
}

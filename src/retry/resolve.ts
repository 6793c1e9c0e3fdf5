/**
 * Which policy a call runs under: its own (the `retry` field of the library's options argument,
 * taken off the arguments before they are keyed), over its thread type's for the method, over
 * its thread type's for the library, over the library's.
 */
import { checkPolicy, mergePolicy, type LibraryRetry, type Policy, type RetryPolicy, type ThreadRetry } from './policy.js'

/** What the resolution needs of a library. */
export interface RetryingLibrary {
  readonly name: string
  readonly retry: LibraryRetry | null
}

/** The policies merged from the library and the thread type: by library, thread type, method. */
const merged = new WeakMap<RetryingLibrary, Map<ThreadRetry | null, Map<string, Policy | null>>>()

function layers(lib: RetryingLibrary, method: string, thread: ThreadRetry | null): Array<RetryPolicy | false | undefined> {
  return [lib.retry?.policy, thread?.[lib.name], thread?.[`${lib.name}.${method}`]]
}

/**
 * The arguments to key and call, and the policy of the call (null: it is made once).
 * @throws InvalidArgument for a per-call policy that is not one
 */
export function callRetry(lib: RetryingLibrary, method: string, args: unknown[], thread: ThreadRetry | null): { args: unknown[]; policy: Policy | null } {
  const at = lib.retry?.callOption?.[method]
  const opts = at === undefined ? undefined : args[at]
  if (opts !== null && typeof opts === 'object' && Object.hasOwn(opts, 'retry')) {
    const { retry: own, ...rest } = opts as { retry?: unknown }
    if (own !== false && own !== undefined) checkPolicy(own, `${lib.name}.${method}: the 'retry' option`)
    const stripped = args.slice()
    stripped[at!] = rest
    return { args: stripped, policy: mergePolicy([...layers(lib, method, thread), own]) }
  }
  let byType = merged.get(lib)
  if (byType === undefined) merged.set(lib, (byType = new Map<ThreadRetry | null, Map<string, Policy | null>>()))
  let byMethod = byType.get(thread)
  if (byMethod === undefined) byType.set(thread, (byMethod = new Map<string, Policy | null>()))
  let policy = byMethod.get(method)
  if (policy === undefined) byMethod.set(method, (policy = mergePolicy(layers(lib, method, thread))))
  return { args, policy }
}

/**
 * `thread({ uses, does })`: the declaration of a thread type. It only describes; the weave runs.
 * `this` inside `does` is typed from `uses` through the `Libraries` interface, which each I/O
 * library extends by declaration merging, so a misspelt library or method is a compile error.
 */
import { InvalidArgument } from './errors.js'
import { checkThreadRetry, type RetryPolicy, type ThreadRetry } from './retry/policy.js'
import { callerFile, SOURCE } from './thread-name.js'

/**
 * The thread-side API of every I/O library, by name. Built-in libraries are declared by Raiment;
 * a library of your own adds itself:
 * @example
 * const payments = { async charge(cents: number) { return { ok: true } } }
 * export default payments
 * declare module 'raiment' { interface Libraries { payments: LibraryApi<typeof payments> } }
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface Libraries {}

export type LibraryName = keyof Libraries & string

/**
 * The thread-side view of a library object: every method returns a promise of its result. Methods
 * keyed by a symbol (a `Symbol.dispose`) are not calls a thread can make.
 */
export type LibraryApi<L> = {
  readonly [K in keyof L as K extends string ? (L[K] extends (...args: never[]) => unknown ? K : never) : never]: L[K] extends (
    ...args: infer A
  ) => infer R
    ? (...args: A) => Promise<Awaited<R>>
    : never
}

/** What `this` is inside `does`: one property per library named in `uses`. */
export type ThreadThis<U extends readonly LibraryName[]> = { readonly [K in U[number]]: Libraries[K] }

const BRAND = Symbol.for('raiment.thread-type')

export interface ThreadType<U extends readonly LibraryName[] = readonly LibraryName[], P = never, R = unknown> {
  readonly uses: U
  readonly does: (this: ThreadThis<U>, params: P) => Promise<R>
  /** Retry policies of its calls, by library or `library.method` (docs/retries.md). */
  readonly retry?: ThreadRetry
  readonly [BRAND]: true
}

/** Any thread type, whatever its libraries, params and result. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyThreadType = ThreadType<readonly LibraryName[], any, unknown>

/**
 * Declares a thread type. Default-export it from a module in `threads/`; its name is the module's
 * path without extension (`orders/checkout`).
 *
 * `does` must be deterministic apart from the calls it makes through `this`: time, randomness,
 * messages, files, network and databases all come through I/O libraries, so that the weave can
 * resume it after a crash and tests can replay it from its record.
 * `retry` (optional) gives the thread's calls retry policies, by library (`fetch`) or method
 * (`fetch.request`), over the library's own; `false` turns retries off (docs/retries.md).
 * @throws InvalidArgument when `uses` is not an array of names, `does` is not a function, or
 *   `retry` names a library the type does not use or holds a policy that is not one
 * @example
 * export default thread({
 *   uses: ['clock', 'log'],
 *   async does(params: { name: string }) {
 *     await this.log.info(`hello ${params.name} at ${await this.clock.now()}`)
 *     return params.name
 *   },
 * })
 */
export function thread<const U extends readonly LibraryName[], P = undefined, R = unknown>(def: {
  uses: U
  retry?: Partial<Record<U[number] | `${U[number]}.${string}`, RetryPolicy | false>>
  does: (this: ThreadThis<U>, params: P) => Promise<R>
}): ThreadType<U, P, R> {
  if (def === null || typeof def !== 'object') {
    throw new InvalidArgument(`thread() expects { uses, does }, got ${String(def)}`)
  }
  const { uses, does, retry } = def
  if (!Array.isArray(uses) || uses.some((u) => typeof u !== 'string')) {
    throw new InvalidArgument(`thread(): 'uses' must be an array of library names, got ${JSON.stringify(uses)}`)
  }
  if (typeof does !== 'function') {
    throw new InvalidArgument(`thread(): 'does' must be an async function, got ${typeof does}`)
  }
  if (retry !== undefined) checkThreadRetry(retry, uses)
  // The declaring module names the type where only the object is at hand (record()).
  return Object.freeze({
    uses: Object.freeze([...uses]) as unknown as U,
    does,
    ...(retry === undefined ? {} : { retry: Object.freeze({ ...retry }) }),
    [BRAND]: true as const,
    [SOURCE]: callerFile(thread),
  })
}

/** Is `v` a thread type made by thread() (from any copy of Raiment loaded in this process)? */
export function isThreadType(v: unknown): v is AnyThreadType {
  return typeof v === 'object' && v !== null && (v as Record<symbol, unknown>)[BRAND] === true
}

/**
 * A call a thread made through its weft: the request, its promise, its outcome once the library
 * answered, and its place in the weft's list of pending calls. The weft (weft.ts) owns its life.
 */
import type { LiveCall, WeaveConfig } from './call-context.js'
import { decodeValue, encodeValue } from './encoding.js'
import type { Library } from './libraries.js'
import type { CallObservation } from './observer.js'
import type { Policy } from './retry/policy.js'

/** A request a thread made, from the call until its outcome is released. */
export class Call implements LiveCall {
  readonly threadId: string
  readonly lib: Library
  readonly method: string
  /** Its arguments, until the library is asked (kept for the attempts of a call that is retried). */
  args: unknown[]
  /**
   * Its arguments as they were when the thread made the call, encoded exactly (`ownCopy`), for
   * the library to get its own copy; null when they are all primitives (passed as they are).
   */
  #copy: string | null = null
  readonly key: string
  readonly ord: number
  readonly config: WeaveConfig
  /** Its thread's call scope (src/call-context.ts `scopeNumber`), -1 for none. */
  readonly scope: number
  /** How the call is retried when it fails live (src/retry/); null: it is made once. */
  retry: Policy | null = null
  controller: AbortController | null = null
  abortHook: ((reason: Error) => void) | null = null
  /**
   * A receive's hook (`abortHook`, marked `givingBack`) once its outcome is recorded, until that
   * outcome is released: it gives back what it took should its record be dropped meanwhile
   * (continue-as-new). Other libraries' hooks never run once their call has ended.
   */
  unreleased: ((reason: Error) => void) | null = null
  /** Its observation (a span), while live and observed. */
  obs: CallObservation | null = null
  promise!: Promise<unknown>
  resolve!: (v: unknown) => void
  reject!: (e: unknown) => void
  ok = true
  value: unknown = undefined
  /** When the library was asked (0: not yet, e.g. waiting for a concurrency slot). */
  started = 0
  /** The library answered (its outcome is recorded, or the thread has let go). */
  answered = false
  t0 = 0
  /** Neighbours in the weft's list of pending calls (in the order the calls were made). */
  prevPending: Call | null = null
  nextPending: Call | null = null

  /**
   * `copy`: the library may be asked (not a call replayed from its entry), so a copy of `args` is
   * kept for it: 'json' when they are exactly JSON (their recorded text is), 'exact' otherwise.
   */
  constructor(threadId: string, lib: Library, method: string, args: unknown[], key: string, ord: number, config: WeaveConfig, scope = -1, copy: 'json' | 'exact' | null = null) {
    if (copy !== null && !allPrimitive(args)) {
      this.#copy = ownCopy(args, copy === 'json')
    }
    this.threadId = threadId
    this.scope = scope
    this.lib = lib
    this.method = method
    this.args = args
    this.key = key
    this.ord = ord
    this.config = config
    this.promise = new Promise((resolve, reject) => {
      this.resolve = resolve
      this.reject = reject
    })
  }

  /**
   * The arguments to ask the library with: a copy of its own, made for each attempt, so a
   * library that changes an argument in place changes nothing the thread holds (the thread would
   * see that live, and not on replay, where no library runs). A call made once (no retry policy)
   * lets go of them then: nothing reads them again, so a call that waits long (a sleep) keeps none.
   */
  takeArgs(): unknown[] {
    const args = this.args
    const copy = this.#copy
    if (this.retry === null) {
      this.args = NO_ARGS
      this.#copy = null
    }
    if (copy === null) return args
    return decodeValue(copy) as unknown[]
  }
}

/** Are all of `args` primitives, which no library can change (passed as they are)? */
function allPrimitive(args: readonly unknown[]): boolean {
  for (const a of args) if (a !== null && (typeof a === 'object' || typeof a === 'function')) return false
  return true
}

/**
 * `args` encoded exactly (key order, classes), to be decoded into the library's own copy. An
 * argument that cannot be encoded so (only a library's secret markers may let one through to
 * here) is passed as it is (null).
 */
function ownCopy(args: readonly unknown[], json: boolean): string | null {
  try {
    // (Text as encodeValue's: JSON behind a `J`, which decodeValue reads back with JSON.parse.)
    return json ? 'J' + JSON.stringify(args) : encodeValue(args, 'args')
  } catch {
    return null
  }
}

const NO_ARGS: unknown[] = []

/** The abort hooks that give back what the call took (a receive's message): see `Call.unreleased`. */
const givesBack = new WeakSet<(reason: Error) => void>()

/** Marks `hook` (an onAbort hook) as one that gives back what its call took; returns it. */
export function givingBack<T extends (reason: Error) => void>(hook: T): T {
  givesBack.add(hook)
  return hook
}

/** `call`'s hook to keep once its outcome is recorded, until released: a giving-back one, or null. */
export function keptHook(call: Call): ((reason: Error) => void) | null {
  const hook = call.abortHook
  return hook !== null && givesBack.has(hook) ? hook : null
}

/** Tells a live call's library that the call is aborted: its signal, and its onAbort hook once. */
export function abort(call: Call, reason: Error): void {
  call.controller?.abort(reason)
  const hook = call.abortHook
  if (hook !== null) {
    call.abortHook = null
    hook(reason)
  }
}

/**
 * Asks the library for `call`: its method with its arguments. Observed, the call's span is the
 * active span in the method (src/observer.ts `within`), so what it does in its trace context
 * (an instrumented client's spans) nests under the call; not observed, no more than the call.
 */
export function askLibrary(call: Call): unknown {
  if (call.obs === null) return call.lib.impl[call.method]!(...call.takeArgs())
  return call.obs.within(() => call.lib.impl[call.method]!(...call.takeArgs()))
}

/**
 * The context of the live call an I/O library method is running for. Read it with
 * `callContext()` synchronously at the start of the method (before its first `await`).
 */
import { createHash, randomInt } from 'node:crypto'
import { RaimentError } from './errors.js'
import type { CallObservation } from './observer.js'

export interface CallContext {
  /** The calling thread's id. */
  readonly threadId: string
  readonly lib: string
  readonly method: string
  /**
   * Stable across resume: thread id + key + ordinal (after a continue-as-new, the thread id and
   * how many times it continued, so a new run's calls never share an id with an earlier run's).
   * Pass it on as an idempotency key so a call
   * that was in flight when the weave died does its effect once when it runs again.
   */
  readonly callId: string
  /** Aborted when the thread is killed or the weave shuts down. */
  readonly signal: AbortSignal
  /**
   * Runs `fn` once, with the reason, if the call is aborted (the thread is killed or the weave
   * shuts down) before it ends: what `signal` tells, without an AbortSignal (about 1 KB each), for
   * calls that may wait long in great numbers, such as a sleep. A second `fn` replaces the first.
   * It also marks the call as a wait: when its thread moves to another weave, a call with `fn`
   * set is abandoned (and made again there), where one without is finished here first.
   * @example
   * const timer = setTimeout(resolve, ms)
   * callContext().onAbort((reason) => { clearTimeout(timer); reject(reason) })
   */
  onAbort(fn: (reason: Error) => void): void
  /** The weave's configuration. */
  readonly config: WeaveConfig
  /**
   * The call's trace context as a W3C `traceparent` header value when OpenTelemetry is on (an
   * SDK registered: docs/observability.md), else null. Pass it on (an HTTP header) so what the
   * call causes elsewhere joins its trace.
   */
  readonly traceparent: string | null
}

export interface WeaveConfig {
  readonly db: string
  readonly weaveId: string
  readonly [key: string]: unknown
}

export interface LiveCall {
  readonly threadId: string
  readonly lib: { readonly name: string }
  readonly method: string
  readonly key: string
  readonly ord: number
  controller: AbortController | null
  /** What `onAbort` registered; the weft calls it (once) where it aborts `controller`. */
  abortHook: ((reason: Error) => void) | null
  readonly config: WeaveConfig
  /** Its thread's call scope (`scopeNumber`), -1 for none. */
  readonly scope: number
  /** Its observation, when the weave is observed (src/observer.ts). */
  readonly obs: CallObservation | null
}

let current: LiveCall | null = null

/** @internal Sets the call whose library method is being entered. */
export function enterCall(call: LiveCall | null): void {
  current = call
}

/** @internal The observation of the live call whose library method is being entered, or null. */
export function currentObservation(): CallObservation | null {
  return current === null ? null : current.obs
}

/** The id of a call: thread id, a digest of the key, and the ordinal. */
export function callIdOf(threadId: string, key: string, ord: number): string {
  return `${threadId}:${createHash('sha256').update(key).digest('base64url').slice(0, 16)}:${ord}`
}

/**
 * On the config of a run of a thread that continued as new (src/continue/): what its call ids
 * begin with instead of the thread id, so that they differ from those of its earlier runs.
 */
export const CALL_SCOPE: unique symbol = Symbol('raiment.call-scope')

/**
 * What the call ids of a thread begin with: its id, its scope (random, made with its row: a thread
 * of the same id in another journal, one made again under the same weave id, has other call ids;
 * none for a thread of an older journal), and how many times it continued as new (its earlier
 * runs had other call ids).
 */
export function callScope(threadId: string, continued: number | null | undefined, scope?: string | null): string {
  const s = scope ? `${threadId}@${scope}` : threadId
  return continued ? `${s}~${continued}` : s
}

/** The id of call `key` #`ord` of the thread of journal row `row` (its id, continued count and scope). */
export function callIdOfRow(row: { readonly id: string; readonly continued?: number | null; readonly scope?: string | null }, key: string, ord: number): string {
  return callIdOf(callScope(row.id, row.continued, scopeText(scopeNumber(row.scope))), key, ord)
}

/**
 * A new thread's call scope: a random number below 2^30, as text (base 36, at most 6 characters).
 * In memory a thread's weft keeps the number (`scopeNumber`): a small integer costs no memory of its
 * own, where a string would cost each idle thread some 30 bytes.
 */
export function newScope(): string {
  return randomInt(2 ** 30).toString(36)
}

/** A scope as a weft keeps it: its number, or -1 for none. */
export function scopeNumber(text: string | null | undefined): number {
  const n = text ? parseInt(text, 36) : -1
  return Number.isSafeInteger(n) ? n : -1
}

/** A scope kept as a number, as text again (null for none). */
export function scopeText(n: number): string | null {
  return n < 0 ? null : n.toString(36)
}

/** The id of a live call (see CALL_SCOPE). */
export function callIdOfCall(call: { readonly threadId: string; readonly key: string; readonly ord: number; readonly config: WeaveConfig; readonly scope: number }): string {
  return callIdOf((call.config as { [CALL_SCOPE]?: string })[CALL_SCOPE] ?? callScope(call.threadId, 0, scopeText(call.scope)), call.key, call.ord)
}

/**
 * The context of the live call being made, for use inside an I/O library method.
 * @throws RaimentError (`RAIMENT_NO_CALL`) outside the synchronous start of a library method
 * @example
 * async charge(cents: number) {
 *   const { callId } = callContext()
 *   return stripe.charge({ cents, idempotencyKey: callId })
 * }
 */
export function callContext(): CallContext {
  const call = current
  if (call === null) {
    throw new RaimentError(
      'RAIMENT_NO_CALL',
      'callContext() is only available synchronously at the start of an I/O library method, before its first await',
    )
  }
  return new Context(call)
}

/** A class, so that a context costs one small object (an object literal with getters is ~1 KB). */
class Context implements CallContext {
  readonly threadId: string
  readonly lib: string
  readonly method: string
  readonly config: WeaveConfig
  readonly #call: LiveCall

  constructor(call: LiveCall) {
    this.threadId = call.threadId
    this.lib = call.lib.name
    this.method = call.method
    this.config = call.config
    this.#call = call
  }

  get callId(): string {
    return callIdOfCall(this.#call)
  }

  get signal(): AbortSignal {
    const call = this.#call
    call.controller ??= new AbortController()
    return call.controller.signal
  }

  onAbort(fn: (reason: Error) => void): void {
    this.#call.abortHook = fn
  }

  get traceparent(): string | null {
    const obs = this.#call.obs
    return obs === null ? null : obs.traceparent
  }
}

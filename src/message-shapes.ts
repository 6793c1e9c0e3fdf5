/**
 * What messages look like, to threads and between weaves: what a send and a receive resolve to,
 * the envelopes the transport carries, the errors of names and inboxes, and receive patterns.
 */
import { registerError } from './encoding.js'
import { RaimentError } from './errors.js'
import type { MoveRecord } from './migration.js'

/**
 * What `send` resolves to: the message was put in the receiver's inbox, or dead-lettered.
 * `duplicate: true` (keyed sends from outside a thread, src/send-keys.ts): a message with this
 * key was sent to this receiver before, and nothing was sent now; the rest is what the first
 * send returned.
 */
export type SendResult = { delivered: true; to: string; duplicate?: true } | { delivered: false; to: string; reason: string; duplicate?: true }

/** The recorded outcome of a take or peek that waited until its deadline. */
export interface TimedOut {
  timedOut: true
}

export interface Received {
  n: number
  from: string | null
  message: unknown
}

/** What travels between weaves: a message for a thread, or a thread to spawn there. */
export type Envelope =
  // `name`: sent by that name; the receiving weave delivers it to the thread holding the name there.
  | { k: 'msg'; from: string | null; to: string; body: string; name?: string }
  | { k: 'spawn'; id: string; type: string; params: string; parent: string | null }
  | { k: 'move'; record: MoveRecord }
  // Passed on toward `target` like a message, back to weave `back` (src/catch-up.ts).
  | { k: 'fence'; target: string; back: string; fence: string }

/** Join, kill, cancel, monitor and link across weaves (src/remote-watches.ts), carried the same way. */
export type WatchEnvelope =
  | { k: 'watch'; target: string; watcher: string; kind: WatchKind }
  // `told`: the watcher is the thread's parent, sent the same exit message already (no copy).
  // `refused`: the broker refused the exit that said it, and why (src/refused-sends.ts); no outcome then.
  | { k: 'exit'; target: string; type?: string; watcher: string; kind: WatchKind; status: 'done' | 'failed' | 'killed' | 'unknown'; body: string; outcome: string | null; told?: boolean; refused?: string }
  | { k: 'kill'; target: string }
  | { k: 'cancel'; target: string; reason: string }
  // Thread `watcher` (of the sender's weave) has ended: the watches it holds on `targets` go.
  | { k: 'unwatch'; watcher: string; targets: string[] }

/** How a watcher hears of a thread's end: an exit message, a linked end, or a join's answer. */
export type WatchKind = 'monitor' | 'link' | 'join'

/**
 * Deep partial equality: every key of `pattern` is in `value` with an equal value (recursively
 * for plain objects; arrays, dates and primitives compare whole).
 */
export function matches(value: unknown, pattern: unknown): boolean {
  if (pattern === undefined) return true
  if (pattern === null || typeof pattern !== 'object') return Object.is(value, pattern)
  if (value === null || typeof value !== 'object') return false
  if (Array.isArray(pattern)) {
    return Array.isArray(value) && value.length === pattern.length && pattern.every((p, i) => matches(value[i], p))
  }
  if (pattern instanceof Date) return value instanceof Date && value.getTime() === pattern.getTime()
  for (const k of Object.keys(pattern)) {
    if (!(k in value) || !matches((value as Record<string, unknown>)[k], (pattern as Record<string, unknown>)[k])) return false
  }
  return true
}

export class NameTaken extends RaimentError {
  /** `held`: the owner has ended, and its names are held for the thread its supervisor restarts in its place. */
  constructor(name: string, owner: string, held = false) {
    super(
      'RAIMENT_NAME_TAKEN',
      held
        ? `the name '${name}' is held for the successor of thread ${owner}, which ended and which its supervisor restarts; pick another name`
        : `the name '${name}' belongs to thread ${owner} while it lives; pick another name or unregister it there`,
    )
  }
}

export class NoSuchMessage extends RaimentError {
  constructor(thread: string, n: number) {
    super('RAIMENT_NO_SUCH_MESSAGE', `thread ${thread} has no message #${n} in its inbox (it was taken already)`)
  }
}

// Defined here rather than in errors.ts, so registered here: a thread that catches one (live,
// resumed or replayed from its record) gets the same class back, and `instanceof` holds.
registerError(NameTaken)
registerError(NoSuchMessage)

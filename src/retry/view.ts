/**
 * What `raiment show` tells of retries: the failed attempts of a thread's calls, decoded, by call.
 */
import { callIdOfRow } from '../call-context.js'
import { decodeValue } from '../encoding.js'
import { type ErrorRecord } from '../error-records.js'
import type { Journal } from '../journal.js'
import { AttemptLog } from './attempts.js'

/** A failed attempt as the CLI shows it. */
export interface AttemptView {
  /** The attempt, from 1. */
  n: number
  /** `lib.method` */
  call: string
  error: ErrorRecord
  /** When it started and failed, and when the next attempt was due (ms since the epoch). */
  started: number
  ended: number
  due: number
}

/**
 * The failed attempts of thread `id`: `of(key, ord)` those of a journaled call; `inFlight` those
 * of calls that have no outcome yet (waiting for their next attempt, or cut by a crash).
 */
export function threadAttempts(journal: Journal, id: string, decode: (text: string) => unknown = decodeValue): {
  of(key: string, ord: number): AttemptView[] | undefined
  inFlight(): AttemptView[]
} {
  const byCall = attemptsByCall<ErrorRecord>(journal, id, decode)
  // A thread that continued as new: its calls' ids are scoped (src/continue/).
  const row = journal.thread(id) as { id: string; continued?: number; scope?: string | null } | undefined
  return {
    of(key, ord) {
      if (byCall.size === 0) return undefined
      const callId = callIdOfRow(row ?? { id }, key, ord)
      const list = byCall.get(callId)
      byCall.delete(callId)
      return list
    },
    inFlight: () => [...byCall.values()].flat(),
  }
}

/** The failed attempts of thread `id`, by call id, in order, their errors decoded by `decode`. */
export function attemptsByCall<E>(journal: Journal, id: string, decode: (text: string) => unknown): Map<string, Array<Omit<AttemptView, 'error'> & { error: E }>> {
  const byCall = new Map<string, Array<Omit<AttemptView, 'error'> & { error: E }>>()
  for (const a of AttemptLog.of(journal).ofThread(id)) {
    const v = { n: a.n, call: a.name, error: decode(a.error) as E, started: a.started, ended: a.ended, due: a.due }
    const list = byCall.get(a.call)
    if (list === undefined) byCall.set(a.call, [v])
    else list.push(v)
  }
  return byCall
}

/** One line of text for an attempt's error: `Name CODE: message`. */
export function attemptErrorText(e: ErrorRecord): string {
  const code = e.fields?.['code']
  return `${e.name}${typeof code === 'string' ? ` ${code}` : ''}: ${e.message}`
}

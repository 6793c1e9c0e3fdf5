/**
 * Where a thread's record ends: with the thread's own end (it returned, or its code threw), or
 * where it stopped before its end (still running, killed, moved on, or failed by its weave,
 * which could not go on running it). A replay that asks for more than the record of a thread
 * that had not ended goes on where the thread did live, or was stopped: not a divergence.
 */
import type { ErrorRecord } from './error-records.js'

/**
 * The failures only a weave gives a thread (one it cannot go on running, or linked to one that
 * failed): for records made before the weave marked its failures (`weave: true`).
 */
const FAILED_BY_WEAVE = new Set(['RAIMENT_REPLAY_DIVERGENCE', 'RAIMENT_THREAD_TYPE_UNAVAILABLE', 'RAIMENT_JOURNAL_DAMAGED', 'RAIMENT_LINKED_EXIT'])

/** Whether a thread of `status` (failed with `error`) had ended by itself: its record holds its whole run. */
export function endedByItself(status: string, error: ErrorRecord | null | undefined): boolean {
  if (status === 'done') return true
  if (status !== 'failed') return false
  if (error?.weave === true) return false
  const code = (error?.fields as { code?: unknown } | undefined)?.code
  return typeof code !== 'string' || !FAILED_BY_WEAVE.has(code)
}

/**
 * Where a thread's record ends: with the thread's own end (it returned, or its code threw), or
 * where it stopped before its end (still running, killed, moved on, or failed by its weave,
 * which could not go on running it). A replay that asks for more than the record of a thread
 * that had not ended goes on where the thread did live, or was stopped: not a divergence.
 */
import type { ErrorRecord } from './error-records.js'

/** The failures a weave gives a thread it cannot go on running: its code did not throw them, and its record stops there. */
const FAILED_BY_WEAVE = new Set(['RAIMENT_REPLAY_DIVERGENCE', 'RAIMENT_UNKNOWN_THREAD_TYPE', 'RAIMENT_THREAD_TYPE_UNAVAILABLE', 'RAIMENT_UNKNOWN_LIBRARY', 'RAIMENT_INVALID_LIBRARY', 'RAIMENT_JOURNAL_DAMAGED'])

/** Whether a thread of `status` (failed with `error`) had ended by itself: its record holds its whole run. */
export function endedByItself(status: string, error: ErrorRecord | null | undefined): boolean {
  if (status === 'done') return true
  if (status !== 'failed') return false
  const code = (error?.fields as { code?: unknown } | undefined)?.code
  return typeof code !== 'string' || !FAILED_BY_WEAVE.has(code)
}

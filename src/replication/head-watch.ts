/**
 * Watching a journal's head stream while its weave runs. The head gets a record only when a
 * generation starts (a checkpoint), so a head deleted by an operator went unnoticed until then:
 * a user trial deleted one, the weave ran on, and once it was lost it could be neither taken over
 * nor restored (`RAIMENT_NO_JOURNAL_STREAM`). Every HEAD_CHECK_MS the head is looked for on the
 * replicator's connection; when it is not there, `gone` runs (the replicator starts a new
 * generation, which declares the head again and names itself there).
 */
import type { ChannelModel } from 'amqplib'
import { headStream } from './records.js'
import { queueCheck } from './streams.js'

/** How often a running weave looks for its head stream (ms). */
export const HEAD_CHECK_MS = 2_000

export interface HeadWatch {
  ns: string
  weaveId: string
  /** The connection to look on, or null (down: nothing to look at). */
  conn(): ChannelModel | null
  /** A generation is being started (it declares the head): not looked for meanwhile. */
  busy(): boolean
  gone(conn: ChannelModel): void
}

/** Starts watching; returns what stops it. */
export function watchHead(w: HeadWatch, everyMs = HEAD_CHECK_MS): () => void {
  let looking = false
  const timer = setInterval(() => {
    const conn = w.conn()
    if (looking || conn === null || w.busy()) return
    looking = true
    void queueCheck(conn, headStream(w.ns, w.weaveId))
      .then((r) => {
        // Only the broker's "not found" says it is gone: a check that failed otherwise (its
        // channel or connection going, another refusal) is no answer, and the next looks again.
        if (r !== true && r.code === 404 && w.conn() === conn && !w.busy()) w.gone(conn)
      })
      .finally(() => (looking = false))
  }, everyMs)
  timer.unref()
  return () => clearInterval(timer)
}

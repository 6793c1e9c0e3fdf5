/**
 * What a running thread held in memory waits for, on its page in `raiment ui`: asked of the weave
 * running on its journal, and said, as `raiment show` asks and says it (src/cli/show-waits.ts).
 * With no weave on the journal nothing is asked (and nothing written).
 *
 * Invariant: an answer is kept for FRESH_MS while the thread's record does not grow, and given
 * again instead of asking. Asking writes a control request into the journal, which the server sees
 * as a change (src/ui/server.ts `/events`) and an open page refreshes on: asked again at each
 * refresh, the page would refresh, and the weave answer, for ever.
 */
import { JournalLock } from '../journal-owner.js'
import type { LiveWaits } from '../passivation/live-waits.js'
import { askWaits, heldInMemory } from '../cli/show-waits.js'
import type { ThreadDetail } from './thread-data.js'

/** How long an answer is given again while the thread's record stays as it was. */
const FRESH_MS = 5_000
/** The most answers kept (the oldest goes first). */
const KEPT_MAX = 1_000

export class ThreadWaits {
  /** By journal file and thread id: the answer, the thread's extent then, and when it came. */
  readonly #kept = new Map<string, { extent: number; at: number; waits: LiveWaits | null }>()

  /** What the thread of page `d` waits for now, or null (not in memory, no weave, no answer in time, nothing to say). */
  async of(d: ThreadDetail): Promise<LiveWaits | null> {
    if (!heldInMemory(d.thread) || !JournalLock.held(d.journal)) return null
    const key = `${d.journal}\n${d.thread.id}`
    const kept = this.#kept.get(key)
    if (kept !== undefined && kept.extent === d.extent && Date.now() - kept.at < FRESH_MS) return kept.waits
    const waits = await askWaits(d.journal, true, d.thread.id)
    this.#kept.delete(key)
    this.#kept.set(key, { extent: d.extent, at: Date.now(), waits })
    if (this.#kept.size > KEPT_MAX) this.#kept.delete(this.#kept.keys().next().value!)
    return waits
  }
}

/**
 * What `raiment show` tells of a running thread held in memory: what it waits for right now, asked
 * of the weave running on the journal (control request 'waits', src/passivation/live-waits.ts).
 * A thread's page in `raiment ui` asks and says it with the same functions (src/ui/thread-waits.ts).
 * Best effort, and short: with no weave running nothing is asked; a weave that does not answer
 * within ASK_MS (busy, or stopping), or answers what this cannot read (an older weave: `unknown
 * request 'waits'`), leaves `show` as it was without it. Never throws.
 */
import type { LiveWaits } from '../passivation/live-waits.js'
import { readFilter } from '../passivation/waits.js'
import { waitText } from '../passivation/listing.js'
import { askWeave } from './ask-weave.js'
import { isoTime, openExisting } from './common.js'
import { jsonValue } from './records.js'
import type { Journal } from '../journal.js'
import type { ThreadView } from './records.js'

/** How long `show` waits for the weave to take its question, then to answer it once taken. */
const ASK_MS = 1_000
const CLAIMED_MS = 250

/**
 * Whether thread `t` is running held in memory (not passivated, parked, kept on old code, or
 * moved): only then can the weave say what it waits for.
 */
export function heldInMemory(t: ThreadView): boolean {
  return t.status === 'running' && t.passivated === undefined && t.waitingForCode === undefined && t.waitingForType === undefined && t.oldCode === undefined && t.movedTo === undefined
}

/**
 * What running thread `id` of the journal at `db` waits for, as the weave running it says; null
 * when no weave runs there (`owned`: a weave holds the journal, `Journal.owned()`), it does not
 * answer in time, or has nothing to say.
 */
export async function askWaits(db: string, owned: boolean, id: string): Promise<LiveWaits | null> {
  // No weave: nothing asked, nothing written (show stays read-only then).
  if (!owned) return null
  let journal: Journal | undefined
  try {
    journal = openExisting(db)
    const reply = await askWeave(journal, 'waits', id, null, true, { waitMs: ASK_MS, claimedMs: CLAIMED_MS })
    return reply === null ? null : parseWaits(reply)
  } catch {
    return null
  } finally {
    journal?.close()
  }
}

/** A 'waits' answer, or null for one not understood (an older weave's `unknown request 'waits'`) or empty. */
export function parseWaits(reply: string): LiveWaits | null {
  try {
    const w = JSON.parse(reply) as LiveWaits | null
    if (w === null || typeof w !== 'object' || !Array.isArray(w.calls)) return null
    return w
  } catch {
    return null
  }
}

/**
 * The status `show` prints for it: `running, waiting for a message matching {"kind":"paid"}, until
 * T (since T0)`, `running, waiting for the end of w2/5 (on weave w2, not live now) (since T0)`,
 * `running, sleeping until T (since T0)`, `running, in a call to fetch.get since T`.
 */
export function waitingStatus(w: LiveWaits): string {
  return `running, ${waitingText(w)}`
}

/**
 * What it waits for, in words, as `waitingStatus` says it after `running, `: `waiting for a
 * message matching {"kind":"paid"}, until T (since T0)` and the like; `at` writes the times (ISO
 * 8601 unless told; the UI writes its own).
 */
export function waitingText(w: LiveWaits, at: (ms: number) => string = isoTime): string {
  const parts: string[] = []
  if (w.wait !== null && !w.wait.mailbox && w.wait.joins === null && w.wait.due !== null) parts.push(`sleeping until ${at(w.wait.due)} (since ${at(w.wait.since)})`)
  else if (w.wait !== null) {
    const weave = w.joinsWeave === undefined ? '' : ` (on weave ${w.joinsWeave.id}${w.joinsWeave.live === undefined ? '' : w.joinsWeave.live ? ', live' : ', not live now'})`
    parts.push(`waiting for ${waitText(w.wait, at)}${weave} (since ${at(w.wait.since)})`)
  }
  if (w.calls.length > 0) parts.push(`in ${w.calls.length === 1 ? 'a call' : 'calls'} to ${w.calls.map((c) => `${c.call} since ${at(c.since)}`).join(', ')}`)
  return parts.join(', and ')
}

/**
 * `show --json`'s `waiting`: `{ since, mailbox, match?, predicate?, until, joins, joinsWeave?, calls }`
 * (times ISO 8601), or null.
 */
export function waitingJson(w: LiveWaits | null): Record<string, unknown> | null {
  if (w === null) return null
  const o: Record<string, unknown> = {}
  if (w.wait !== null) {
    const p = w.wait
    o['since'] = isoTime(p.since)
    o['mailbox'] = p.mailbox
    const f = p.mailbox ? readFilter(p.filter) : null
    if (f !== null) {
      if ('match' in f) o['match'] = jsonValue(f.match)
      else o['predicate'] = true
    }
    o['until'] = p.due === null ? null : isoTime(p.due)
    o['joins'] = p.joins
    if (w.joinsWeave !== undefined) o['joinsWeave'] = w.joinsWeave
  }
  o['calls'] = w.calls.map((c) => ({ call: c.call, since: isoTime(c.since) }))
  return o
}

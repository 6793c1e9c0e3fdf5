/**
 * What a thread running in memory waits for right now (`raiment show` asks the weave: control
 * request 'waits', src/weave-control.ts), read off its live pending calls as passivation reads
 * them (./waits.ts): the built-in waits it understands (a receive with its pattern, a sleep, a
 * join), and the other calls it has in flight (a library call, a library's own wait), named with
 * when they started. It says only what the calls say: nothing for a thread replaying its record
 * or releasing outcomes (its pending calls are not what it waits for then).
 */
import { wakeOf, type WaitCall } from './waits.js'
import type { PassivatedView } from './listing.js'

/** A pending call as read here (src/call.ts). */
interface LiveCall extends WaitCall {
  readonly started: number
  readonly answered: boolean
  readonly abortHook: unknown
  readonly nextPending: LiveCall | null
}

/** The answer to a 'waits' request, as JSON on the wire. */
export interface LiveWaits {
  /** The built-in waits it is in (a receive, a sleep, a join), as a passivated thread's row says them; since: when the latest began. */
  wait: PassivatedView | null
  /** For a join of a thread of another weave: that weave, and whether it is live now (absent when the weave cannot tell). */
  joinsWeave?: { id: string; live?: boolean }
  /** Its other calls in flight (a library call, or a wait not read above), oldest first, `lib.method` and when they started (ms). */
  calls: Array<{ call: string; since: number }>
}

/** What the weave knows of where threads live: for a join of another weave's thread. */
export interface WeaveOf {
  homeOf(id: string): string | null
  isRemote(id: string): boolean
  isLive?: ((id: string) => boolean) | undefined
}

/**
 * What a thread with pending calls `first` (its weft's `pendingCalls()`) waits for now; null when
 * nothing can be said (it waits on nothing, has ended, or replays its record).
 * @example
 * liveWaits(run.weft.pendingCalls(), weave.messages) // { wait: { mailbox: true, filter, due, joins: null, since }, calls: [] }
 */
export function liveWaits(first: LiveCall | 'busy' | null, where: WeaveOf): LiveWaits | null {
  if (first === null || first === 'busy') return null
  const waits: LiveCall[] = []
  const others: LiveCall[] = []
  for (let c: LiveCall | null = first; c !== null; c = c.nextPending) {
    // Not made yet, or answered (its outcome on its way to the thread): not waited on.
    if (c.started === 0 || c.answered) continue
    ;(c.abortHook !== null ? waits : others).push(c)
  }
  let wait: PassivatedView | null = null
  if (waits.length > 0) {
    const wake = wakeOf(waits)
    // Waits it cannot say as one (a library's own wait, two joins): each named as a call.
    if (wake === null) others.push(...waits)
    else wait = { ...wake, since: Math.max(...waits.map((c) => c.started)) }
  }
  if (wait === null && others.length === 0) return null
  others.sort((a, b) => a.started - b.started)
  const out: LiveWaits = { wait, calls: others.map((c) => ({ call: `${c.lib.name}.${c.method}`, since: c.started })) }
  if (wait?.joins != null && where.isRemote(wait.joins)) {
    const id = where.homeOf(wait.joins)
    if (id !== null) out.joinsWeave = where.isLive === undefined ? { id } : { id, live: where.isLive(id) }
  }
  return out
}

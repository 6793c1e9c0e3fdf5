/**
 * What a weft says when a thread's replay diverges from its record (src/weft-replay.ts): the
 * ReplayDivergence names the thread, the call it made, what the record held there, and how to
 * fix it; its detail says where, for `raiment check`.
 */
import type { Call } from './call.js'
import type { WeaveConfig } from './call-context.js'
import { JournalDamaged, RaimentError, ReplayDivergence, type DivergenceDetail } from './errors.js'
import { weaveOf } from './weave-access.js'
import { warnOnce } from './continue/long-record.js'
import { callSite } from './call-site.js'
import { describeKey, nearest, reordered, type Entry, type Replay } from './replay-record.js'

export type Divergence = { what: string; detail: DivergenceDetail }

export function recordedAt(e: Entry): NonNullable<DivergenceDetail['recorded']> {
  return { seq: e.seq, key: e.key, ord: e.ord }
}

/** A request the thread made, as a divergence tells it: with where it was made, where traced (`stacks`). */
export function madeBy(call: Call, stacks: WeakMap<Call, string> | null): DivergenceDetail['made'] {
  const stack = stacks?.get(call)
  return stack === undefined ? { key: call.key, ord: call.ord } : { key: call.key, ord: call.ord, stack }
}

/**
 * The record's next entry, `expected`, was not asked for. `first`: the oldest of the thread's
 * calls not yet settled; `made`: where a call was made.
 */
export function divergenceAt(r: Replay, expected: Entry, first: Call | null, made: (c: Call) => DivergenceDetail['made']): Divergence {
  const got = r.held[0]
  if (got !== undefined || first === null) {
    const asked = got ? `asked for ${describeKey(got.key)} (ordinal ${got.ord})` : 'made no further request'
    return {
      what:
        `the record holds ${describeKey(expected.key)} (ordinal ${expected.ord}) as outcome #${r.next + 1} of ${r.record.lengthText} (seq ${expected.seq}), ` +
        `but the thread ${asked}.${got ? nearest(r, got) : ''}`,
      detail: { kind: got ? 'unexpected' : 'missing', index: r.next, recorded: recordedAt(expected), ...(got ? { made: made(got) } : {}) },
    }
  }
  // The thread asked for nothing the record lacks, yet not for the next recorded request: it
  // waits on calls the record holds later. The calls were reordered (or that one removed).
  const pending: Call[] = []
  for (let c: Call | null = first; c !== null; c = c.nextPending) pending.push(c)
  return { what: reordered(r, expected, pending), detail: { kind: 'reordered', index: r.next, recorded: recordedAt(expected), made: made(pending[0]!) } }
}

/**
 * A divergence at the thread's end, told with what the thread threw: new code that throws where
 * the old did not ends before its record does, and the error is the reason to show.
 */
export function threwBefore(d: Divergence, thrown: unknown): Divergence {
  let threw: string
  try {
    const e = thrown instanceof Error ? thrown : null
    const what = e === null ? String(thrown) : `${e.name}: ${e.message}`
    const at = typeof e?.stack === 'string' ? callSite(e.stack) : null
    threw = `${what}${at !== null ? ` (at ${at})` : ''}`
  } catch {
    // A value with no text (an object without a prototype): the divergence as it is.
    return d
  }
  return { what: `${d.what} It threw ${threw}.`, detail: { ...d.detail, threw } }
}

/** The thread ended, and entry `i` of the record, `e`, was never asked for. */
export function endedBefore(r: Replay, e: Entry, i: number): Divergence {
  return {
    what: `the thread ended, but the record holds ${describeKey(e.key)} (ordinal ${e.ord}) as outcome #${i + 1} of ${r.record.lengthText} (seq ${e.seq}), which it never asked for.`,
    detail: { kind: 'ended', index: i, recorded: recordedAt(e) },
  }
}

/** The error thread `threadId` of `type` stops with; `r`: its replay, to name the last entry matched. */
export function divergenceError(threadId: string, type: string, r: Replay | null, { what, detail }: Divergence): ReplayDivergence {
  const released = r ? r.next : 0
  const last = r && released > 0 ? ` Last matched: ${describeKey(r.record.keyAt(released - 1))}.` : ''
  const why =
    detail.kind === 'beyond'
      ? `Either the thread's code or its inputs changed since the record was made (make sure the thread is ` +
        `deterministic: all time, randomness and I/O through this.<library>), or its code was changed on purpose (a fix) ` +
        `and asks for more than the recorded run did: a replay goes no further than its record, so run the new code live ` +
        `to see the rest (record() with the same params, or raiment fork ID --at SEQ on the journal it ran in).`
      : `The thread's code or its inputs changed since the record was made: make sure the thread is ` +
        `deterministic (all time, randomness and I/O through this.<library>), or record it again.`
  return new ReplayDivergence(`thread ${threadId} (${type}) diverged from its record: ${what}${last} ${why}`, detail)
}

/**
 * Warns, once per thread and weave (the log of `raiment start`), that a thread diverged from its
 * record and goes on live (`onDivergence: 'continue'`): what it held is dropped as it goes.
 */
export function warnContinued(config: WeaveConfig, threadId: string, type: string, { what, detail }: Divergence): void {
  const then =
    detail.kind === 'ended'
      ? 'Its end stands (on-divergence continue): the entries it never asked for are dropped from its record'
      : 'It goes on live (on-divergence continue): the entries its code no longer asks for are dropped from its record, and what it asks for from there is asked live: an effect whose arguments changed is made again, and so are the unchanged calls after it (a send, a charge); a sleep or a receive timeout asked again counts from now'
  warnOnce(config, threadId, new RaimentError('RAIMENT_REPLAY_DIVERGENCE', `thread ${threadId} (${type}) diverged from its record: ${what} ${then}`))
}

/**
 * An entry a replay with `onDivergence: 'continue'` drops (the code no longer makes that call):
 * a receive's take gives its message back to the thread's inbox, under its number, so the code
 * may take it later (dropped with it, it was nowhere).
 */
export function droppedEntry(config: WeaveConfig, threadId: string, e: Entry): void {
  if (e.ok && e.text !== undefined && (e.key.startsWith('mailbox.take:') || e.key.startsWith('mailbox.takeNumber:'))) weaveOf(config).messages.inboxes.putBack(threadId, e.text)
}

/**
 * The thread's function ended mid-replay: a take the replay had not released yet (from `r.next`
 * on) goes back, as one live would (a run replayed up to its end after a crash between the
 * take's commit and the end's, or under `alwaysReplay`). Entries it never asked for were put
 * back as they were dropped.
 */
export function giveBackReplayed(config: WeaveConfig, threadId: string, r: Replay): void {
  for (let i = r.next; r.record.has(i); i++) {
    const e = r.record.at(i)
    if (e === undefined) break // blocks read ahead stopped coming: the weave closed
    if (e.call !== null) droppedEntry(config, threadId, e)
  }
}

/**
 * What a thread whose record cannot be replayed (a row that does not decode, its blocks lost, a
 * damaged page) fails with: it alone. Null for any other error (an I/O error, the database
 * busy, a bug): not the record's, so not a reason to end the thread for good.
 */
export function unreplayable(file: string | null, threadId: string, e: unknown): RaimentError | null {
  if (e instanceof RaimentError) return e
  const code = (e as { code?: unknown }).code
  const damaged = e instanceof SyntaxError || (typeof code === 'string' && code.startsWith('SQLITE_CORRUPT'))
  return damaged ? new JournalDamaged(file, `thread ${threadId}'s record could not be replayed: ${(e as Error).message}`, e) : null
}

/**
 * The rest of a replay as its thread's function ends: an entry it never asked for is dropped
 * (`drop`, when `continuing` live, as the replay's pump does, so the record replays with the code
 * that made it) or is a divergence (returned; nothing after it is dropped).
 */
export function replayLeft(r: Replay, continuing: boolean, drop: (e: Entry, ended: () => Divergence) => void): Divergence | null {
  for (let i = r.next; r.record.has(i); i++) {
    const e = r.record.at(i)
    if (e === undefined) break // blocks read ahead stopped coming: the weave closed
    if (e.call !== null) continue
    if (!continuing) return endedBefore(r, e, i)
    drop(e, () => endedBefore(r, e, i))
  }
  return null
}

/**
 * `onDivergence: 'wait'` (`raiment start --on-divergence wait`): a thread whose record its code
 * does not replay as it resumes is not failed. A user trial's saga, its file changed under it,
 * failed for good at the next start and never ran its compensation; Temporal keeps such a
 * workflow blocked until fixed code is deployed. Here it waits as a thread waiting for its type
 * does (src/weave-parked.ts), until code that replays its record is loaded.
 *
 * Invariants:
 * - A replay makes no live call before its whole record has replayed (src/weft-replay.ts), so a
 *   thread that diverges has recorded nothing: it waits with its record, status, inbox and rows
 *   of calls in flight as they were. Its diverged weft is stopped (a call its function makes
 *   after, a compensation in a catch, rejects, unmade) and let go of.
 * - It waits as a parked run (meta `parked:<id>` = `{ since, diverges }`): joined, killed,
 *   cancelled (kept for its first live call), sent to; never passivated nor checked as running.
 * - A reload of its type's file checks its record strictly against the new code
 *   (src/check/replay-check.ts) and resumes it, by replay, only if it replays (else its row says
 *   where it diverges now, `since` kept); a start resumes it
 *   by replay, and it waits again if it diverges again. A crash while it waits changes nothing.
 * - The weave warns once per thread (RAIMENT_REPLAY_DIVERGENCE), saying what to do.
 */
import type { WeaveConfig } from './call-context.js'
import { RaimentError, type DivergenceDetail, type ReplayDivergence } from './errors.js'
import { warnOnce } from './continue/long-record.js'
import { describeKey } from './replay-record.js'
import { replayParts } from './libraries.js'
import { checkThread, type ShownCall, type Verdict } from './check/replay-check.js'
import { ownTurn } from './group-commit.js'
import { marksIn } from './in-flight.js'
import type { Run, WeaveHost } from './weave-types.js'
import type { ParkedRuns } from './weave-parked.js'

/** Where a divergence is, in a few words: `diverges at entry 1 (seq 1): the code calls … where the record holds …`. */
export function divergesAt(d: DivergenceDetail | undefined): string {
  if (d === undefined) return 'diverges from its record'
  const seq = d.recorded !== undefined && d.recorded.seq >= 0 ? ` (seq ${d.recorded.seq})` : ''
  const held = d.recorded === undefined ? '' : describeKey(d.recorded.key, 80)
  const at = `diverges at entry ${d.index}${seq}`
  if (d.kind === 'unexpected' && d.made !== undefined) return `${at}: the code calls ${describeKey(d.made.key, 80)}${held !== '' ? ` where the record holds ${held}` : ''}`
  if (d.kind === 'ended') return `${at}: the code ends where the record holds ${held}${d.threw !== undefined ? ` (it threw ${d.threw})` : ''}`
  return `${at}: the code does not ask for ${held}, which the record holds there`
}

/** Where a strict replay check found a divergence, as `divergesAt` says it of a replay's. */
function checkedDivergesAt(v: Extract<Verdict, { verdict: 'diverges' }>): string {
  const seq = v.seq !== null && v.seq >= 0 ? ` (seq ${v.seq})` : ''
  const held = v.recorded === null ? '' : shownCall(v.recorded)
  const at = `diverges at entry ${v.at}${seq}`
  if (v.made !== null) return `${at}: the code calls ${shownCall(v.made)}${held !== '' ? ` where the record holds ${held}` : ''}`
  if (v.kind === 'ended') return `${at}: the code ends where the record holds ${held}${v.threw !== undefined ? ` (it threw ${v.threw})` : ''}`
  return held !== '' ? `${at}: the code does not ask for ${held}, which the record holds there` : `${at}: ${v.message}`
}

/** A checked call as `describeKey` shows a recorded one: `lib.method(args)`, its arguments cut at 80 characters. */
function shownCall(c: ShownCall): string {
  let a: string
  try {
    a = JSON.stringify(c.args) ?? String(c.args)
  } catch {
    a = String(c.args)
  }
  if (a.startsWith('[')) a = a.slice(1, -1)
  if (a.length > 80) a = a.slice(0, 80) + '…'
  return `${c.call}(${a})`
}

/** Run `run` diverged from its record (`err`) as it replayed: it waits for code that replays it, and the weave is warned once. */
export function waitForCode(parked: ParkedRuns, config: WeaveConfig, run: Run, err: ReplayDivergence): void {
  parked.diverged(run, divergesAt(err.detail))
  warnOnce(
    config,
    run.id,
    new RaimentError(
      'RAIMENT_REPLAY_DIVERGENCE',
      `${err.message} It waits (on-divergence wait), nothing recorded, its messages kept in its inbox, until code that replays its record is loaded: ` +
        `fix the code (a patch.patched branch for the old path; raiment check says where) and reload it (raiment reload) or restart; ` +
        `or re-run it from before the change (raiment fork ${run.id} --at SEQ), end it (raiment kill ${run.id}), or restart with --on-divergence continue to run it on live from there.`,
    ),
  )
}

/**
 * A reload loaded `type` from `file`: which of its threads waiting for code replay their record
 * under it (a strict replay, as `raiment check`'s), by id; `stillWaits` is told of the others, with where,
 * and their `parked:` rows say where they diverge now (since when they wait kept).
 */
export async function replayingNow(host: WeaveHost, type: string, file: string, ioLibs: string | false, stillWaits: (id: string, diverges: string) => void): Promise<Set<string>> {
  const ok = new Set<string>()
  const ids = host.waitingForCode(type)
  const t = host.type(type)
  if (ids.length === 0 || t === undefined) return ok
  const parts = await replayParts(ioLibs)
  const journal = host.weave.journal
  for (const id of ids) {
    await ownTurn()
    journal.flushNow()
    const row = journal.thread(id)
    if (row === undefined || host.run(id)?.ended !== false) continue
    const entries = host.entries(id)
    const r = await checkThread(t, { id, type, status: 'running', params: row.params, entries: () => entries, inFlight: marksIn(journal, id) }, parts, file)
    const v = r.verdict
    if (v.verdict === 'compatible') ok.add(id)
    else {
      const where = v.verdict === 'diverges' ? checkedDivergesAt(v) : v.message
      host.stillDiverges(id, where)
      stillWaits(id, where)
    }
  }
  return ok
}

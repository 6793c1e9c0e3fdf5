/**
 * Reloads from the command line: `raiment reload` asks the weave running on the journal to load
 * its changed thread files (src/check/reload.ts) and prints what it did; `raiment start` reloads
 * on SIGHUP and, with --watch, when a thread file changes, and logs each reload's report.
 */
import { firstFew } from '../first-few.js'
import type { ReloadReport } from '../check/reload.js'
import { decodeError } from '../error-records.js'
import { RaimentError } from '../errors.js'
import { openExisting, runningOwner, say, type DbOptions } from './common.js'
import { askTimeout, askWeave, busyHint, waitText, type AskOptions } from './ask-weave.js'
import { existsSync } from 'node:fs'
import type { Weave } from '../weave.js'
import { displayPath, errorLine, plural } from './common.js'
import type { StartOptions } from './weave-commands.js'
import { weaveLog } from './weave-log.js'
import { watchTree } from './watch-tree.js'

export async function reloadCommand(o: DbOptions & AskOptions): Promise<number> {
  const waitMs = askTimeout(o)
  const journal = openExisting(o.db)
  try {
    if (runningOwner(journal) === null) {
      throw new RaimentError('RAIMENT_NO_WEAVE', `no weave runs on ${o.db}, so there is nothing to reload: a weave loads the thread files when it starts (raiment start --db ${o.db})`)
    }
    const reply = await askWeave(journal, 'reload', '', null, true, { waitMs })
    if (reply === null) throw new RaimentError('RAIMENT_RELOAD_TIMEOUT', `the weave on ${o.db} did not take the reload within ${waitText(waitMs)}; nothing was reloaded. ${busyHint(waitMs)}`)
    const answer = JSON.parse(reply) as { report?: ReloadReport; refused?: string }
    if (answer.refused !== undefined) throw decodeError(answer.refused)
    const report = answer.report!
    if (report.types.length === 0) say('no thread file changed')
    for (const t of report.types) for (const l of reloadLines(t)) say(l)
    // An older weave's report has no oldCode.
    const old = oldCodeLine(report.oldCode ?? [])
    if (old !== null) say(old)
    // An older weave's report has no waitingForCode: those this reload found still waiting.
    const waiting = waitingForCodeLine(report.waitingForCode ?? report.types.flatMap((t) => (t.waiting ?? []).map((w) => w.id)))
    if (waiting !== null) say(waiting)
    return report.types.some((t) => t.error !== undefined) ? 1 : old !== null || waiting !== null ? 2 : 0
  } finally {
    journal.close()
  }
}

/** Prints each reload's report of `weave` (on stdout, as the other lines of what it does). */
export function logReloads(weave: Weave): void {
  weave.on('reload', (r) => {
    // A failed reload changed nothing.
    for (const t of r.types) for (const l of reloadLines(t)) weaveLog.info(l, { event: 'reload', type: t.type, ...(t.error !== undefined ? { code: t.error.code } : {}) })
    const old = oldCodeLine(r.oldCode)
    if (old !== null) weaveLog.warn(old, { event: 'reload-old-code', threads: r.oldCode })
    const waiting = waitingForCodeLine(r.waitingForCode)
    if (waiting !== null) weaveLog.warn(waiting, { event: 'reload-waiting-for-code', threads: r.waitingForCode })
  })
}

/**
 * Reloads for `raiment start`: SIGHUP reloads the weaves this process runs (its own and, when
 * replicated, those it took over), and with --watch a change under the threads directory does
 * (after 200 ms without another), a file replaced by a rename included. Returns the stop.
 */
export function reloadTriggers(weaves: () => readonly Weave[], o: StartOptions): () => void {
  const again = (): void => {
    for (const weave of weaves()) void weave.reload().catch((e: unknown) => weaveLog.error(errorLine(e), { event: 'reload' }))
  }
  process.on('SIGHUP', again)
  let stopWatch: (() => void) | undefined
  let timer: NodeJS.Timeout | undefined
  if (o.watch === true && existsSync(o.threads)) {
    stopWatch = watchTree(o.threads, () => {
      clearTimeout(timer)
      timer = setTimeout(again, 200)
    })
  }
  return () => {
    process.off('SIGHUP', again)
    clearTimeout(timer)
    stopWatch?.()
  }
}

/**
 * What a reload's report says of the threads that run old code after it (its `oldCode`), in one
 * line that says what a restart does to them and what to do; null for none.
 */
export function oldCodeLine(ids: readonly string[]): string | null {
  if (ids.length === 0) return null
  const one = ids.length === 1
  return (
    `warning: ${plural(ids.length, 'thread')} ${one ? 'runs' : 'run'} old code a reload kept ${one ? 'it' : 'them'} on (${firstFew(ids)}), ${one ? 'its' : 'their'} record not replaying under the file on disk: ` +
    `a restart or a crash resumes ${one ? 'it' : 'them'} under that file, where ${one ? 'it diverges and fails' : 'they diverge and fail'} (or ${one ? 'waits' : 'wait'} for code that replays ${one ? 'it' : 'them'}, under --on-divergence wait). ` +
    `Before a restart: make the new code replay ${one ? 'its record' : 'their records'} (patch.patched; raiment check says where) and reload, or let ${one ? 'it' : 'them'} finish; or raiment kill ${one ? 'it' : 'them'}`
  )
}

/**
 * What a reload's report says of the threads that still wait for code that replays their record
 * after it (its `waitingForCode`, on-divergence wait), in one line that says what to do; null for none.
 */
export function waitingForCodeLine(ids: readonly string[]): string | null {
  if (ids.length === 0) return null
  const one = ids.length === 1
  const first = ids[0]!
  return (
    `warning: ${plural(ids.length, 'thread')} still ${one ? 'waits' : 'wait'} for code that replays ${one ? 'its record' : 'their records'} (${firstFew(ids)}; on-divergence wait), nothing recorded: ` +
    `fix the code (a patch.patched branch for the old path; raiment check says where) and reload it; or re-run ${one ? 'it' : 'one'} from before the change (raiment fork ${first} --at SEQ), ` +
    `end ${one ? 'it' : 'one'} (raiment kill ${first}), or restart with --on-divergence continue to run ${one ? 'it' : 'them'} on live from there`
  )
}

/** What a reload did to one thread type, as `start` prints it. */
export function reloadLines(t: ReloadReport['types'][number]): string[] {
  if (t.error !== undefined) return [`reload of ${displayPath(t.file)} failed, the running code is unchanged: ${t.error.code}: ${t.error.message}`]
  const lines = [`reloaded ${t.type} (${displayPath(t.file)}): ${plural(t.moved.length, 'running thread')} moved to the new code, ${t.kept.length} kept on the old`]
  for (const id of t.moved) lines.push(`  moved ${id}`)
  for (const k of t.kept) lines.push(`  kept ${k.id}: ${k.why}`)
  if (t.resumed !== undefined) lines.push(`  ${plural(t.resumed.length, 'thread')} that waited for the type resumed: ${firstFew(t.resumed)}`)
  if (t.replayed !== undefined) lines.push(`  ${plural(t.replayed.length, 'thread')} that waited for code that replays ${t.replayed.length === 1 ? 'it' : 'them'} resumed: ${firstFew(t.replayed)}`)
  for (const w of t.waiting ?? []) lines.push(`  still waits ${w.id}: ${w.why}`)
  return lines
}

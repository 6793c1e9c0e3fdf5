/**
 * `raiment check`: replays every unfinished thread of a journal under the thread types on disk
 * now and prints, per type, how many still replay; per thread that does not, where and why.
 * Exit 1 when any thread diverges or does not load. Read-only: safe beside a running weave.
 */
import { checkJournal, type CheckReport, type Verdict } from '../check/check.js'
import { statSync } from 'node:fs'
import { InvalidArgument, RaimentError } from '../errors.js'
import { jsonValue } from './records.js'
import { plural, say, short, table, type DbOptions } from './common.js'

export interface CheckCommandOptions extends DbOptions {
  threads: string
  ioLibs: string
  ended?: string
  json?: boolean
}

/** How many threads that do not replay are shown one by one (--json has them all). */
const SHOWN = 20

export async function check(o: CheckCommandOptions): Promise<number> {
  const ended = o.ended === undefined ? undefined : parseEnded(o.ended)
  // Refused whatever the journal holds: a mistyped directory checks nothing, and a deploy gate
  // (`raiment check … || exit 1`) must not pass because no thread happened to be unfinished.
  if (statSync(o.threads, { throwIfNoEntry: false })?.isDirectory() !== true) {
    throw new RaimentError('RAIMENT_NO_THREADS_DIR', `there is no directory '${o.threads}': raiment check replays the journal's threads under the thread types of a directory; pass --threads DIR`)
  }
  const r = await checkJournal({ db: o.db, threads: o.threads, ioLibs: o.ioLibs, ...(ended !== undefined ? { ended } : {}) })
  if (o.json) say(JSON.stringify(reportJson(r)))
  else printReport(r, o)
  return r.ok ? 0 : 1
}

function parseEnded(text: string): number {
  const n = Number(text)
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(n)) throw new InvalidArgument(`--ended must be a whole number from 0 up, got '${text}'`)
  return n
}

function printReport(r: CheckReport, o: CheckCommandOptions): void {
  const n = r.threads.length
  const bad = r.threads.filter((v) => v.verdict !== 'compatible')
  say(`checked ${plural(n, 'thread')} of ${o.db} against ${o.threads}/: ${n - bad.length} compatible, ${bad.length} not`)
  if (r.types.length > 0) {
    say('')
    const rows = r.types.map((t) => [t.type, String(t.compatible), String(t.diverges), String(t.doesNotLoad)])
    for (const l of table(['TYPE', 'COMPATIBLE', 'DIVERGES', 'DOES NOT LOAD'], rows)) say(l)
  }
  for (const v of bad.slice(0, SHOWN)) {
    say('')
    for (const l of verdictLines(v)) say(l)
  }
  if (bad.length > SHOWN) say(`… and ${bad.length - SHOWN} more (--json lists every thread)`)
  if (r.unavailable.length > 0) {
    say('')
    for (const u of r.unavailable) say(`thread type ${u.type} does not load: ${u.code}: ${u.message}`)
  }
  // Raiment's own (its built-in thread types'): not the user's to keep or delete (--json has them).
  const changes = r.changes.filter((c) => !c.change.startsWith('raiment/'))
  if (changes.length > 0) {
    say('')
    say('changes (patch.patched):')
    for (const c of changes) {
      say(
        c.oldPath.length > 0
          ? `  ${c.change}: ${plural(c.oldPath.length, 'unfinished thread')} ${c.oldPath.length === 1 ? 'still takes' : 'still take'} the old path (${short(c.oldPath.join(', '), 80)}): keep it`
          : `  ${c.change}: no unfinished thread takes the old path: it can be deleted`,
      )
    }
  }
}

/** The lines that say why one thread does not replay. */
export function verdictLines(v: Verdict): string[] {
  const head = `${v.id} (${v.type}, ${v.status})`
  if (v.verdict === 'compatible') return [`${head} compatible`]
  if (v.verdict === 'does-not-load') return [`${head} does not load: ${v.code}: ${v.message}`]
  if (v.kind === 'stuck') return [`${head} diverges: ${v.message}`]
  // Seq -1: a call in flight when its weave stopped, never answered (src/in-flight.ts).
  const inFlight = v.seq === -1
  const lines = [`${head} diverges at entry ${v.at}${v.seq !== null && !inFlight ? ` (seq ${v.seq})` : ''}: ${inFlight ? IN_FLIGHT : KIND[v.kind]}`]
  if (v.recorded !== null) lines.push(`  ${inFlight ? 'in flight' : 'recorded'}: ${callText(v.recorded.call, v.recorded.args)}`)
  if (v.made !== null) lines.push(`  made:     ${inFlight ? ' ' : ''}${callText(v.made.call, v.made.args)}${v.where !== null ? `   at ${v.where}` : ''}`)
  for (const d of v.diff) lines.push(`  ${d}`)
  if (v.threw !== undefined) lines.push(`  threw:    ${v.threw}`)
  return lines
}

const IN_FLIGHT = 'the code makes another call where this one was in flight when its weave stopped (it may have been made: its outcome was never recorded)'

const KIND: Record<string, string> = {
  unexpected: 'the code makes another call where the record holds this one',
  reordered: 'the code waits on a call the record holds later (calls reordered or one removed)',
  missing: 'the code makes no further call where the record holds this one',
  ended: 'the code ends (returns or throws) where the record holds more calls',
  beyond: 'the thread had ended, and the code makes a call after the end of its record',
}

function callText(call: string, args: unknown): string {
  const list = Array.isArray(args) ? args.map((a) => short(typeof a === 'string' ? JSON.stringify(a) : a, 60)).join(', ') : short(args, 120)
  return `${call}(${list})`
}

function reportJson(r: CheckReport): Record<string, unknown> {
  return {
    db: r.db,
    ok: r.ok,
    types: r.types,
    changes: r.changes,
    unavailable: r.unavailable,
    threads: r.threads.map((v) =>
      v.verdict === 'diverges'
        ? {
            ...v,
            recorded: v.recorded === null ? null : { ...v.recorded, args: jsonValue(v.recorded.args) },
            made: v.made === null ? null : { ...v.made, args: jsonValue(v.made.args) },
          }
        : v,
    ),
  }
}

/**
 * `raiment fork ID [--at SEQ] [--set SEQ=JSON ...]`: a new thread that replays ID's record up to
 * SEQ, with the given outcomes replaced, then runs live (src/check/fork.ts). With a weave running
 * on the journal, that weave forks it (and runs it); with none, the fork is written here and
 * starts when a weave opens the journal. The edits are checked before anything is written.
 */
import { FLAG_NAMES, forkEntries, Forks, type RecordEdits } from '../check/fork.js'
import { decodeError } from '../error-records.js'
import { InvalidArgument, RaimentError, UnknownThread } from '../errors.js'
import { note, openExisting, say, threadType, withOwner, type ProjectOptions } from './common.js'
import { checkThread } from '../check/replay-check.js'
import type { EntryRow, ThreadRow } from '../journal.js'
import { replayParts } from '../libraries.js'
import { rowEntry } from '../replay-joined.js'
import type { AnyThreadType } from '../thread.js'
import { verdictLines } from './check.js'
import { askTimeout, askWeave, busyHint, waitText, type AskOptions } from './ask-weave.js'

export interface ForkCommandOptions extends ProjectOptions, AskOptions {
  at?: string
  set?: string[]
}

/** `--set SEQ=JSON`, each: the seq and the parsed value. */
export function parseSets(list: readonly string[]): Map<number, unknown> {
  const out = new Map<number, unknown>()
  for (const item of list) {
    const eq = item.indexOf('=')
    const seqText = eq < 0 ? '' : item.slice(0, eq)
    if (eq < 0 || !/^\d+$/.test(seqText.trim())) {
      throw new InvalidArgument(`--set must be SEQ=JSON (the seq of a recorded entry, as raiment show lists it, and its new outcome as JSON), got ${JSON.stringify(item)}; e.g. --set 3='{"stock":5}'`)
    }
    const seq = Number(seqText)
    if (out.has(seq)) throw new InvalidArgument(`--set names entry seq ${seq} twice`)
    try {
      out.set(seq, JSON.parse(item.slice(eq + 1)) as unknown)
    } catch (e) {
      throw new InvalidArgument(`--set ${seq}=…: the value is not valid JSON (${(e as Error).message}): ${JSON.stringify(item.slice(eq + 1))}; quote it for the shell, e.g. --set ${seq}='"text"'`)
    }
  }
  return out
}

function parseAt(text: string | undefined): number | undefined {
  if (text === undefined) return undefined
  if (!/^\d+$/.test(text.trim())) throw new InvalidArgument(`--at must be the seq of a recorded entry (a whole number, see raiment show), got '${text}'`)
  return Number(text)
}

/**
 * The fork's record must replay under the code on disk: one that does not would fail at once (a
 * user trial was told `forked`, then found the fork failed with ReplayDivergence).
 * @throws RaimentError `RAIMENT_FORK_DIVERGES`
 */
async function refuseDiverging(type: AnyThreadType, row: ThreadRow, entries: readonly EntryRow[], o: ForkCommandOptions): Promise<void> {
  const { verdict } = await checkThread(type, { id: row.id, type: row.type, status: 'running', params: row.params, entries: () => entries.map(rowEntry) }, await replayParts(o.ioLibs))
  if (verdict.verdict === 'compatible') return
  throw new RaimentError(
    'RAIMENT_FORK_DIVERGES',
    `the fork's record (${entriesText(entries.length)} of ${row.id}${o.at !== undefined ? `, before seq ${o.at}` : ''}) does not replay under the code in ${o.threads}/: ${verdictLines(verdict).join(' ')}. Nothing was forked: fork from an earlier --at, or change the code (raiment check shows what differs)`,
  )
}

function entriesText(n: number): string {
  return `${n} ${n === 1 ? 'entry' : 'entries'}`
}

export async function fork(id: string, o: ForkCommandOptions): Promise<number> {
  const set = parseSets(o.set ?? [])
  const at = parseAt(o.at)
  const waitMs = askTimeout(o)
  const edits: RecordEdits = { ...(at !== undefined ? { at } : {}), set }
  const journal = openExisting(o.db)
  try {
    const row = journal.thread(id)
    if (row === undefined) throw new UnknownThread(id)
    // Checked here first, whoever writes the fork: a wrong edit is refused before anything is written.
    const record = journal.entriesNow(id)
    const entries = forkEntries(record, id, edits, null, FLAG_NAMES)
    const owner = withOwner(journal, (owner) => owner)
    // Beside a running weave (its code, wherever it is) a type not found here is not checked here.
    const type = await threadType(o.threads, row.type).catch((e: unknown) => {
      if (owner === null) throw e
      return null
    })
    if (type !== null) await refuseDiverging(type, row, entries, o)
    if (owner === null) {
      const forkId = journal.nextThreadId(1)
      const wrote = withOwner(journal, (now) => {
        if (now !== null) return false
        new Forks(journal).write(forkId, row, forkEntries(record, id, edits, forkId, FLAG_NAMES))
        return true
      })
      if (wrote) {
        say(forkId)
        note(`forked ${id} as ${forkId} (${entriesText(entries.length)} to replay); no weave runs on ${o.db}: it starts when one does (raiment start --db ${o.db})`)
        return 0
      }
    }
    const reply = await askWeave(journal, 'fork', id, JSON.stringify({ ...(at !== undefined ? { at } : {}), set: Object.fromEntries(set) }), true, { waitMs })
    if (reply === null) {
      throw new RaimentError('RAIMENT_FORK_TIMEOUT', `the weave on ${o.db} did not take the fork within ${waitText(waitMs)}; nothing was forked. ${busyHint(waitMs)}`)
    }
    const answer = JSON.parse(reply) as { forked?: string; refused?: string }
    if (answer.refused !== undefined) throw decodeError(answer.refused)
    say(answer.forked ?? '')
    note(`forked ${id} as ${answer.forked} (${entriesText(entries.length)} to replay) on the weave running on ${o.db}`)
    return 0
  } finally {
    journal.close()
  }
}

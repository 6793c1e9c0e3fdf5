/**
 * `raiment replay FILE`: re-runs a dump strictly (no library called) with the thread type it
 * names, and tells whether the run reproduces what was recorded.
 */
import { isDeepStrictEqual } from 'node:util'
import { readDump } from '../dump.js'
import { errorToRecord, type ErrorRecord } from '../error-records.js'
import { ReplayDivergence } from '../errors.js'
import { replay as replayDump } from '../testing.js'
import { releasedOutcomes } from '../weft.js'
import { errorText, plural, say, threadType, toText } from './common.js'
import { replayLine, showProgress } from './progress.js'

export interface ReplayCommandOptions {
  threads: string
  ioLibs: string
}

/**
 * Exit 0 when the replay ends as the recording did (same result, or same error); 1 for a
 * divergence or a different end.
 */
export async function replayCommand(file: string, o: ReplayCommandOptions): Promise<number> {
  const d = readDump(file)
  const type = await threadType(o.threads, d.thread.type)
  const head = `replayed ${d.thread.id} (${d.thread.type}) from ${file}: ${plural(d.entries.length, 'recorded call')}`
  let run
  // On a terminal, a long replay shows how far it has come (stderr), then the line goes.
  const base = releasedOutcomes()
  const shown = showProgress((ms) => replayLine(releasedOutcomes() - base, d.entries.length, ms), () => false)
  try {
    run = await replayDump(type, file, { strict: true, ioLibs: o.ioLibs })
  } catch (e) {
    shown.stop()
    if (!(e instanceof ReplayDivergence)) throw e
    if ((d.thread.status === 'running' || d.thread.status === 'pending') && endOfRecord(e)) {
      say(`${head}; it made every recorded call, then asked for one the record does not hold yet:`)
      say(/holds no outcome for (.*?\(ordinal \d+\))/.exec(e.message)?.[1] ?? e.message)
      say(`which is where the record ends: the thread was still ${d.thread.status} when it was dumped`)
      return 0
    }
    say(`${head}; it diverged from the record:`)
    say(e.message)
    return 1
  }
  shown.stop()
  const recorded = d.thread.status
  if (run.status === 'done') {
    say(`${head}; it returned:`)
    say(toText(run.result))
    if (recorded === 'done') {
      const same = isDeepStrictEqual(run.result, d.thread.result)
      say(same ? 'which equals the recorded result' : `which differs from the recorded result ${toText(d.thread.result)}`)
      return same ? 0 : 1
    }
    say(recordedEnd(recorded, d.thread.error))
    return recorded === 'failed' ? 1 : 0
  }
  const err = run.error!
  say(`${head}; it threw:`)
  say(errorText(err))
  if (recorded === 'failed' && d.thread.error) {
    const same = sameError(errorToRecord(err), d.thread.error)
    say(same ? 'which is the recorded error' : `which differs from the recorded error ${errorText(d.thread.error)}`)
    return same ? 0 : 1
  }
  say(recordedEnd(recorded, d.thread.error))
  return recorded === 'done' ? 1 : 0
}

/**
 * The replay went through every recorded outcome and then asked for more: for a thread dumped
 * while it ran, that is the end of its record, not a change of code. (The weft words this case
 * alone as "the dump holds no outcome for …".)
 */
function endOfRecord(e: ReplayDivergence): boolean {
  return e.message.includes('the dump holds no outcome for')
}

function recordedEnd(status: string, error: ErrorRecord | undefined): string {
  if (status === 'done') return 'but the recording returned a result'
  if (status === 'failed') return `but the recording failed with ${errorText(error ?? {})}`
  return `the recording had not ended (status ${status})`
}

function sameError(a: ErrorRecord, b: ErrorRecord): boolean {
  return a.name === b.name && a.message === b.message && isDeepStrictEqual(a.fields, b.fields)
}

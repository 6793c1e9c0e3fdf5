/**
 * `raiment replay FILE`: re-runs a dump strictly (no library called) with the thread type it
 * names, and tells whether the run reproduces what was recorded.
 */
import { isDeepStrictEqual } from 'node:util'
import { readDump } from '../dump.js'
import { errorToRecord, type ErrorRecord } from '../encoding.js'
import { ReplayDivergence } from '../errors.js'
import { replay as replayDump } from '../testing.js'
import { errorText, say, threadType, toText } from './common.js'

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
  const head = `replayed ${d.thread.id} (${d.thread.type}) from ${file}: ${d.entries.length} recorded calls`
  let run
  try {
    run = await replayDump(type, file, { strict: true, ioLibs: o.ioLibs })
  } catch (e) {
    if (!(e instanceof ReplayDivergence)) throw e
    say(`${head}; it diverged from the record:`)
    say(e.message)
    return 1
  }
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

function recordedEnd(status: string, error: ErrorRecord | undefined): string {
  if (status === 'done') return 'but the recording returned a result'
  if (status === 'failed') return `but the recording failed with ${errorText(error ?? {})}`
  return `the recording had not ended (status ${status})`
}

function sameError(a: ErrorRecord, b: ErrorRecord): boolean {
  return a.name === b.name && a.message === b.message && isDeepStrictEqual(a.fields, b.fields)
}

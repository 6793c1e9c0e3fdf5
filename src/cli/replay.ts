/**
 * `raiment replay FILE`: re-runs a dump strictly (no library called) with the thread type it
 * names, and tells whether the run reproduces what was recorded.
 */
import { isDeepStrictEqual } from 'node:util'
import { dumpTypeName, readDump } from '../dump.js'
import { replayParts } from '../libraries.js'
import { endedByItself } from '../record-end.js'
import { decodeValue, encodeValue, setOwn } from '../encoding.js'
import { encodeError, type ErrorRecord } from '../error-records.js'
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
  // The type and the libraries first: they register the classes the dump's values may be of.
  const type = await threadType(
    o.threads,
    dumpTypeName(file) ?? readDump(file).thread.type,
    `The dump names it (its thread's type): replay it where that type's module is, with --threads DIR (${o.threads} now), or with the type's name in the dump as the module has it.`,
  )
  await replayParts(o.ioLibs)
  const d = readDump(file)
  const head = `replayed ${d.thread.id} (${d.thread.type}) from ${file}: ${plural(d.entries.length, 'recorded call')}`
  let run
  // On a terminal, a long replay shows how far it has come (stderr), then the line goes.
  const base = releasedOutcomes()
  const shown = showProgress((ms) => replayLine(releasedOutcomes() - base, d.entries.length, ms), () => false)
  // A thread that waits on what no call answers (a timer, a promise of its own) leaves nothing
  // for the event loop to do: the process would end, exit code 13, saying nothing.
  let idle: () => void = () => {}
  const stuck = new Promise<'stuck'>((resolve) => (idle = () => resolve('stuck')))
  process.once('beforeExit', idle)
  try {
    run = await Promise.race([replayDump(type, file, { strict: true, ioLibs: o.ioLibs }), stuck])
  } catch (e) {
    shown.stop()
    if (!(e instanceof ReplayDivergence)) throw e
    say(`${head}; it diverged from the record:`)
    say(e.message)
    return 1
  } finally {
    process.off('beforeExit', idle)
  }
  shown.stop()
  if (run === 'stuck') {
    say(`${head}; it stopped, waiting on something that is not a call through this.<library> (a timer, a promise of its own), so its record cannot say how it goes on: make it deterministic (raiment check calls it stuck too)`)
    return 1
  }
  const recorded = d.thread.status
  if (run.status === 'unfinished') {
    say(`${head}; it made every recorded call, then asked for one the record does not hold yet:`)
    say(run.next ?? '(a request)')
    say(`which is where the record ends: ${whereItEnds(recorded, d.thread.error)}`)
    return 0
  }
  if (run.status === 'done') {
    say(`${head}; it returned:`)
    say(toText(run.result))
    if (recorded === 'done') {
      const same = sameValue(run.result, d.thread.result)
      say(same ? 'which equals the recorded result' : `which differs from the recorded result ${toText(d.thread.result)}`)
      return same ? 0 : 1
    }
    say(recordedEnd(recorded, d.thread.error))
    return recorded === 'failed' ? 1 : 0
  }
  if (run.status === 'continued') {
    // The record ends where the thread continued as new: dumped after its last outcome was
    // committed and before its switch to the new run was (the switch starts a new record).
    say(`${head}; it continued as new (threads.continueAsNew) with params:`)
    say(toText(run.continued))
    if (endedByItself(recorded, d.thread.error)) {
      say(recordedEnd(recorded, d.thread.error))
      return 1
    }
    say(`which is where the record ends: ${whereItEnds(recorded, d.thread.error)}, before the switch to the new run was recorded`)
    return 0
  }
  const err = run.error
  say(`${head}; it threw:`)
  say(errorText(err))
  if (recorded === 'failed' && d.thread.error) {
    const same = sameError(err, d.thread.error)
    say(same ? 'which is the recorded error' : `which differs from the recorded error ${errorText(d.thread.error)}`)
    return same ? 0 : 1
  }
  say(recordedEnd(recorded, d.thread.error))
  return recorded === 'done' ? 1 : 0
}

/** Why the record of a thread that had not ended by itself stops where it does (src/record-end.ts). */
function whereItEnds(status: string, error: ErrorRecord | undefined): string {
  if (status === 'failed') return `its weave failed the thread there, with ${errorText(error ?? {})}`
  if (status === 'killed') return 'the thread was killed there'
  if (status === 'moved') return 'the thread moved to another weave there, whose journal holds the rest of its record'
  return `the thread was still ${status} when it was dumped`
}

function recordedEnd(status: string, error: ErrorRecord | undefined): string {
  if (status === 'done') return 'but the recording returned a result'
  if (status === 'failed') return `but the recording failed with ${errorText(error ?? {})}`
  if (status === 'killed' || status === 'moved') return `the recording had not ended: the thread was ${status} before it did`
  return `the recording had not ended (status ${status})`
}

/**
 * Whether a result equals the recorded one as the journal holds values: the live one as the
 * record gives it back (an object without a prototype, an array with holes, an Error in a value
 * come back as what encodes the same), deeply equal (key order aside), or encoded the same (an
 * invalid Date, which is not deeply equal to itself).
 */
function sameValue(live: unknown, recorded: unknown): boolean {
  try {
    const back = decodeValue(encodeValue(live))
    return isDeepStrictEqual(back, recorded) || encodeValue(keysSorted(back)) === encodeValue(keysSorted(recorded))
  } catch {
    return isDeepStrictEqual(live, recorded)
  }
}

/** `v` with the keys of its plain objects in order, at every depth: their encodings then compare key order aside. */
function keysSorted(v: unknown): unknown {
  if (Array.isArray(v)) return Array.from(v, keysSorted)
  if (v === null || typeof v !== 'object') return v
  const proto = Object.getPrototypeOf(v) as unknown
  if (proto !== Object.prototype && proto !== null) return v
  const o: Record<string, unknown> = {}
  for (const k of Object.keys(v).sort()) setOwn(o, k, keysSorted((v as Record<string, unknown>)[k]))
  return o
}

/**
 * Whether the error a replay threw is the recorded one: compared as the journal records it (its
 * record encoded and decoded: the error met again among its own fields is its name and message, a
 * field that is an object what its record gives back). A field that is a function is recorded as
 * its source text, which is the code's as loaded then (a loader may print it otherwise: `()=>2`
 * for `() => 2`): it is the same where the record holds a text there.
 */
function sameError(live: Error, recorded: ErrorRecord): boolean {
  const a = decodeValue(encodeError(live)) as ErrorRecord
  const fields = recorded.fields ?? {}
  for (const k of Object.keys(a.fields)) {
    if (typeof (live as unknown as Record<string, unknown>)[k] === 'function' && typeof fields[k] === 'string') setOwn(a.fields, k, fields[k])
  }
  return a.name === recorded.name && a.message === recorded.message && sameValue(a.fields, fields)
}

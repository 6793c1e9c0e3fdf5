/**
 * Named crash points, for crash tests: `RAIMENT_CRASH_AT=after-call:17` kills this process with
 * SIGKILL the 17th time the weft passes the point `after-call` (a live call has completed and its
 * outcome is not yet recorded); `after-commit` is after the outcome is durable and before the
 * thread sees it; `takeover-rebuilt` is in a weave taking another over, once the journal is rebuilt
 * from the stream and before the takeover is recorded in it; `replicated-started` is in a
 * replicated weave of its own process once its threads run and its link has started, before it
 * reads the registry of replicated weaves; `continue-queued` is when a thread
 * continuing as new has queued the switch (not yet committed), `continue-committed` once the switch
 * is durable and before the new run starts; `control-answered` when a weave has answered a control
 * request (`raiment kill`, `send`, `spawn`, `fork`, ...) and before that answer commits;
 * `failed-committed` once a failed thread's end is durable and before its dump is written;
 * `dumps-missing` when a weave opened after a crash is about to write the dumps that crash left
 * unwritten. Unset, a point costs one boolean test.
 *
 * A trace, for crashTest() (src/crash-test/): `RAIMENT_CRASH_TRACE=FILE` appends to FILE a line
 * `point NAME` each time the process passes a crash point, before it is killed there, and a line
 * `call CALL_ID LIB.METHOD` each time a live call asks its library, before the library is asked.
 * Each line is written at once (no buffer), so a SIGKILL loses none.
 *
 * Stop points, for race tests: `RAIMENT_STOP_AT=spawn-checked` stops this process (SIGSTOP, after
 * a line on stderr saying so) at the point, for the test to act (start a weave) and SIGCONT it:
 * `spawn-checked` is in `raiment spawn --wait` once it found no weave running and before it opens
 * its own; `undo-checked` in a start refused before its weave ran, once it has looked at the
 * journal it may remove (src/cli/common.ts `undoFreshJournal`) and before it removes anything;
 * `rebuild-checked` in a rebuild from the stream (`raiment restore`, a takeover) once it found its
 * file not there yet and before it renames the rebuilt one onto it; `journal-opened` in a weave
 * opening its journal (src/journal-open.ts, an owner only) once it has opened a file that was there,
 * the first time (not when it opens it again), and before it takes the owner lock;
 * `journal-opened-each` at the same place, each time it opens it (again after a replacement).
 */
export type CrashPoint = 'after-call' | 'after-commit' | 'takeover-rebuilt' | 'replicated-started' | 'continue-queued' | 'continue-committed' | 'control-answered' | 'failed-committed' | 'dumps-missing'

import { openSync, writeSync } from 'node:fs'

const spec = process.env['RAIMENT_CRASH_AT']
const [point, countText] = spec ? spec.split(':') : []
let remaining = Number(countText ?? '1')

const traceFile = process.env['RAIMENT_CRASH_TRACE']
/** The trace's file descriptor, or null when none is kept. */
const trace = traceFile ? openSync(traceFile, 'a') : null

/** True when a crash point is armed in this process, or a trace is kept. */
export const crashArmed = (spec !== undefined && spec !== '') || trace !== null

/** Kills the process with SIGKILL when `name` is the armed point and its count is reached. */
export function crashPoint(name: CrashPoint): void {
  if (trace !== null) writeSync(trace, `point ${name}\n`)
  if (name === point && --remaining <= 0) process.kill(process.pid, 'SIGKILL')
}

/** Writes to the trace, when one is kept, that a live call asks its library (`call` is `lib.method`). */
export function traceCall(callId: string, call: string): void {
  if (trace !== null) writeSync(trace, `call ${callId} ${call}\n`)
}

export type StopPoint = 'spawn-checked' | 'undo-checked' | 'rebuild-checked' | 'journal-opened' | 'journal-opened-each'

/** Stops the process with SIGSTOP at `name` when it is the point RAIMENT_STOP_AT names (a test continues it). */
export function stopPoint(name: StopPoint): void {
  if (process.env['RAIMENT_STOP_AT'] !== name) return
  process.stderr.write(`raiment: stopped at ${name} (pid ${process.pid})\n`)
  process.kill(process.pid, 'SIGSTOP')
}

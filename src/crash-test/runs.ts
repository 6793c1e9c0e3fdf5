/**
 * One run of a crash test: `raiment spawn --wait --key crash-test TYPE PARAMS` in a child process
 * of its own (the command a user runs: a weave on the journal, the project's threads and I/O
 * libraries, the thread resumed when the journal holds it), and what it left: how the thread
 * ended, read from the journal, and the trace of what the process did (src/crash-points.ts).
 *
 * Invariants:
 * - The child's environment holds no RAIMENT_CRASH_AT, RAIMENT_CRASH_TRACE or RAIMENT_STOP_AT but
 *   those a run sets: a test run under one of them crashes nothing it did not mean to.
 * - RAIMENT_CRASH_TEST_DIR is the run's own directory (the same for a crashed process and its
 *   resume, another for each run).
 * - Every run of a crash test names its journal `crash-test.db` (in a directory of its own), so
 *   each run's weave id, and so the thread's id and the ids in its values, are the same.
 */
import { spawn } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { isAbsolute, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { isDeepStrictEqual } from 'node:util'
import { encodeValue } from '../encoding.js'
import { Journal } from '../journal.js'
import { rowEnd } from '../weave-types.js'

/** The key of the thread every run spawns (`--key`): a run on a journal that holds it resumes it. */
export const KEY = 'crash-test'
/** The journal's file name in each run's directory. */
export const DB = 'crash-test.db'

/**
 * How a run's thread ended, as the journal holds it; `'unended'` when the command exited (or was
 * stopped at the time limit) with the thread not ended: `why` says how.
 */
export type CrashTestEnd =
  | { status: 'done'; result: unknown }
  | { status: 'failed'; error: Error }
  | { status: 'killed' }
  | { status: 'moved'; to: string }
  | { status: 'unended'; why: string }

/** What the project's runs share. */
export interface RunSpec {
  type: string
  /** The params as JSON text (as `raiment spawn` takes them), or undefined for none. */
  paramsText: string | undefined
  threads: string
  ioLibs: string
  cwd: string
  /** Each child's time limit, in ms. */
  timeout: number
}

/** What one child process did. */
export interface ChildExit {
  code: number | null
  signal: NodeJS.Signals | null
  timedOut: boolean
  stderr: string
  /** The trace's lines (`point NAME`, `call CALL_ID LIB.METHOD`). */
  trace: string[]
}

/** The CLI of this package: bin/raiment.js, beside src/ (sources) or two levels above dist/src/. */
function bin(): string {
  for (const rel of ['../../bin/raiment.js', '../../../bin/raiment.js']) {
    const file = fileURLToPath(new URL(rel, import.meta.url))
    if (existsSync(file)) return file
  }
  throw new Error('raiment: bin/raiment.js is not in the raiment package')
}

/**
 * The command's arguments after `raiment`, for a journal in `dir`; with `shown`, each path as seen
 * from the project's directory where it is under it (for the commands a report shows).
 */
export function spawnArgs(spec: RunSpec, dir: string, shown = false): string[] {
  const params = spec.paramsText === undefined ? [] : [spec.paramsText]
  const p = (path: string): string => {
    const r = relative(spec.cwd, path)
    return shown && r !== '' && !r.startsWith('..') && !isAbsolute(r) ? r : path
  }
  return ['spawn', spec.type, ...params, '--wait', '--key', KEY, '--db', p(join(dir, DB)), '--threads', p(spec.threads), '--io-libs', p(spec.ioLibs), '--dumps', p(join(dir, 'dumps'))]
}

/**
 * Runs the command once on the journal in `dir`, with its trace in `traceFile`, and crashing at
 * `crashAt` (`after-call:3`) when given. Resolves when the child has exited (or was killed at the
 * time limit).
 */
export function runOnce(spec: RunSpec, dir: string, traceFile: string, crashAt?: string): Promise<ChildExit> {
  const env: NodeJS.ProcessEnv = { ...process.env }
  delete env['RAIMENT_CRASH_AT']
  delete env['RAIMENT_STOP_AT']
  env['RAIMENT_CRASH_TRACE'] = traceFile
  // The run's own directory, the same for the killed process and its resume: a library keeps
  // the world it acts on there (a ledger, a test database), so each run starts from the same one.
  env['RAIMENT_CRASH_TEST_DIR'] = dir
  if (crashAt !== undefined) env['RAIMENT_CRASH_AT'] = crashAt
  const child = spawn(process.execPath, [bin(), ...spawnArgs(spec, dir)], { cwd: spec.cwd, env, stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr.setEncoding('utf8')
  child.stderr.on('data', (d: string) => {
    // The end of what it said is what tells why it stopped.
    stderr = (stderr + d).slice(-8000)
  })
  let timedOut = false
  const timer = setTimeout(() => {
    timedOut = true
    child.kill('SIGKILL')
  }, spec.timeout)
  return new Promise((resolve, reject) => {
    child.on('error', (e) => {
      clearTimeout(timer)
      reject(e)
    })
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      const trace = existsSync(traceFile) ? readFileSync(traceFile, 'utf8').split('\n').filter((l) => l !== '') : []
      resolve({ code, signal, timedOut, stderr, trace })
    })
  })
}

/** How the thread ended in the journal in `dir` (the thread of key KEY), or why it did not. */
export function endIn(dir: string, exit: ChildExit): CrashTestEnd {
  const file = join(dir, DB)
  const how = (): string => {
    const said = exit.stderr.trim().split('\n').slice(-3).join(' | ')
    const ended = exit.timedOut ? 'was stopped at the time limit' : `exited (${exit.signal ?? `code ${exit.code}`})`
    return `the command ${ended}${said ? `: ${said}` : ''}`
  }
  if (!existsSync(file)) return { status: 'unended', why: `no journal was made; ${how()}` }
  const journal = new Journal(file, { readonly: true })
  try {
    const row = journal.thread(`${journal.weaveId}/${KEY}`)
    if (row === undefined) return { status: 'unended', why: `the thread was never recorded; ${how()}` }
    const end = rowEnd(row)
    if (end === null) return { status: 'unended', why: `the thread is ${row.status}; ${how()}` }
    switch (end.status) {
      case 'done':
        return { status: 'done', result: end.result }
      case 'failed':
        return { status: 'failed', error: end.error }
      case 'moved':
        return { status: 'moved', to: end.to }
      default:
        return { status: 'killed' }
    }
  } finally {
    journal.close()
  }
}

/** How often the trace passed each crash point. */
export function passesOf(trace: readonly string[]): Map<string, number> {
  const out = new Map<string, number>()
  for (const l of trace) if (l.startsWith('point ')) out.set(l.slice(6), (out.get(l.slice(6)) ?? 0) + 1)
  return out
}

/** The live calls of a trace: call id to `lib.method`, in the order first made. */
export function callsOf(trace: readonly string[]): Map<string, string> {
  const out = new Map<string, string>()
  for (const l of trace) {
    if (!l.startsWith('call ')) continue
    const [, id, call] = l.split(' ')
    if (id !== undefined && !out.has(id)) out.set(id, call ?? '?')
  }
  return out
}

/**
 * Whether two values are the same as Raiment takes them: the same encoded text, or equal once
 * decoded (`isDeepStrictEqual`: same classes, same fields, keys in any order), as a spawn of a
 * chosen id compares the params it was given with those recorded.
 */
export function sameValue(a: unknown, b: unknown): boolean {
  try {
    if (encodeValue(a) === encodeValue(b)) return true
  } catch {
    // (A value that cannot be encoded is compared as it is.)
  }
  return isDeepStrictEqual(a, b)
}

/**
 * Whether two ends are the same: the same status, and the same result (what `normalize` keeps of
 * each), or error (class, message, fields).
 */
export function sameEnd(a: CrashTestEnd, b: CrashTestEnd, normalize: (result: unknown) => unknown = (r) => r): boolean {
  if (a.status !== b.status) return false
  if (a.status === 'done') return sameValue(normalize(a.result), normalize((b as typeof a).result))
  if (a.status === 'failed') return isDeepStrictEqual(a.error, (b as typeof a).error)
  if (a.status === 'moved') return a.to === (b as typeof a).to
  // Two runs that did not end are not a match: neither ended as it should.
  return a.status !== 'unended'
}

/**
 * crashTest() of raiment/testing: shows, for a thread type of the project, what Raiment promises
 * of it, that a crash anywhere loses nothing: a run SIGKILLed at a named crash point and resumed
 * ends as the run with no crash did.
 *
 * How (src/crash-test/runs.ts runs each child): the thread runs once through, as `raiment spawn
 * --wait` runs it, in a child process of its own on a fresh journal, and its trace counts how often
 * it passed each crash point. Then for each point and each count k (or a sample of them), on a
 * fresh journal again: a run with RAIMENT_CRASH_AT=point:k is SIGKILLed there, the same command
 * resumes the thread in a new child until it ends, and the end is compared with the first run's.
 * The traces also tell which live calls the killed process made and the resuming one made again,
 * by their call id: the effects a library must dedupe by it.
 *
 * What it cannot see: effects outside the weft. It compares how the thread ended; a library that
 * did an effect twice (a payment, an email) and answered the same both times looks the same here.
 */
import { mkdirSync, rmSync } from 'node:fs'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, relative, resolve } from 'node:path'
import { isDeepStrictEqual } from 'node:util'
import { InvalidArgument } from '../errors.js'
import { isThreadType } from '../thread.js'
import { typeNameOf } from '../thread-name.js'
import { valueText } from '../value-text.js'
import { checkOptions } from '../option-checks.js'
import { callsOf, endIn, passesOf, runOnce, sameEnd, spawnArgs, type CrashTestEnd, type RunSpec } from './runs.js'
import { CrashTestFailed } from './errors.js'

export type { CrashTestEnd } from './runs.js'

/** The crash points a crash test can kill a thread's weave at (src/crash-points.ts). */
export const CRASH_TEST_POINTS = ['after-call', 'after-commit', 'continue-queued', 'continue-committed', 'failed-committed'] as const
export type CrashTestPoint = (typeof CRASH_TEST_POINTS)[number]

export interface CrashTestOptions {
  /** The thread type: its name under `threads/` (`'orders/checkout'`), or the type itself (declared in a module there). */
  type: string | object
  /** Its params: a JSON value, as `raiment spawn TYPE PARAMS_JSON` takes them. */
  params?: unknown
  /** The project's thread-type directory (default `./threads`). */
  threads?: string
  /** The project's I/O library directory (default `./io-libs`). */
  ioLibs?: string
  /** A directory to keep the runs' journals in, one directory a run (`after-call-3/`); default a temporary one, removed after. */
  dir?: string
  /** The points to crash at (default `['after-call', 'after-commit']`). */
  points?: readonly CrashTestPoint[]
  /** `true` (default): crash at every count k of each point; a number n: at n counts of each, spread from the first to the last. */
  every?: true | number
  /** How long one run's process may take, in ms (default 60 000): one that takes longer is killed and its thread counted as not ended. */
  timeout?: number
  /**
   * What of a result to compare (default: all of it). Each run is a run of its own: a result that
   * holds what the thread read through its libraries and that differs from run to run (a time, a
   * random number, an id a service made) differs however crash-safe the thread is. Return the
   * result without it: `normalize: ({ at: _at, ...rest }) => rest`.
   */
  normalize?: (result: never) => unknown
  /** How many crashed runs go at once (default 1). */
  concurrency?: number
}

/** A live call that the killed process made and the resuming one made again: same call id. */
export interface RepeatedCall {
  callId: string
  /** `lib.method`. */
  call: string
}

/** One crashed run: its point and count, how it ended once resumed, and what ran twice. */
export interface CrashRun {
  point: CrashTestPoint
  /** The count at which the process was killed (`RAIMENT_CRASH_AT=point:k`). */
  k: number
  /** True when the process was killed there; false when it passed the point fewer than k times (it ran on to its end). */
  crashed: boolean
  /** How the thread ended, once resumed. */
  end: CrashTestEnd
  /** How the run with no crash ended (the report's `end`), beside it. */
  expected: CrashTestEnd
  /** Whether `end` is `expected`: the same status, and the same result or error. */
  same: boolean
  /**
   * The live calls made in the killed process whose outcome was not recorded, made again by the
   * resume with the same call id: each library there must do its effect once per call id.
   */
  repeated: RepeatedCall[]
  /** The run's journal (kept when the `dir` option was given). */
  db: string
  /**
   * The shell commands that do this run again by hand, from the project's directory, on a journal
   * of their own (`crash-test-again/<point>-<k>/`): the first is killed at the point, the second
   * resumes the thread and prints its end. (`raiment show` on that journal shows its record.)
   */
  reproduce: string
}

export interface CrashTestReport {
  type: string
  params: unknown
  /** How the run with no crash ended. */
  end: CrashTestEnd
  /** How often the run with no crash passed each crash point asked for. */
  passes: Partial<Record<CrashTestPoint, number>>
  /** How many child processes ran. */
  processes: number
  /** Every crashed run, by point then count. */
  crashes: CrashRun[]
  /** The crashed runs that did not end as the run with no crash did. */
  mismatches: CrashRun[]
  /** True when there is no mismatch. */
  ok: boolean
}

/**
 * Runs thread `type` once through in a child process, then again, on fresh journals, SIGKILLed at
 * each count of each crash point and resumed to its end, each in new child processes
 * (`raiment spawn --wait`, with the project's threads and I/O libraries), and reports every run
 * that ended otherwise than the first. It throws nothing for a mismatch: `assertCrashSafe(report)`
 * does.
 *
 * A mismatch is a thread that is not deterministic apart from its weft calls (it read the time or
 * a random number itself, or a library's result depended on how often it ran), or a library that
 * is not idempotent where it should be. What it cannot see: an effect done twice whose library
 * answered the same both times (`repeated` lists the calls that ran again, by call id).
 * @throws InvalidArgument for a bad option (params that are not JSON, an unknown point, ...)
 * @throws CrashTestFailed (RAIMENT_CRASH_TEST_FAILED, no report) when the run with no crash did not end
 * @example
 * const report = await crashTest({ type: 'order', params: { id: 7 } })
 * assertCrashSafe(report)   // throws CrashTestFailed listing each mismatch
 */
export async function crashTest(options: CrashTestOptions): Promise<CrashTestReport> {
  const o = checked(options)
  const root = o.dir ?? (await mkdtemp(join(tmpdir(), 'raiment-crash-test-')))
  let processes = 0
  const runDir = (name: string): string => {
    const d = join(root, name)
    rmSync(d, { recursive: true, force: true })
    mkdirSync(d, { recursive: true })
    return d
  }
  try {
    const first = runDir('uninterrupted')
    const once = await runOnce(o.spec, first, join(first, 'trace-1.txt'))
    processes++
    const end = endIn(first, once)
    if (end.status === 'unended') {
      const byHand = join(o.spec.cwd, 'crash-test-again', 'uninterrupted')
      throw new CrashTestFailed(`crashTest(): the run of '${o.spec.type}' with no crash did not end (${end.why}); run \`npx raiment ${shown(spawnArgs(o.spec, byHand, true))}\` to see why`)
    }
    const counted = passesOf(once.trace)
    const passes: Partial<Record<CrashTestPoint, number>> = {}
    const todo: Array<{ point: CrashTestPoint; k: number }> = []
    for (const point of o.points) {
      const n = counted.get(point) ?? 0
      passes[point] = n
      for (const k of counts(n, o.every)) todo.push({ point, k })
    }
    const crashes: CrashRun[] = new Array<CrashRun>(todo.length)
    let next = 0
    const worker = async (): Promise<void> => {
      while (next < todo.length) {
        const i = next++
        const { point, k } = todo[i]!
        const dir = runDir(`${point}-${k}`)
        const at = `${point}:${k}`
        const killed = await runOnce(o.spec, dir, join(dir, 'trace-1.txt'), at)
        processes++
        const crashed = killed.signal === 'SIGKILL' && !killed.timedOut
        let repeated: RepeatedCall[] = []
        let resumed = killed
        if (crashed) {
          resumed = await runOnce(o.spec, dir, join(dir, 'trace-2.txt'))
          processes++
          const remade = callsOf(resumed.trace)
          repeated = [...callsOf(killed.trace)].filter(([id]) => remade.has(id)).map(([callId, call]) => ({ callId, call }))
        }
        const got = endIn(dir, resumed)
        // By hand, on a journal of its own (the run's holds its end already).
        const byHand = join(o.spec.cwd, 'crash-test-again', `${point}-${k}`)
        const args = shown(spawnArgs(o.spec, byHand, true))
        crashes[i] = {
          point,
          k,
          crashed,
          end: got,
          expected: end,
          same: sameEnd(end, got, o.normalize),
          repeated,
          db: join(dir, 'crash-test.db'),
          reproduce: `mkdir -p ${shown([relative(o.spec.cwd, byHand)])} && export RAIMENT_CRASH_TEST_DIR=${shown([relative(o.spec.cwd, byHand)])} && RAIMENT_CRASH_AT=${at} npx raiment ${args}; npx raiment ${args}`,
        }
      }
    }
    await Promise.all(Array.from({ length: Math.min(o.concurrency, Math.max(todo.length, 1)) }, worker))
    const mismatches = crashes.filter((c) => !c.same)
    return { type: o.spec.type, params: o.params, end, passes, processes, crashes, mismatches, ok: mismatches.length === 0 }
  } finally {
    if (o.dir === undefined) rmSync(root, { recursive: true, force: true })
  }
}

/**
 * Throws when a crash test found a mismatch: a run crashed and resumed that did not end as the
 * run with no crash did.
 * @throws CrashTestFailed (RAIMENT_CRASH_TEST_FAILED) listing each mismatch: its point and count,
 *   both ends, and the commands that do it again
 * @example
 * assertCrashSafe(await crashTest({ type: 'order', params: { id: 7 } }))
 */
export function assertCrashSafe(report: CrashTestReport): void {
  if (report === null || typeof report !== 'object' || !Array.isArray((report as Partial<CrashTestReport>).mismatches)) {
    throw new InvalidArgument(`assertCrashSafe() expects the report crashTest() resolves to, got ${valueText(report)}`)
  }
  if (report.mismatches.length === 0) return
  const shownMax = 5
  const lines = report.mismatches.slice(0, shownMax).map(
    (m) =>
      `- crashed at ${m.point}:${m.k}${m.crashed ? '' : ' (not reached: the run passed the point fewer times and ran through)'}, resumed: ${endText(m.end)}; with no crash: ${endText(m.expected)}` +
      `${m.repeated.length ? `; ran again after the crash: ${m.repeated.map((r) => `${r.call} (${r.callId})`).join(', ')}` : ''}\n  again: ${m.reproduce}`,
  )
  const more = report.mismatches.length > shownMax ? `\n… and ${report.mismatches.length - shownMax} more (report.mismatches)` : ''
  throw new CrashTestFailed(
    `thread '${report.type}' did not end as its run with no crash did after ${report.mismatches.length} of ${report.crashes.length} crashes:\n${lines.join('\n')}${more}\n` +
      'A thread must be deterministic apart from its weft calls (time, randomness, messages and I/O through its libraries), and a library whose result depends on how often it ran must dedupe by callContext().callId.',
    report,
  )
}

/** How an end reads in a message. */
function endText(e: CrashTestEnd): string {
  switch (e.status) {
    case 'done':
      return `done with ${valueText(e.result)}`
    case 'failed':
      return `failed with ${e.error.name}: ${e.error.message}`
    case 'moved':
      return `moved to ${e.to}`
    case 'unended':
      return `did not end (${e.why})`
    default:
      return e.status
  }
}

/** The counts k to crash at among 1..n: every one, or `every` of them spread from the first to the last. */
function counts(n: number, every: true | number): number[] {
  if (every === true || every >= n) return Array.from({ length: n }, (_, i) => i + 1)
  if (every === 1) return [Math.ceil(n / 2)]
  return [...new Set(Array.from({ length: every }, (_, i) => 1 + Math.round((i * (n - 1)) / (every - 1))))]
}

/** Arguments as a shell takes them. */
function shown(args: readonly string[]): string {
  return args.map((a) => (/^[\w./:@=,+-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ')
}

const OPTIONS = ['type', 'params', 'threads', 'ioLibs', 'dir', 'points', 'every', 'timeout', 'normalize', 'concurrency']

interface Checked {
  spec: RunSpec
  params: unknown
  dir: string | undefined
  points: CrashTestPoint[]
  every: true | number
  normalize: ((result: unknown) => unknown) | undefined
  concurrency: number
}

/** The options, checked once at the door. */
function checked(options: CrashTestOptions): Checked {
  if (options === null || typeof options !== 'object') throw new InvalidArgument(`crashTest() expects its options ({ type, params, ... }), got ${valueText(options)}`)
  checkOptions('crashTest', options, OPTIONS)
  const given = options.type
  const type = typeof given === 'string' && given !== '' ? given : isThreadType(given) ? typeNameOf(given) : null
  if (type === null) {
    throw new InvalidArgument(`crashTest(): 'type' must be a thread type's name under threads/ ('orders/checkout') or a thread type declared in a module there, got ${valueText(given)}`)
  }
  let paramsText: string | undefined
  if (options.params !== undefined) {
    try {
      paramsText = JSON.stringify(options.params)
    } catch {
      paramsText = undefined
    }
    if (paramsText === undefined || !isDeepStrictEqual(JSON.parse(paramsText), options.params)) {
      throw new InvalidArgument(`crashTest(): 'params' must be a JSON value (each run is \`raiment spawn ${type} PARAMS_JSON\`), got ${valueText(options.params)}`)
    }
  }
  const points: CrashTestPoint[] = Array.isArray(options.points) ? [...(options.points as CrashTestPoint[])] : options.points === undefined ? ['after-call', 'after-commit'] : []
  if (points.length === 0 || points.some((p) => !(CRASH_TEST_POINTS as readonly string[]).includes(p))) {
    throw new InvalidArgument(`crashTest(): 'points' must be a non-empty array of crash points among ${CRASH_TEST_POINTS.join(', ')}, got ${valueText(options.points)}`)
  }
  const every = options.every ?? true
  if (every !== true && !(Number.isInteger(every) && every >= 1)) {
    throw new InvalidArgument(`crashTest(): 'every' must be true (every count) or a whole number from 1 up (that many counts of each point), got ${valueText(every)}`)
  }
  const timeout = options.timeout ?? 60_000
  if (typeof timeout !== 'number' || !(timeout > 0)) throw new InvalidArgument(`crashTest(): 'timeout' must be a number of ms above 0, got ${valueText(timeout)}`)
  const concurrency = options.concurrency ?? 1
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new InvalidArgument(`crashTest(): 'concurrency' must be a whole number from 1 up, got ${valueText(concurrency)}`)
  for (const k of ['threads', 'ioLibs', 'dir'] as const) {
    const v = options[k]
    if (v !== undefined && (typeof v !== 'string' || v === '')) throw new InvalidArgument(`crashTest(): '${k}' must be a directory's path, got ${valueText(v)}`)
  }
  const normalize = options.normalize as ((result: unknown) => unknown) | undefined
  if (normalize !== undefined && typeof normalize !== 'function') throw new InvalidArgument(`crashTest(): 'normalize' must be a function of a result, got ${valueText(normalize)}`)
  const cwd = process.cwd()
  return {
    spec: { type, paramsText, threads: resolve(cwd, options.threads ?? 'threads'), ioLibs: resolve(cwd, options.ioLibs ?? 'io-libs'), cwd, timeout },
    params: options.params,
    dir: options.dir === undefined ? undefined : resolve(cwd, options.dir),
    points,
    every,
    normalize,
    concurrency,
  }
}

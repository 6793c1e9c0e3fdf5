/**
 * The CLI with thread types a weave cannot run, as real child processes on real journals in temp
 * dirs: `raiment spawn` refuses an unknown type before recording anything (to a running weave
 * too, which is asked); `raiment start` starts on a journal holding threads of unknown or broken
 * types and ends them failed; a threads directory with broken modules runs its good types, the
 * weave reporting each broken one once; `raiment replay` loads only the type the dump names.
 * Synchronisation is on the children's output, never on sleeps.
 */
import { afterEach, describe, expect, it } from 'vitest'
import Database from 'better-sqlite3'
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, rmSync, writeFileSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { encodeValue } from '../src/encoding.js'
import { Journal } from '../src/journal.js'
import { item } from '../src/ui/data.js'
import { runChild, describeRun, type ChildOptions, type ChildRun } from './support/child.js'
import { BROKEN, GOOD_AND_BROKEN, projectWith, writeThread } from './support/threads-dir.js'

const BIN = fileURLToPath(new URL('../bin/raiment.js', import.meta.url))
/** Each test starts several Node processes, each loading TypeScript through tsx. */
const SLOW = 180_000

/** `raiment ...args` on project `dir`'s journal, threads, io-libs and dumps. */
function raiment(dir: string, args: string[], o: ChildOptions = {}): Promise<ChildRun> {
  const project = ['--db', join(dir, 'raiment.db'), '--threads', join(dir, 'threads')]
  const weave = ['start', 'spawn'].includes(args[0]!) ? [...project, '--io-libs', join(dir, 'io-libs'), '--dumps', join(dir, 'dumps')] : []
  const where = args[0] === 'replay' ? ['--threads', join(dir, 'threads'), '--io-libs', join(dir, 'io-libs')] : args[0] === 'dump' ? ['--db', join(dir, 'raiment.db')] : weave
  return runChild(BIN, [...args, ...where], o)
}

/** The rows of the threads table, as `type status`. */
function threadRows(dir: string): string[] {
  const db = new Database(join(dir, 'raiment.db'), { readonly: true, fileMustExist: true })
  try {
    return (db.prepare('SELECT type, status FROM threads ORDER BY created, id').all() as Array<{ type: string; status: string }>).map((r) => `${r.type} ${r.status}`)
  } finally {
    db.close()
  }
}

/** Records pending threads in `dir`'s journal, as an older raiment's `spawn` with no weave running did. */
function recordPending(dir: string, threads: Array<[type: string, params: unknown]>): string[] {
  const j = new Journal(join(dir, 'raiment.db'))
  try {
    const ids = threads.map(([type, params]) => {
      const id = j.nextThreadId(1)
      j.insertThread(id, type, encodeValue(params, 'params'), null, 'pending')
      return id
    })
    j.flushNow()
    return ids
  } finally {
    j.close()
  }
}

/** The lines of a report each broken module of GOOD_AND_BROKEN gets, in `stderr`. */
function expectEachBrokenReportedOnce(stderr: string): void {
  const lines = stderr.trimEnd().split('\n')
  for (const [type, re] of Object.entries(BROKEN)) {
    expect(lines.filter((l) => re.test(l)), `${type} in\n${stderr}`).toHaveLength(1)
  }
  expect(lines.filter((l) => /^raiment: RAIMENT_(INVALID_THREAD_MODULE|UNKNOWN_LIBRARY): /.test(l)), stderr).toHaveLength(Object.keys(BROKEN).length)
}

const weaves = new Set<ChildProcess>()
afterEach(() => {
  // A test that failed half-way leaves no weave behind.
  for (const c of weaves) c.kill('SIGKILL')
  weaves.clear()
})

/**
 * Starts `raiment start` on `dir` and resolves once it has printed its first line. `stop()`
 * SIGTERMs it and resolves to its run: its stdout lines and stderr.
 */
async function startWeave(dir: string): Promise<{ stop: () => Promise<ChildRun> }> {
  const args = ['--conditions=raiment-source', BIN, 'start', '--db', join(dir, 'raiment.db'), '--threads', join(dir, 'threads'), '--io-libs', join(dir, 'io-libs'), '--dumps', join(dir, 'dumps')]
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  weaves.add(child)
  const run: ChildRun = { code: null, signal: null, lines: [], stderr: '', killed: false, times: [] }
  child.stderr.setEncoding('utf8').on('data', (d: string) => (run.stderr += d))
  const closed = new Promise<ChildRun>((resolve) =>
    child.on('close', (code, signal) => {
      weaves.delete(child)
      resolve({ ...run, code, signal })
    }),
  )
  const started = new Promise<void>((resolve) =>
    createInterface({ input: child.stdout }).on('line', (l) => {
      run.lines.push(l)
      if (l.startsWith('weave ')) resolve()
    }),
  )
  await Promise.race([started, closed.then((r) => Promise.reject(new Error(`raiment start did not start: ${describeRun(r)}`)))])
  return {
    stop: () => {
      child.kill('SIGTERM')
      return closed
    },
  }
}

describe('raiment CLI and thread types it cannot run', () => {
  it(
    'a thread of an unknown type: start leaves it waiting, says so, and runs the rest; spawn refuses one before recording it, to a running weave too',
    async () => {
      const dir = projectWith({ 'good.ts': GOOD_AND_BROKEN['good.ts']! })
      // No weave and no journal yet: refused, and no journal file is made.
      const none = await raiment(dir, ['spawn', 'goood', '{"n":1}', '--wait'])
      expect(none.code, describeRun(none)).toBe(1)
      expect(none.stderr).toMatch(/unknown thread type 'goood' \(did you mean 'good'\?\)/)
      expect(existsSync(join(dir, 'raiment.db'))).toBe(false)

      // Recorded by an older raiment, or before its file was deleted.
      const [gone, ok] = recordPending(dir, [['gone', undefined], ['good', { n: 5 }]])
      const weave = await startWeave(dir)
      // A type added after the weave started, and a misspelt one: the weave refuses them.
      writeThread(dir, 'late.ts', GOOD_AND_BROKEN['good.ts']!)
      const late = await raiment(dir, ['spawn', 'late', '--wait'])
      expect(late.code, describeRun(late)).toBe(1)
      expect(late.stderr).toMatch(/^raiment: .*unknown thread type 'late'; known types: good, raiment\/supervisor\. .*a weave knows the modules that were there when it started or last reloaded \(raiment reload\)\./m)
      const typo = await raiment(dir, ['spawn', 'goood'])
      expect(typo.code, describeRun(typo)).toBe(1)
      expect(typo.stderr).toMatch(/unknown thread type 'goood' \(did you mean 'good'\?\)/)
      const good = await raiment(dir, ['spawn', 'good', '{"n":21}', '--wait'])
      expect(good.code, describeRun(good)).toBe(0)
      expect(good.lines).toEqual(['42'])

      const w = await weave.stop()
      expect(w.code, describeRun(w)).toBe(0)
      expect(w.lines[0]).toMatch(/^weave \S+ on .*: 2 thread types, resumed 0 threads$/)
      expect(w.stderr).toContain(`raiment: RAIMENT_THREADS_WAIT_FOR_TYPE: thread ${gone} of type 'gone' waits, not run: this weave has no such type (its types: good, raiment/supervisor). It resumes where it stopped once the weave loads the type`)
      expect(w.lines.filter((l) => l.includes(gone!))).toEqual([])
      expect(w.lines).toContain(`done ${ok} good → 10`)
      expect(w.lines.filter((l) => l.startsWith('resumed '))).toEqual([])
      expect(threadRows(dir)).toEqual(['gone pending', 'good done', 'good done'])
      // ps, show and the UI's data say it waits for its type, not that it runs.
      const db = join(dir, 'raiment.db')
      const ps = await raiment(dir, ['ps', '--db', db])
      expect(ps.lines.find((l) => l.startsWith(gone!)), describeRun(ps)).toMatch(/^\S+\s+gone\s+waiting for type\s/)
      const shown = await raiment(dir, ['show', gone!, '--db', db, '--json'])
      expect((JSON.parse(shown.lines.join('')) as { thread: { waitingForType?: { since: string } } }).thread.waitingForType?.since, describeRun(shown)).toMatch(/^\d{4}-/)
      const j = new Journal(db, { own: false, readonly: true })
      try {
        expect(item(j, j.thread(gone!)!)).toMatchObject({ status: 'pending', waitingForType: true })
        expect(item(j, j.thread(ok!)!)).not.toHaveProperty('waitingForType')
      } finally {
        j.close()
      }

      // --wait with no weave running opens one here, which such a thread no longer stops.
      recordPending(dir, [['gone', undefined]])
      const waited = await raiment(dir, ['spawn', 'good', '{"n":1}', '--wait'])
      expect(waited.code, describeRun(waited)).toBe(0)
      expect(waited.lines).toEqual(['2'])
      expect(threadRows(dir)).toEqual(['gone pending', 'good done', 'good done', 'gone pending', 'good done'])
    },
    SLOW,
  )

  it(
    'spawn with no weave running refuses a type whose library is missing, before recording it or making a journal',
    async () => {
      const dir = projectWith({ 'good.ts': GOOD_AND_BROKEN['good.ts']!, 'nested/missing-lib.ts': GOOD_AND_BROKEN['nested/missing-lib.ts']! })
      for (const wait of [[], ['--wait']]) {
        const r = await raiment(dir, ['spawn', 'nested/missing-lib', ...wait])
        expect(r.code, describeRun(r)).toBe(1)
        // Before, a journal (and its lock file) was made, then the thread recorded or refused.
        expect(r.stderr).toMatch(/^raiment: RAIMENT_UNKNOWN_LIBRARY: thread type 'nested\/missing-lib' uses unknown I\/O library 'nosuchlib'/)
        expect(existsSync(join(dir, 'raiment.db'))).toBe(false)
      }
      recordPending(dir, [['good', { n: 1 }]])
      const r = await raiment(dir, ['spawn', 'nested/missing-lib'])
      expect(r.code, describeRun(r)).toBe(1)
      expect(threadRows(dir)).toEqual(['good pending'])
    },
    SLOW,
  )

  it(
    'broken modules in threads/: the others start, spawn and run, each broken one reported once and its threads left waiting; replay loads only the dump\'s type',
    async () => {
      const dir = projectWith(GOOD_AND_BROKEN)
      const [bad, ok] = recordPending(dir, [['syntax', undefined], ['good', { n: 5 }]])
      const weave = await startWeave(dir)
      const broken = await raiment(dir, ['spawn', 'throws'])
      expect(broken.code, describeRun(broken)).toBe(1)
      expect(broken.stderr).toMatch(/thread type 'throws' is unavailable: .*threads\/throws\.ts: could not be loaded: Error: boom at import/)
      const good = await raiment(dir, ['spawn', 'good', '{"n":21}', '--wait'])
      expect(good.code, describeRun(good)).toBe(0)
      expect(good.lines).toEqual(['42'])

      const w = await weave.stop()
      expect(w.code, describeRun(w)).toBe(0)
      expect(w.lines[0]).toMatch(/^weave \S+ on .*: 2 thread types, 4 unavailable \(.*\), resumed 0 threads$/)
      expectEachBrokenReportedOnce(w.stderr)
      expect(w.stderr).toContain(`raiment: RAIMENT_THREADS_WAIT_FOR_TYPE: thread ${bad} of type 'syntax' waits, not run: its module cannot be used (RAIMENT_INVALID_THREAD_MODULE: the weave's warning of it says why)`)
      expect(w.lines).toContain(`done ${ok} good → 10`)
      expect(threadRows(dir)).toEqual(['syntax pending', 'good done', 'good done'])

      // A dump of the good thread replays beside the broken modules.
      const file = join(dir, 'good.json')
      const dumped = await raiment(dir, ['dump', ok!, '-o', file])
      expect(dumped.code, describeRun(dumped)).toBe(0)
      const replayed = await raiment(dir, ['replay', file])
      expect(replayed.code, describeRun(replayed)).toBe(0)
      expect(replayed.lines).toEqual([`replayed ${ok} (good) from ${file}: 1 recorded call; it returned:`, '10', 'which equals the recorded result'])
      expect(replayed.stderr).toBe('')
    },
    SLOW,
  )

  it(
    'a syntax error in a file with no package.json above it (loaded as an ES module) is reported as one, not as CommonJS; a CommonJS package still gets the hint',
    async () => {
      const dir = projectWith({ 'syntax.ts': GOOD_AND_BROKEN['syntax.ts']! })
      rmSync(join(dir, 'package.json'))
      const r = await raiment(dir, ['spawn', 'syntax'])
      expect(r.code, describeRun(r)).toBe(1)
      // Before: "CommonJsModule: … loads as CommonJS because no package.json above it …", Node's error in parentheses.
      expect(r.stderr).toMatch(/threads\/syntax\.ts: could not be loaded: TransformError: Transform failed with 1 error: .*[Ee]xpected/)
      expect(r.stderr).not.toMatch(/CommonJS|package\.json/)
      writeFileSync(join(dir, 'package.json'), '{ "type": "commonjs" }\n')
      const cjs = await raiment(dir, ['spawn', 'syntax'])
      expect(cjs.code, describeRun(cjs)).toBe(1)
      expect(cjs.stderr).toMatch(/CommonJsModule: .*syntax\.ts loads as CommonJS because .*package\.json says "type": "commonjs"/)
    },
    SLOW,
  )
})

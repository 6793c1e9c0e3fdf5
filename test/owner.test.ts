/**
 * One owner per journal (issue 13, items 1 and 2): whatever opens a journal to run threads holds
 * its owner lock for its whole life, the OS drops it when the process dies (a SIGKILLed process,
 * reaped or not, never counts as running), a second opener is refused at once with
 * RAIMENT_JOURNAL_OWNED naming the owner's pid, and the read-only commands never create a file.
 * Real `raiment` processes in temporary directories; a property test drives owners, guests and
 * readers of one journal in this process. Reproduce a failure of the property with FC_SEED=<seed>.
 */
import Database from 'better-sqlite3'
import fc from 'fast-check'
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process'
import { readdirSync, readFileSync, statSync, symlinkSync } from 'node:fs'
import { hostname } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, test } from 'vitest'
import { JournalOwned, Weave, thread, type AnyThreadType } from 'raiment'
import { runningOwner } from '../src/cli/common.js'
import { encodeValue } from '../src/encoding.js'
import { Journal } from '../src/journal.js'
import { JournalLock, openToRead } from '../src/journal-owner.js'
import { AMQP_URL, brokerUp, CI, freshNamespace, removeNamespace, requireBroker } from './support/broker.js'
import { tempDir } from './support/tmp.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const BIN = join(ROOT, 'bin', 'raiment.js')
const T = ['--threads', join(ROOT, 'threads')]
/** Each test starts several Node processes, each loading TypeScript through tsx. */
const SLOW = 240_000

const seed = process.env['FC_SEED'] !== undefined ? Number(process.env['FC_SEED']) : Date.now() % 2 ** 31
console.log(`owner: fast-check seed ${seed} (FC_SEED=${seed} to reproduce)`)

const echo = { echo: thread({ uses: [], async does(p: unknown) { return p } }) as AnyThreadType }
const weaveAt = (db: string) => Weave.open({ db, threads: echo, ioLibs: false, dumps: false, durability: 'memory' })

/** A `raiment` process whose output can be waited on (on its output, never on time). */
class Cli {
  readonly child: ChildProcessWithoutNullStreams
  stdout = ''
  stderr = ''
  readonly done: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  #waiters: Array<() => void> = []

  constructor(args: string[], cwd: string) {
    this.child = spawn(process.execPath, ['--conditions=raiment-source', BIN, ...args], { cwd, env: { ...process.env, RAIMENT_DEBUG: '', RAIMENT_AMQP_URL: '' } })
    const wake = (): void => this.#waiters.splice(0).forEach((w) => w())
    this.child.stdout.setEncoding('utf8').on('data', (s: string) => ((this.stdout += s), wake()))
    this.child.stderr.setEncoding('utf8').on('data', (s: string) => ((this.stderr += s), wake()))
    this.done = new Promise((resolve) => this.child.on('close', (code, signal) => (wake(), resolve({ code, signal }))))
  }

  /** The first match of `re` in stdout; rejects when the process ends without printing it. */
  async waitFor(re: RegExp): Promise<RegExpMatchArray> {
    for (;;) {
      const m = this.stdout.match(re)
      if (m) return m
      if (this.child.exitCode !== null || this.child.signalCode !== null) {
        throw new Error(`raiment exited without printing ${re}\nstdout:\n${this.stdout}\nstderr:\n${this.stderr}`)
      }
      await new Promise<void>((r) => this.#waiters.push(r))
    }
  }
}

const started: Cli[] = []
afterEach(() => {
  for (const c of started.splice(0)) if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill('SIGKILL')
})
function cli(args: string[], cwd: string): Cli {
  const c = new Cli(args, cwd)
  started.push(c)
  return c
}

/** Runs `raiment ARGS` to its end. */
async function raiment(cwd: string, ...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const c = new Cli(args, cwd)
  const { code } = await c.done
  return { code, stdout: c.stdout, stderr: c.stderr }
}

/** Runs `raiment ARGS` synchronously: this process's event loop, which reaps its children, waits. */
function raimentSync(cwd: string, ...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--conditions=raiment-source', BIN, ...args], { cwd, encoding: 'utf8', timeout: 120_000, env: { ...process.env, RAIMENT_DEBUG: '' } })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

const listing = (dir: string): string[] => readdirSync(dir).sort()

/** The state letter of a process in /proc (Linux): R, S, Z, …; '-' once it is gone (reaped). */
function stateOf(pid: number): string {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3)
  } catch {
    return '-'
  }
}

/**
 * Waits, without running the event loop (so Node cannot reap it), until a killed child is dead
 * but not reaped: a zombie, every thread of it gone (its files, and their locks, released).
 */
function untilZombie(pid: number): void {
  const deadline = Date.now() + 30_000
  const nap = new Int32Array(new SharedArrayBuffer(4))
  while (!(stateOf(pid) === 'Z' && readdirSync(`/proc/${pid}/task`).length === 1)) {
    if (Date.now() > deadline) throw new Error(`process ${pid} did not die within 30 s of its SIGKILL (state ${stateOf(pid)})`)
    Atomics.wait(nap, 0, 0, 1)
  }
}

describe('one owner per journal', () => {
  test('a second Weave.open on a journal in this process is refused with its code and this pid; the first runs on', async () => {
    const db = join(tempDir(), 'raiment.db')
    const first = await weaveAt(db)
    const err = (await weaveAt(db).catch((e: unknown) => e)) as JournalOwned
    expect(err).toBeInstanceOf(JournalOwned)
    expect(err.code).toBe('RAIMENT_JOURNAL_OWNED')
    expect(err.message).not.toContain('\n')
    expect(err.message).toMatch(new RegExp(`^${db.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} is already run by another weave in this process \\(pid ${process.pid}\\)`))
    expect(err.owner?.pid).toBe(process.pid)
    // The first weave did not notice.
    expect(await first.join(first.spawn('echo', 7))).toMatchObject({ status: 'done', result: 7 })
    await first.close()
    const again = await weaveAt(db)
    expect(await again.join(again.spawn('echo', 8))).toMatchObject({ status: 'done', result: 8 })
    await again.close()
  })

  test('a journal named through a symbolic link (of the file, or of a directory on its path) has one owner', async () => {
    const dir = tempDir()
    const db = join(dir, 'raiment.db')
    const first = await weaveAt(db)
    try {
      symlinkSync(db, join(dir, 'link.db'))
      symlinkSync(dir, join(dir, 'dirlink'))
      for (const other of [join(dir, 'link.db'), join(dir, 'dirlink', 'raiment.db')]) {
        const err = (await weaveAt(other).catch((e: unknown) => e)) as JournalOwned
        expect(err, other).toBeInstanceOf(JournalOwned)
        expect(JournalLock.held(other)).toBe(true)
      }
      expect(await first.join(first.spawn('echo', 7))).toMatchObject({ status: 'done', result: 7 })
      // A reader through the link sees what is committed in the -wal beside the real file.
      const reader = openToRead(join(dir, 'link.db'))
      expect(reader.prepare('SELECT count(*) FROM threads').pluck().get()).toBe(1)
      reader.close()
    } finally {
      await first.close()
    }
    expect(JournalLock.held(join(dir, 'link.db'))).toBe(false)
  })

  test('a weave opening while another process writes to the journal waits for it, rather than failing locked', async () => {
    const db = join(tempDir(), 'raiment.db')
    await (await weaveAt(db)).close()
    // A writer without a weave (as a CLI's kill): it holds its write transaction for 300 ms.
    const script =
      "const D = require('better-sqlite3'); const db = new D(process.argv[1]); db.exec('BEGIN IMMEDIATE');" +
      " db.prepare(\"INSERT INTO meta (k, v) VALUES ('writer', '1')\").run(); console.log('held');" +
      " setTimeout(() => { db.exec('COMMIT'); db.close() }, 300)"
    const writer = spawn(process.execPath, ['-e', script, db], { cwd: ROOT })
    const exited = new Promise((resolve) => writer.on('close', resolve))
    await new Promise<void>((resolve) => writer.stdout.on('data', (d: Buffer) => d.toString().includes('held') && resolve()))
    const weave = await weaveAt(db)
    try {
      expect(weave.journal.meta('writer')).toBe('1')
      expect(await weave.join(weave.spawn('echo', 3))).toMatchObject({ status: 'done', result: 3 })
    } finally {
      await weave.close()
      await exited
    }
  })

  test('beside a running `raiment start`, Weave.open and a second start are refused naming its pid; it runs on', async () => {
    const dir = tempDir()
    const weave = cli(['start', ...T], dir)
    await weave.waitFor(/^weave \S+ on raiment\.db \(pid \d+\)/m)
    const pid = weave.child.pid!

    const err = (await weaveAt(join(dir, 'raiment.db')).catch((e: unknown) => e)) as JournalOwned
    expect(err).toBeInstanceOf(JournalOwned)
    expect(err.code).toBe('RAIMENT_JOURNAL_OWNED')
    expect(err.message).toContain(`is already run by a weave in pid ${pid} on host ${hostname()}`)
    const second = await raiment(dir, 'start', ...T)
    expect(second.code).toBe(1)
    expect(second.stderr.trimEnd().split('\n')).toHaveLength(1)
    expect(second.stderr).toMatch(new RegExp(`^raiment: .*raiment\\.db is already run by a weave in pid ${pid} on host `))

    // The lock's sidecar is an empty file, and no journal file of its own ever appears.
    expect(listing(dir)).toEqual(['raiment.db', 'raiment.db-lock', 'raiment.db-shm', 'raiment.db-wal'])
    expect(statSync(join(dir, 'raiment.db-lock')).size).toBe(0)

    // The running weave is unharmed: it runs what is spawned, and stops cleanly.
    const spawned = await raiment(dir, 'spawn', 'greet', '{"name":"ada"}', '--wait', ...T)
    expect(spawned.code, spawned.stderr).toBe(0)
    expect(spawned.stderr).toContain(`on the weave running on raiment.db (pid ${pid})`)
    expect(JSON.parse(spawned.stdout)).toEqual({ greeted: 'ada', greeting: 'hello ada' })
    weave.child.kill('SIGTERM')
    expect((await weave.done).code, weave.stderr).toBe(0)
    expect(listing(dir)).toEqual(['raiment.db', 'raiment.db-lock'])
  }, SLOW)

  test('a SIGKILLed owner leaves no lock: dead but not yet reaped (a zombie), it does not count', async () => {
    const dir = tempDir()
    const weave = cli(['start', ...T], dir)
    await weave.waitFor(/^weave \S+ on raiment\.db/m)
    const id = (await raiment(dir, 'spawn', 'sleeper', '{"steps":100,"ms":1000}', ...T)).stdout.trim()
    await weave.waitFor(new RegExp(`^started ${id} sleeper$`, 'm'))
    const pid = weave.child.pid!
    weave.child.kill('SIGKILL')
    untilZombie(pid)

    // From here to the check below this process's event loop does not run: the weave stays a zombie.
    const kill = raimentSync(dir, 'kill', id)
    expect(kill.code, kill.stderr).toBe(0)
    expect(kill.stdout.trim()).toBe(`killed ${id}`)
    const run = raimentSync(dir, 'spawn', 'greet', '{"name":"grace"}', '--wait', ...T)
    expect(run.code, run.stderr).toBe(0)
    expect(run.stderr).toMatch(/no weave runs on raiment\.db, so this process runs it/)
    expect(JSON.parse(run.stdout)).toEqual({ greeted: 'grace', greeting: 'hello grace' })
    expect(stateOf(pid)).toBe('Z')

    const reopened = await weaveAt(join(dir, 'raiment.db'))
    expect(reopened.journal.thread(id)?.status).toBe('killed')
    await reopened.close()
    expect((await weave.done).signal).toBe('SIGKILL')
  }, SLOW)

  test('ps, show, dump and dead-letters create no file: with no weave, beside one, after a SIGKILL, on a journal left in WAL mode', async () => {
    const dir = tempDir()
    const made = await raiment(dir, 'spawn', 'greet', '{"name":"ada"}', '--wait', ...T)
    expect(made.code, made.stderr).toBe(0)
    const id = /spawned (\S+)/.exec(made.stderr)![1]!
    const readers = async (when: string): Promise<void> => {
      const before = listing(dir)
      const bytes = readFileSync(join(dir, 'raiment.db'))
      const runs = await Promise.all([['ps'], ['show', id], ['dump', id], ['dead-letters']].map((args) => raiment(dir, ...args)))
      for (const r of runs) expect(r.code, `${when}: ${r.stderr}`).toBe(0)
      expect(runs[0]!.stdout, when).toMatch(new RegExp(`^${id}\\s+greet\\s+done`, 'm'))
      expect(listing(dir), when).toEqual(before)
      if (!before.includes('raiment.db-wal')) expect(readFileSync(join(dir, 'raiment.db')).equals(bytes), when).toBe(true)
    }

    expect(listing(dir)).toEqual(['raiment.db', 'raiment.db-lock'])
    await readers('no weave running')

    const weave = cli(['start', ...T], dir)
    await weave.waitFor(/^weave \S+ on raiment\.db/m)
    await readers('a weave running')
    weave.child.kill('SIGKILL')
    await weave.done
    await readers('the weave SIGKILLed')

    // A journal in WAL mode without -wal and -shm (as Raiment left one before owner locks).
    const db = new Database(join(dir, 'raiment.db'))
    db.pragma('journal_mode = WAL')
    db.close()
    expect(listing(dir)).toEqual(['raiment.db', 'raiment.db-lock'])
    await readers('in WAL mode, alone')
  }, SLOW)

  test('a write that finds no weave (kill) is seen by a weave that starts meanwhile: it does not run the thread', async () => {
    const dir = tempDir()
    const file = join(dir, 'raiment.db')
    const id = (await raiment(dir, 'spawn', 'sleeper', '{"steps":100,"ms":1000}', ...T)).stdout.trim()
    // A journal left in WAL mode by a killed weave: the owner's first write is its only barrier.
    const wal = new Database(file)
    wal.pragma('journal_mode = WAL')
    wal.close()

    const guest = new Journal(file, { own: false })
    try {
      guest.db.exec('BEGIN IMMEDIATE')
      expect(runningOwner(guest)).toBeNull()
      guest.killNow(id)
      const weave = cli(['start', ...T], dir)
      // Polled: another process's lock has no event. Then the transaction is held a moment
      // longer than a weave that did not wait for it would need to read the thread as pending.
      while (!JournalLock.held(file)) await new Promise((r) => setTimeout(r, 10))
      await new Promise((r) => setTimeout(r, 1_000))
      expect(weave.stdout).toBe('')
      guest.db.exec('COMMIT')
      await weave.waitFor(/^weave \S+ on raiment\.db .* resumed 0 threads$/m)
      const pid = weave.child.pid!
      expect(runningOwner(guest)?.pid).toBe(pid)
      weave.child.kill('SIGTERM')
      const end = await weave.done
      expect(end, weave.stderr).toEqual({ code: 0, signal: null })
      expect(weave.stdout).not.toContain(id)
    } finally {
      guest.close()
    }
    expect((await raiment(dir, 'ps')).stdout).toMatch(new RegExp(`^${id}\\s+sleeper\\s+killed`, 'm'))
  }, SLOW)

  test('owners, guests and readers of one journal in any order: one owner at most, held exactly while it is open, no stray file', () => {
    const op = fc.constantFrom('open', 'close', 'probe', 'read', 'guest')
    fc.assert(
      fc.property(fc.array(op, { maxLength: 24 }), (ops) => {
        const dir = tempDir()
        const file = join(dir, 'j.db')
        let owner: Journal | null = null
        let guests = 0
        try {
          for (const o of ops) {
            if (o === 'open') {
              if (owner === null) owner = new Journal(file, { durability: 'memory' })
              else expect(() => new Journal(file, { durability: 'memory' })).toThrow(JournalOwned)
            } else if (o === 'close') {
              owner?.close()
              owner = null
            } else if (o === 'probe') {
              expect(JournalLock.held(file)).toBe(owner !== null)
            } else if (o === 'read') {
              const before = listing(dir)
              if (!before.includes('j.db')) continue
              const r = new Journal(file, { readonly: true })
              expect(r.threads()).toHaveLength(guests)
              expect(r.owned()).toBe(owner !== null)
              r.close()
              expect(listing(dir)).toEqual(before)
            } else {
              const g = new Journal(file, { durability: 'memory', own: false })
              g.insertThread(g.nextThreadId(1), 'echo', encodeValue(guests), null, 'pending')
              g.close()
              guests++
            }
            const files = listing(dir)
            expect(files.filter((f) => f.endsWith('-journal'))).toEqual([])
            if (files.includes('j.db-lock')) expect(statSync(join(dir, 'j.db-lock')).size).toBe(0)
            if (owner === null) expect(files.filter((f) => f !== 'j.db' && f !== 'j.db-lock')).toEqual([])
          }
        } finally {
          owner?.close()
        }
      }),
      { seed, numRuns: 40 },
    )
  })
})

describe.skipIf(!brokerUp && !CI)('with a broker', () => {
  const cleanups: Array<() => Promise<void>> = []
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c()
  })

  test('each weave of `start --weaves 2` owns its journal while it runs', async () => {
    requireBroker()
    const dir = tempDir()
    const ns = freshNamespace()
    cleanups.push(() => removeNamespace(ns, ['w-1', 'w-2']))
    const many = cli(['start', '--weaves', '2', '--amqp', AMQP_URL, '--namespace', ns, '--id', 'w', '--db', 'w.db', '--heartbeat', '100', '--durability', 'memory'], dir)
    const pids: number[] = []
    for (const i of [1, 2]) {
      pids.push(Number((await many.waitFor(new RegExp(`^\\[${i}\\] weave w-${i} on \\S+ \\(pid (\\d+)\\)`, 'm')))[1]))
    }
    for (const i of [1, 2]) {
      const err = (await weaveAt(join(dir, `w-${i}.db`)).catch((e: unknown) => e)) as JournalOwned
      expect(err).toBeInstanceOf(JournalOwned)
      expect(err.message).toContain(`a weave in pid ${pids[i - 1]} on host`)
    }
    many.child.kill('SIGTERM')
    expect((await many.done).code, many.stderr).toBe(0)
    for (const i of [1, 2]) await (await weaveAt(join(dir, `w-${i}.db`))).close()
  }, SLOW)
})

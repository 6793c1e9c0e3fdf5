/**
 * The `raiment` CLI, run as real child processes (`node --conditions=raiment-source bin/raiment.js`)
 * in temporary directories, with --threads pointing at the repository's example threads.
 * Synchronisation is on the children's output, never on sleeps.
 */
import { afterAll, describe, expect, test } from 'vitest'
import Database from 'better-sqlite3'
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const BIN = join(ROOT, 'bin', 'raiment.js')
const THREADS = join(ROOT, 'threads')

const dirs: string[] = []
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'raiment-cli-'))
  dirs.push(d)
  return d
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})

interface Done {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

/** A running `raiment` child whose output can be waited on. */
class Cli {
  readonly child: ChildProcessWithoutNullStreams
  stdout = ''
  stderr = ''
  readonly done: Promise<Done>
  #waiters: Array<() => void> = []

  constructor(args: string[], cwd: string, viaShell = false) {
    const argv = [process.execPath, '--conditions=raiment-source', BIN, ...args]
    // Through a shell that stays the parent (as `npm start` runs its script), when asked.
    this.child = viaShell
      ? spawn('sh', ['-c', `${argv.map((a) => `'${a}'`).join(' ')}; true`], { cwd, env: { ...process.env, RAIMENT_DEBUG: '' } })
      : spawn(argv[0]!, argv.slice(1), { cwd, env: { ...process.env, RAIMENT_DEBUG: '' } })
    this.child.stdout.setEncoding('utf8').on('data', (s: string) => {
      this.stdout += s
      this.#wake()
    })
    this.child.stderr.setEncoding('utf8').on('data', (s: string) => {
      this.stderr += s
      this.#wake()
    })
    this.done = new Promise((resolve) => {
      this.child.on('close', (code, signal) => {
        this.#wake()
        resolve({ code, signal, stdout: this.stdout, stderr: this.stderr })
      })
    })
  }

  #wake(): void {
    for (const w of this.#waiters.splice(0)) w()
  }

  /** Resolves with the first match of `re` in stdout; rejects if the child exits first, or after 60 s. */
  async waitFor(re: RegExp, ms = 60_000): Promise<RegExpMatchArray> {
    const deadline = Date.now() + ms
    for (;;) {
      const m = this.stdout.match(re)
      if (m) return m
      const exited = this.child.exitCode !== null || this.child.signalCode !== null
      if (exited || Date.now() > deadline) {
        throw new Error(`the child ${exited ? 'exited' : 'did not print'} ${re}\nstdout:\n${this.stdout}\nstderr:\n${this.stderr}`)
      }
      await new Promise<void>((r) => {
        this.#waiters.push(r)
        setTimeout(r, deadline - Date.now() + 10).unref()
      })
    }
  }
}

/** Runs `raiment ...args` in `cwd` to completion. */
function raiment(cwd: string, ...args: string[]): Promise<Done> {
  return new Cli(args, cwd).done
}

/** stderr holds exactly one line, the error, and it starts with `raiment: `. */
function expectOneLineError(r: Done, re: RegExp): void {
  expect(r.code, r.stderr).not.toBe(0)
  const lines = r.stderr.trimEnd().split('\n')
  expect(lines, r.stderr).toHaveLength(1)
  expect(lines[0]).toMatch(/^raiment: /)
  expect(lines[0]).toMatch(re)
}

/**
 * Waits until `sql` returns a row from the journal at `dir/raiment.db` (read-only, beside the
 * weave that writes it): synchronisation on journal state, checked every 20 ms, up to 60 s.
 */
async function untilRow(dir: string, sql: string, ...params: unknown[]): Promise<unknown> {
  const deadline = Date.now() + 60_000
  for (;;) {
    const db = new Database(join(dir, 'raiment.db'), { readonly: true, fileMustExist: true })
    try {
      const row = db.prepare(sql).get(...params)
      if (row !== undefined) return row
    } finally {
      db.close()
    }
    if (Date.now() > deadline) throw new Error(`no row for ${sql} ${JSON.stringify(params)} within 60 s`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

/** Row counts of the tables a send can write. */
function messageRows(dir: string): Record<string, number> {
  const db = new Database(join(dir, 'raiment.db'), { readonly: true, fileMustExist: true })
  try {
    return Object.fromEntries(['inbox', 'dead_letters', 'control'].map((t) => [t, (db.prepare(`SELECT count(*) AS n FROM ${t}`).get() as { n: number }).n]))
  } finally {
    db.close()
  }
}

/** The results table the demo prints last. */
function resultsTable(stdout: string): string {
  const at = stdout.indexOf('Results:')
  expect(at, stdout).toBeGreaterThan(-1)
  return stdout.slice(at).split('\n\n')[0]!.split('\n').slice(1).join('\n')
}

const T = ['--threads', THREADS]
/** Every test starts several Node processes, each loading TypeScript through tsx. */
const SLOW = 180_000

describe('raiment CLI', () => {
  test.concurrent('spawn --wait, ps, show, dump and replay work on one journal', async () => {
    const dir = tempDir()
    const greet = await raiment(dir, 'spawn', 'greet', '{"name":"ada"}', '--wait', ...T)
    expect(greet.code, greet.stderr).toBe(0)
    expect(JSON.parse(greet.stdout)).toEqual({ greeted: 'ada', greeting: 'hello ada' })
    const id = /spawned ([^\s;]+)/.exec(greet.stderr)![1]!

    const checkout = await raiment(dir, 'spawn', 'checkout', '{"order":7,"cents":500,"limit":100}', '--wait', ...T)
    expect(checkout.code).toBe(1)
    expect(checkout.stderr).toMatch(/^raiment: RAIMENT_THREAD_FAILED: thread \S+ failed: PaymentDeclined: order 7: card declined/m)
    const failed = /spawned ([^\s;]+)/.exec(checkout.stderr)![1]!
    const dumpFile = /\(dump: (.+)\)/.exec(checkout.stderr)![1]!
    expect(existsSync(join(dir, dumpFile))).toBe(true)

    const [ps, psDone, psType, show, dump] = await Promise.all([
      raiment(dir, 'ps'),
      raiment(dir, 'ps', '--status', 'done'),
      raiment(dir, 'ps', '--type', 'checkout', '--tree'),
      raiment(dir, 'show', id),
      raiment(dir, 'dump', id, '-o', 'greet.json'),
    ])
    expect(ps.code).toBe(0)
    expect(ps.stdout).toMatch(/^ID\s+TYPE\s+STATUS\s+AGE\s+CALLS/)
    expect(ps.stdout).toMatch(new RegExp(`^${id}\\s+greet\\s+done\\s+\\d+[smhd]\\s+6\\b`, 'm'))
    expect(ps.stdout).toMatch(new RegExp(`^${failed}\\s+checkout\\s+failed\\s+\\d+[smhd]\\s+8\\b`, 'm'))
    expect(psDone.stdout).toContain(id)
    expect(psDone.stdout).not.toContain(failed)
    expect(psType.stdout).toContain(failed)
    expect(psType.stdout).not.toContain(`${id} `)

    expect(show.code).toBe(0)
    expect(show.stdout).toMatch(/^SEQ\s+STARTED\s+CALL\s+ARGS\s+OUTCOME\s+MS\s+OK\s+VIA/m)
    expect(show.stdout).toMatch(/^0\s+\d{4}-\d\d-\d\dT[\d:.]+Z\s+clock\.now\s+\[\]\s+\d+\s+[\d.]+\s+ok$/m)
    expect(show.stdout).toMatch(/log\.info\s+\["hello ada",/)
    expect(show.stdout).toMatch(/^result {"greeted":"ada","greeting":"hello ada"}$/m)

    expect(dump.code).toBe(0)
    expect(dump.stderr).toMatch(/wrote the dump of \S+ to greet\.json$/m)
    const stdoutDump = await raiment(dir, 'dump', id)
    expect(readFileSync(join(dir, 'greet.json'), 'utf8')).toBe(stdoutDump.stdout)
    // Written again over it: it says so.
    expect((await raiment(dir, 'dump', id, '-o', 'greet.json')).stderr).toMatch(/wrote the dump of \S+ to greet\.json \(in place of the file there\)$/m)
    expect(JSON.parse(stdoutDump.stdout).json.thread).toMatchObject({ id, type: 'greet', status: 'done' })

    // A dump whose params were changed makes the thread ask for something the record lacks.
    writeFileSync(join(dir, 'edited.json'), readFileSync(join(dir, 'greet.json'), 'utf8').replace('"name": "ada"', '"name": "bob"'))
    const [same, reproduced, diverged] = await Promise.all([
      raiment(dir, 'replay', 'greet.json', ...T),
      raiment(dir, 'replay', dumpFile, ...T),
      raiment(dir, 'replay', 'edited.json', ...T),
    ])
    expect(same.code, same.stderr).toBe(0)
    expect(same.stdout).toContain('{"greeted":"ada","greeting":"hello ada"}\nwhich equals the recorded result')
    expect(reproduced.code, reproduced.stderr).toBe(0)
    expect(reproduced.stdout).toMatch(/threw:\nPaymentDeclined: order 7: card declined.*\nwhich is the recorded error/)
    expect(diverged.code).toBe(1)
    expect(diverged.stdout).toMatch(/diverged from the record/)
    expect(diverged.stdout).toMatch(/log\.info\("hello bob"/)
  }, SLOW)

  test.concurrent('bad input: a non-zero exit and a one-line cause', async () => {
    const dir = tempDir()
    const made = await raiment(dir, 'spawn', 'greet', '{"name":"ada"}', ...T)
    expect(made.code, made.stderr).toBe(0)
    const target = made.stdout.trim()
    const [malformed, unknownType, noThreads, unknownId, unknownKill, unknownDump, badStatus, usage, badMessage, badString, badLimit, sendUsage, noDump] = await Promise.all([
      raiment(dir, 'spawn', 'greet', '{name: ada}', ...T),
      raiment(dir, 'spawn', 'greeet', ...T),
      raiment(dir, 'spawn', 'greet'),
      raiment(dir, 'show', 'nope/1'),
      raiment(dir, 'kill', 'nope/1'),
      raiment(dir, 'dump', 'nope/1'),
      raiment(dir, 'ps', '--status', 'sleeping'),
      raiment(dir, 'spawn'),
      raiment(dir, 'send', target, '{hello: world}'),
      raiment(dir, 'send', 'ear', 'hi'),
      raiment(dir, 'dead-letters', '--limit', '0'),
      raiment(dir, 'send', target),
      raiment(dir, 'replay', 'missing.json', ...T),
    ])
    expectOneLineError(malformed, /PARAMS_JSON is not valid JSON \(.*JSON.*\).*e\.g\. raiment spawn greet '\{"name":"ada"\}'/)
    // The built-in raiment/supervisor is spawnable, so it is among the known types.
    expectOneLineError(unknownType, /unknown thread type 'greeet' \(did you mean 'greet'\?\); known types: checkout, greet, inventory, listener, order-saga, .*, raiment\/supervisor\. /)
    expectOneLineError(noThreads, /no directory 'threads'; pass --threads DIR/)
    expectOneLineError(unknownId, /no thread with id 'nope\/1'/)
    expectOneLineError(unknownKill, /RAIMENT_UNKNOWN_THREAD: no thread with id 'nope\/1' in this journal: it is a thread of weave 'nope' \(this journal's is '[^']+'\); kill it with that weave's journal \(raiment kill nope\/1 --db FILE\)/)
    expectOneLineError(unknownDump, /no thread with id 'nope\/1'/)
    expectOneLineError(badStatus, /--status must be one of pending, running, done, failed, killed/)
    expectOneLineError(usage, /missing required argument 'type'/)
    expect(usage.code).toBe(2)
    expectOneLineError(badMessage, /MESSAGE_JSON is not valid JSON \(.*JSON.*\): "\{hello: world\}"; nothing was sent\. .*e\.g\. raiment send \S+ '\{"hello":"world"\}'/)
    expectOneLineError(badString, /MESSAGE_JSON is not valid JSON .*"hi".*\(a string is '"hi"'\)/)
    expectOneLineError(badLimit, /--limit must be a whole number from 1 up, got '0'/)
    expectOneLineError(sendUsage, /missing required argument 'message_json'/)
    expect(sendUsage.code).toBe(2)
    expectOneLineError(noDump, /RAIMENT_INVALID_DUMP: missing\.json is not a usable Raiment dump: there is no such file; give the path of a dump \(raiment dump ID -o FILE writes one\)$/)
    // The malformed sends wrote nothing: no inbox row, no dead letter, no request to a weave.
    expect(messageRows(dir)).toEqual({ inbox: 0, dead_letters: 0, control: 0 })
    expect((await raiment(dir, 'dead-letters')).stdout).toBe('no dead letters in raiment.db\n')

    // Nothing was recorded by the failed commands: the journal still holds the one thread.
    const ps = await raiment(dir, 'ps')
    expect(ps.stdout.trim().split('\n')).toHaveLength(2)

    for (const cmd of ['start', 'spawn', 'ps', 'show', 'dump', 'replay', 'kill', 'send', 'dead-letters', 'demo']) {
      const help = await raiment(dir, cmd, '--help')
      expect(help.code, cmd).toBe(0)
      expect(help.stdout, cmd).toMatch(new RegExp(`^Usage: raiment ${cmd}`))
    }
  }, SLOW)

  test.concurrent('a file that is not a Raiment journal is refused and left byte for byte as it was', async () => {
    const dir = tempDir()
    writeFileSync(join(dir, 'notes.txt'), 'these are my notes, not a database\n')
    const other = new Database(join(dir, 'app.db'))
    other.exec("CREATE TABLE users (name TEXT); INSERT INTO users VALUES ('ada')")
    other.close()
    const before = new Map(readdirSync(dir).map((f) => [f, readFileSync(join(dir, f))]))
    const runs: Array<Promise<Done>> = []
    for (const db of ['notes.txt', 'app.db']) {
      runs.push(
        raiment(dir, 'ps', '--db', db),
        raiment(dir, 'show', 'x/1', '--db', db),
        raiment(dir, 'dump', 'x/1', '--db', db),
        raiment(dir, 'kill', 'x/1', '--db', db),
        raiment(dir, 'send', 'x/1', '{}', '--db', db),
        raiment(dir, 'dead-letters', '--db', db),
        raiment(dir, 'spawn', 'greet', '{"name":"ada"}', '--db', db, ...T),
        raiment(dir, 'start', '--db', db, ...T),
      )
    }
    for (const r of await Promise.all(runs)) expectOneLineError(r, /is not a Raiment journal .*left untouched/)
    expect(readdirSync(dir).sort()).toEqual([...before.keys()].sort())
    for (const [f, bytes] of before) expect(readFileSync(join(dir, f)).equals(bytes), f).toBe(true)

    // A missing journal is an error for the commands that only read it, and is not created.
    const missing = await Promise.all([
      raiment(dir, 'ps', '--db', 'none.db'),
      raiment(dir, 'kill', 'x/1', '--db', 'none.db'),
      raiment(dir, 'send', 'x/1', '{}', '--db', 'none.db'),
      raiment(dir, 'dead-letters', '--db', 'none.db'),
    ])
    for (const r of missing) expectOneLineError(r, /no journal at none\.db/)
    expect(existsSync(join(dir, 'none.db'))).toBe(false)
  }, SLOW)

  test.concurrent('a running `raiment start` picks up spawns and kills, and exits 0 on SIGTERM', async () => {
    const dir = tempDir()
    const weave = new Cli(['start', ...T, '--durability', 'batched'], dir)
    try {
      await weave.waitFor(/^weave \S+ on raiment\.db \(pid \d+\): \d+ thread types, resumed 0 threads$/m)

      const spawned = await raiment(dir, 'spawn', 'greet', '{"name":"ada"}', ...T)
      expect(spawned.code, spawned.stderr).toBe(0)
      const id = spawned.stdout.trim()
      expect(spawned.stderr).toBe('')
      await weave.waitFor(new RegExp(`^done ${id} greet → {"greeted":"ada","greeting":"hello ada"}$`, 'm'))

      const waited = await raiment(dir, 'spawn', 'greet', '{"name":"grace"}', '--wait', ...T)
      expect(waited.code, waited.stderr).toBe(0)
      expect(JSON.parse(waited.stdout)).toEqual({ greeted: 'grace', greeting: 'hello grace' })
      expect(waited.stderr).toMatch(/on the weave running on raiment\.db/)

      const sleeper = (await raiment(dir, 'spawn', 'sleeper', '{"steps":100,"ms":1000}', ...T)).stdout.trim()
      await weave.waitFor(new RegExp(`^started ${sleeper} sleeper$`, 'm'))
      const killed = await raiment(dir, 'kill', sleeper)
      expect(killed.code, killed.stderr).toBe(0)
      expect(killed.stdout.trim()).toBe(`killed ${sleeper}`)
      await weave.waitFor(new RegExp(`^killed ${sleeper} sleeper$`, 'm'))
      const again = await raiment(dir, 'kill', sleeper)
      expect(again.stdout.trim()).toBe(`${sleeper} had already ended (killed)`)

      // A second weave on the same journal is refused while this one runs.
      expectOneLineError(await raiment(dir, 'start', ...T), new RegExp(`raiment\\.db is already run by a weave in pid ${weave.child.pid} `))

      weave.child.kill('SIGTERM')
      const end = await weave.done
      expect(end.code, end.stderr).toBe(0)
      const ps = await raiment(dir, 'ps')
      expect(ps.stdout).toMatch(new RegExp(`^${sleeper}\\s+sleeper\\s+killed`, 'm'))
    } finally {
      weave.child.kill('SIGKILL')
    }
  }, SLOW)

  test.concurrent('spawn with no weave running records a pending thread that `start` runs', async () => {
    const dir = tempDir()
    const spawned = await raiment(dir, 'spawn', 'sleeper', '{"steps":1,"ms":10}', ...T)
    expect(spawned.code, spawned.stderr).toBe(0)
    const id = spawned.stdout.trim()
    expect(spawned.stderr).toMatch(/no weave runs on raiment\.db; .* starts when one does/)
    expect((await raiment(dir, 'ps', '--status', 'pending')).stdout).toMatch(new RegExp(`^${id}\\s+sleeper\\s+pending`, 'm'))
    const weave = new Cli(['start', ...T], dir)
    try {
      await weave.waitFor(new RegExp(`^done ${id} sleeper → {"steps":1,"slept":10}$`, 'm'))
      weave.child.kill('SIGINT')
      expect((await weave.done).code).toBe(0)
    } finally {
      weave.child.kill('SIGKILL')
    }
  }, SLOW)

  test.concurrent('the demo, SIGKILLed after its first progress line and run again, resumes and prints the same results', async () => {
    const whole = tempDir()
    const broken = tempDir()
    const uninterrupted = raiment(whole, 'demo', ...T)

    const first = new Cli(['demo', ...T], broken)
    await first.waitFor(/^started \S+ \S+$/m)
    first.child.kill('SIGKILL')
    expect((await first.done).signal).toBe('SIGKILL')
    // The dump of a thread cut off mid-run replays up to where its record ends.
    const ps = await raiment(broken, 'ps', '--type', 'sleeper')
    const sleeper = /^(\S+)\s+sleeper\s+running/m.exec(ps.stdout)![1]!
    expect((await raiment(broken, 'dump', sleeper, '-o', 'cut.json')).code).toBe(0)
    const cut = await raiment(broken, 'replay', 'cut.json', ...T)
    expect(cut.code, cut.stdout + cut.stderr).toBe(0)
    expect(cut.stdout).toMatch(/where the record ends: the thread was still running when it was dumped/)

    const second = await raiment(broken, 'demo', ...T)
    expect(second.code, second.stderr).toBe(0)
    expect(second.stdout).toMatch(/^resumed [1-8] threads? of the demo begun earlier/m)
    expect(second.stdout).not.toMatch(/^spawned/m)

    const full = await uninterrupted
    expect(full.code, full.stderr).toBe(0)
    expect(full.stdout).not.toMatch(/resumed/)
    // What the demo did, in words a first-time user reads: how many threads, of which types.
    expect(full.stdout).toMatch(/^spawned 8 threads of 7 types: greet, inventory, sleeper, checkout, ping-pong, worker-pool, order-saga \(their log lines go to stderr\)$/m)
    expect(full.stdout).toMatch(/^inspect a thread: npx raiment show \S+$/m)
    const table = resultsTable(full.stdout)
    expect(table.split('\n')).toHaveLength(9)
    expect(table).toMatch(/greet\s+done\s+{"greeted":"ada","greeting":"hello ada"}/)
    expect(table).toMatch(/sleeper\s+done\s+{"steps":6,"slept":6000}/)
    expect(table).toMatch(/checkout\s+failed\s+PaymentDeclined: order 42: card declined/)
    expect(table).toMatch(/ping-pong\s+done\s+{"rounds":20,"pongs":20,"partner":{"served":20}}/)
    expect(table).toMatch(/worker-pool\s+done\s+{"jobs":12,"done":\[1,2,3,4,5,6,7,8,9,10,11,12\],"sum":650,"crashes":3,"restarts":3}/)
    expect(table).toMatch(/order-saga\s+done\s+{"order":"A-100","status":"completed","steps":\["reserve","charge","ship"\]}/)
    expect(table).toMatch(/order-saga\s+done\s+{"order":"A-101","status":"compensated","failedAt":"ship",.*"undone":\["refund","release"\]}/)
    expect(resultsTable(second.stdout)).toBe(table)

    // ps --tree: the pool's supervisor under the pool, its workers (crashed and restarted) under it.
    const tree = (await raiment(whole, 'ps', '--tree')).stdout
    expect(tree).toMatch(/^\S+\s+ping-pong\s+done.*\n {2}\S+\s+ping-pong\/pong\s+done/m)
    expect(tree).toMatch(/^\S+\s+worker-pool\s+done.*\n {2}\S+\s+raiment\/supervisor\s+done.*\n( {4}\S+\s+worker-pool\/worker\s+(done|failed).*\n){6}/m)

    // The failed thread's dump replays to the same error, as the demo says.
    const cmd = /npx raiment (replay .+)$/m.exec(second.stdout)![1]!.split(' ')
    const replayed = await raiment(broken, ...cmd)
    expect(replayed.code, replayed.stdout + replayed.stderr).toBe(0)
    expect(replayed.stdout).toMatch(/which is the recorded error/)
  }, SLOW)

  test.concurrent('the demo dies with the command that launched it, so running it again resumes', async () => {
    const dir = tempDir()
    // `npm start` killed with SIGKILL leaves its `sh -c` and the demo behind.
    const first = new Cli(['demo', ...T], dir, true)
    await first.waitFor(/^started \S+ \S+$/m)
    first.child.kill('SIGKILL')
    // The demo's stdout closes when the demo itself has died.
    await first.done
    const second = await raiment(dir, 'demo', ...T)
    expect(second.code, second.stderr).toBe(0)
    expect(second.stdout).toMatch(/^resumed [1-8] threads? of the demo begun earlier/m)
  }, SLOW)

  test.concurrent('`raiment send` to a running weave: received by id and by name; undeliverable messages are listed by `raiment dead-letters`', async () => {
    const dir = tempDir()
    const weave = new Cli(['start', ...T, '--durability', 'batched'], dir)
    try {
      await weave.waitFor(/^weave \S+ on raiment\.db/m)
      const [a, b] = await Promise.all([raiment(dir, 'spawn', 'listener', ...T), raiment(dir, 'spawn', 'listener', '{"name":"ear"}', ...T)])
      const byId = a.stdout.trim()
      const named = b.stdout.trim()
      await weave.waitFor(new RegExp(`^started ${byId} listener$`, 'm'))
      await untilRow(dir, 'SELECT 1 FROM names WHERE name = ? AND thread = ?', 'ear', named)

      const [toId, toName] = await Promise.all([raiment(dir, 'send', byId, '{"hello":"world"}'), raiment(dir, 'send', 'ear', '"hi"')])
      expect(toId.code, toId.stderr).toBe(0)
      expect(JSON.parse(toId.stdout)).toEqual({ delivered: true, to: byId })
      expect(toName.code, toName.stderr).toBe(0)
      expect(JSON.parse(toName.stdout)).toEqual({ delivered: true, to: named })
      await weave.waitFor(new RegExp(`^done ${byId} listener → {"received":{"hello":"world"}}$`, 'm'))
      await weave.waitFor(new RegExp(`^done ${named} listener → {"received":"hi"}$`, 'm'))

      // Both have ended, and the name is free again: these go to the dead letters.
      const [again, noName] = await Promise.all([raiment(dir, 'send', byId, '{"again":1}'), raiment(dir, 'send', 'ear', '[1,2]')])
      expect(JSON.parse(again.stdout)).toEqual({ delivered: false, to: byId, reason: `thread ${byId} has ended` })
      expectOneLineError(again, new RegExp(`not delivered to ${byId}: thread ${byId} has ended; .*raiment dead-letters`))
      expect(JSON.parse(noName.stdout)).toEqual({ delivered: false, to: 'ear', reason: "no thread is registered as 'ear'" })

      const letters = await raiment(dir, 'dead-letters')
      expect(letters.code, letters.stderr).toBe(0)
      const lines = letters.stdout.trimEnd().split('\n')
      expect(lines[0]).toMatch(/^N\s+AT\s+SENDER\s+RECIPIENT\s+REASON\s+MESSAGE$/)
      expect(lines).toHaveLength(3)
      const rows = lines.slice(1).sort()
      expect(rows.find((l) => l.includes(byId))).toMatch(new RegExp(`^\\d+\\s+\\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z\\s+\\(outside\\)\\s+${byId}\\s+thread ${byId} has ended\\s+{"again":1}$`))
      expect(rows.find((l) => l.includes('ear'))).toMatch(/\(outside\)\s+ear\s+no thread is registered as 'ear'\s+\[1,2\]$/)
      const last = await raiment(dir, 'dead-letters', '--limit', '1')
      expect(last.stdout.trimEnd().split('\n')).toHaveLength(2)
      expect(last.stderr).toMatch(/the last 1 of 2 dead letters/)

      weave.child.kill('SIGTERM')
      expect((await weave.done).code).toBe(0)
    } finally {
      weave.child.kill('SIGKILL')
    }
  }, SLOW)

  test.concurrent('`raiment send` with no weave running puts the message in the inbox, and `start` delivers it', async () => {
    const dir = tempDir()
    const id = (await raiment(dir, 'spawn', 'listener', ...T)).stdout.trim()
    const [sent, lost] = await Promise.all([raiment(dir, 'send', id, '{"n":1}'), raiment(dir, 'send', 'nobody', '{"n":2}')])
    expect(sent.code, sent.stderr).toBe(0)
    expect(JSON.parse(sent.stdout)).toEqual({ delivered: true, to: id })
    expect(sent.stderr).toMatch(new RegExp(`^no weave runs on raiment\\.db; the message waits in the inbox of ${id} until one does`))
    expect(JSON.parse(lost.stdout)).toEqual({ delivered: false, to: 'nobody', reason: "no thread is registered as 'nobody'" })
    expectOneLineError(lost, /not delivered to nobody: no thread is registered as 'nobody'; the message is kept in the dead letters/)
    expect(messageRows(dir)).toEqual({ inbox: 1, dead_letters: 1, control: 0 })

    const weave = new Cli(['start', ...T], dir)
    try {
      await weave.waitFor(new RegExp(`^done ${id} listener → {"received":{"n":1}}$`, 'm'))
      weave.child.kill('SIGINT')
      expect((await weave.done).code).toBe(0)
    } finally {
      weave.child.kill('SIGKILL')
    }
    expect((await raiment(dir, 'dead-letters')).stdout).toMatch(/\(outside\)\s+nobody\s+no thread is registered as 'nobody'\s+{"n":2}$/m)
  }, SLOW)
})

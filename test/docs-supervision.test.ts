/**
 * The supervision example of docs/messages-and-supervision.md runs as written: its `npx raiment`
 * commands, run in order (as `node bin/raiment.js`, which is what `npx raiment` runs) in a
 * directory that holds the repository's threads/, beside a running `raiment start`, spawn a
 * supervisor of the example thread `tally`, which restarts it after it fails, and which ends done;
 * and the thread code the page shows is threads/tally.ts. Between two commands the test waits for
 * what the page says happens (on the journal's state, as a reader would at the terminal).
 */
import { spawn } from 'node:child_process'
import { readFileSync, symlinkSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import Database from 'better-sqlite3'
import { expect, it } from 'vitest'
import { decodeValue } from '../src/encoding.js'
import { tempDir } from './support/tmp.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const BIN = join(ROOT, 'bin', 'raiment.js')
const PAGE = readFileSync(join(ROOT, 'docs', 'messages-and-supervision.md'), 'utf8')

/** The words of a shell command line: single quotes kept together, a `#` comment dropped. */
function words(line: string): string[] {
  const out: string[] = []
  let cur: string | null = null
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]!
    if (ch === "'") {
      const end = line.indexOf("'", i + 1)
      cur = (cur ?? '') + line.slice(i + 1, end)
      i = end
    } else if (ch === ' ') {
      if (cur !== null) out.push(cur)
      cur = null
    } else if (ch === '#' && cur === null) break
    else cur = (cur ?? '') + ch
  }
  if (cur !== null) out.push(cur)
  return out
}

/** The `npx raiment` commands of the first sh block after `heading`, as argument lists. */
function commands(heading: string): string[][] {
  const section = PAGE.slice(PAGE.indexOf(heading))
  const block = /```sh\n([\s\S]*?)```/.exec(section)![1]!
  return block
    .split('\n')
    .filter((l) => l.startsWith('npx raiment '))
    .map((l) => words(l).slice(2))
}

interface Run {
  code: number | null
  stdout: string
  stderr: string
}

/** Runs `raiment ...args` in `cwd`; `printed(re)` resolves when its stdout matches `re`. */
function raiment(cwd: string, args: string[]): { done: Promise<Run>; printed: (re: RegExp) => Promise<void>; kill: () => void } {
  const child = spawn(process.execPath, ['--conditions=raiment-source', BIN, ...args], { cwd, env: { ...process.env, RAIMENT_DEBUG: '' } })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s))
  child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s))
  const done = new Promise<Run>((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })))
  const printed = (re: RegExp) =>
    new Promise<void>((resolve, reject) => {
      const check = (): void => void (re.test(stdout) && resolve())
      check()
      child.stdout.on('data', check)
      void done.then(() => reject(new Error(`raiment ${args.join(' ')} exited without printing ${re}: ${stdout} ${stderr}`)))
    })
  return { done, printed, kill: () => void child.kill('SIGTERM') }
}

/** Polls the journal (read-only, beside the weave) every 20 ms until `sql` returns a row. */
async function until<T>(dir: string, what: string, sql: string, ...params: unknown[]): Promise<T> {
  const deadline = Date.now() + 60_000
  for (;;) {
    const db = new Database(join(dir, 'raiment.db'), { readonly: true, fileMustExist: true })
    try {
      const row = db.prepare(sql).get(...params) as T | undefined
      if (row !== undefined) return row
    } finally {
      db.close()
    }
    if (Date.now() > deadline) throw new Error(`${what}: not within 60 s`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

it('the code shown is the example thread threads/tally.ts', () => {
  const file = readFileSync(join(ROOT, 'threads', 'tally.ts'), 'utf8')
  const shown = /```ts\n([\s\S]*?)```/.exec(PAGE)![1]!
  expect(file.endsWith(shown)).toBe(true)
})

it('the supervisor example runs as written', async () => {
  const cmds = commands('## Supervisors')
  expect(cmds.map((c) => `${c[0]} ${c[1]}`)).toEqual(['spawn raiment/supervisor', 'send tally', 'send tally', 'send tally', 'send tally', 'ps --tree'])
  const dir = tempDir('raiment-doc-')
  // A clone of the repository, as far as the commands can tell: ./threads, and ./raiment.db made here.
  symlinkSync(join(ROOT, 'threads'), join(dir, 'threads'))
  const weave = raiment(dir, ['start'])
  try {
    await weave.printed(/^weave /m)
    const tally = () => until<{ thread: string }>(dir, 'tally registered', "SELECT thread FROM names WHERE name = 'tally'")
    let holder = ''
    for (const args of cmds) {
      const r = await raiment(dir, args).done
      expect(r.code, `raiment ${args.join(' ')}: ${r.stderr}`).toBe(0)
      if (args[0] === 'spawn') holder = (await tally()).thread
      if (args[2]?.includes('"fail"')) {
        const was = holder
        holder = (await until<{ thread: string }>(dir, 'a new tally', "SELECT thread FROM names WHERE name = 'tally' AND thread != ?", was)).thread
      }
      if (args[2]?.includes('"stop"')) await until(dir, 'the supervisor done', "SELECT id FROM threads WHERE type = 'raiment/supervisor' AND status = 'done'")
    }
    const db = new Database(join(dir, 'raiment.db'), { readonly: true })
    try {
      const rows = db.prepare('SELECT type, status, outcome FROM threads ORDER BY created, id').all() as Array<{ type: string; status: string; outcome: string | null }>
      expect(rows.map((t) => [t.type, t.status])).toEqual([
        ['raiment/supervisor', 'done'],
        ['tally', 'failed'],
        ['tally', 'done'],
      ])
      expect(decodeValue(rows[0]!.outcome!)).toEqual({ restarted: 1 })
      expect(decodeValue(rows[2]!.outcome!)).toBe(5)
    } finally {
      db.close()
    }
  } finally {
    weave.kill()
    await weave.done
  }
}, 120_000)

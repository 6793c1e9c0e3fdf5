/**
 * `raiment` as a real child process (`node --conditions=raiment-source bin/raiment.js`, or, as a
 * user runs it, plain `node bin/raiment.js`), or a shell pipeline that runs it, with its output
 * collected. A test can wait for a line of its output (an event) and act on the process then.
 * The one runner of the CLI for the test suites.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const ROOT = fileURLToPath(new URL('../../', import.meta.url))
export const BIN = join(ROOT, 'bin', 'raiment.js')
export const THREADS = join(ROOT, 'threads')

/** The command line that runs `raiment`, quoted for a POSIX shell. */
export const RAIMENT_SH = [process.execPath, '--conditions=raiment-source', BIN].map((a) => `'${a}'`).join(' ')

export interface Ended {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

export interface RaimentOptions {
  env?: Record<string, string>
  /** Its own process group (its pid is the group id), so a test can signal the group. */
  group?: boolean
  /**
   * As a user runs it: `node bin/raiment.js` with no flags, so the command sets up its own
   * loading (of the sources or `dist/`, and of `raiment` for the thread files it loads).
   */
  plain?: boolean
}

/** A running process whose output can be waited on. */
export class Running {
  readonly child: ChildProcess
  stdout = ''
  stderr = ''
  readonly ended: Promise<Ended>
  #wake: Array<() => void> = []

  constructor(child: ChildProcess) {
    this.child = child
    const take = (into: 'stdout' | 'stderr') => (s: string) => {
      this[into] += s
      for (const w of this.#wake.splice(0)) w()
    }
    child.stdout!.setEncoding('utf8').on('data', take('stdout'))
    child.stderr!.setEncoding('utf8').on('data', take('stderr'))
    this.ended = new Promise((resolve) =>
      child.on('close', (code, signal) => {
        for (const w of this.#wake.splice(0)) w()
        resolve({ code, signal, stdout: this.stdout, stderr: this.stderr })
      }),
    )
  }

  /** Resolves once `test` holds for stdout + stderr; rejects if the process ends first. */
  async until(test: (output: string) => boolean): Promise<void> {
    while (!test(this.stdout + this.stderr)) {
      if (this.child.exitCode !== null || this.child.signalCode !== null) {
        throw new Error(`the process ended first\nstdout:\n${this.stdout}\nstderr:\n${this.stderr}`)
      }
      await new Promise<void>((r) => this.#wake.push(r))
    }
  }
}

/** Starts `raiment ...args` in `cwd`. */
export function raimentProcess(cwd: string, args: readonly string[], o: RaimentOptions = {}): Running {
  const env = { ...process.env, RAIMENT_DEBUG: '', RAIMENT_AMQP_URL: '', ...o.env }
  const flags = o.plain === true ? [] : ['--conditions=raiment-source']
  return new Running(spawn(process.execPath, [...flags, BIN, ...args], { cwd, env, detached: o.group ?? false }))
}

/** Runs `raiment ...args` in `cwd` to its end. */
export function raiment(cwd: string, ...args: string[]): Promise<Ended> {
  return raimentProcess(cwd, args).ended
}

/** Runs `raiment ...args` in `cwd` to its end as a user runs it (plain `node bin/raiment.js`). */
export function raimentAsUser(cwd: string, ...args: string[]): Promise<Ended> {
  return raimentProcess(cwd, args, { plain: true }).ended
}

/** Runs a bash command line (with pipefail: a pipeline fails if any part fails) to its end. */
export function bash(cwd: string, line: string): Promise<Ended> {
  return new Running(spawn('bash', ['-o', 'pipefail', '-c', line], { cwd, env: { ...process.env, RAIMENT_DEBUG: '' } })).ended
}

/**
 * Runs a TypeScript script of test/support as a real child process (the way a weave runs in
 * production: its own Node.js process, its own SQLite connections), collects its stdout lines,
 * and can SIGKILL it when a line arrives. Synchronisation is on the child's output, never on time.
 */
import { spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'

export interface ChildRun {
  code: number | null
  signal: NodeJS.Signals | null
  lines: string[]
  stderr: string
  /** True when the test killed it (the kill condition was met before it exited). */
  killed: boolean
  /** performance.now() when each line arrived. */
  times: number[]
}

export interface ChildOptions {
  env?: Record<string, string>
  /** SIGKILL the child as soon as this returns true for a line (given the lines so far). */
  killWhen?: (line: string, lines: readonly string[]) => boolean
  /** Called for every line, as it arrives. */
  onLine?: (line: string) => void
}

const ROOT = fileURLToPath(new URL('../../', import.meta.url))

/** The path of a script in test/support. */
export function supportScript(name: string): string {
  return fileURLToPath(new URL(`./${name}`, import.meta.url))
}

export function runChild(script: string, args: string[], o: ChildOptions = {}): Promise<ChildRun> {
  const child = spawn(process.execPath, ['--conditions=raiment-source', '--import', 'tsx', script, ...args], {
    cwd: ROOT,
    env: { ...process.env, ...o.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const run: ChildRun = { code: null, signal: null, lines: [], stderr: '', killed: false, times: [] }
  child.stderr.setEncoding('utf8')
  child.stderr.on('data', (d: string) => (run.stderr += d))
  const rl = createInterface({ input: child.stdout })
  rl.on('line', (line) => {
    run.lines.push(line)
    run.times.push(performance.now())
    o.onLine?.(line)
    if (!run.killed && o.killWhen?.(line, run.lines)) {
      run.killed = true
      child.kill('SIGKILL')
    }
  })
  return new Promise((resolve, reject) => {
    child.on('error', reject)
    child.on('close', (code, signal) => {
      run.code = code
      run.signal = signal
      resolve(run)
    })
  })
}

/** A one-line account of a child run, for failure messages. */
export function describeRun(r: ChildRun): string {
  return `exit ${r.code ?? r.signal}${r.killed ? ' (killed by the test)' : ''}; last lines: ${r.lines.slice(-5).join(' | ')}; stderr: ${r.stderr.slice(-2000)}`
}

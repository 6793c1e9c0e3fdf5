/**
 * `raiment ARGS` as a user runs it: this checkout's bin/raiment.js in a plain `node` child, with
 * no flags (the command sets up its own loading), run to its end.
 */
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

export const ROOT = fileURLToPath(new URL('../..', import.meta.url))
export const BIN = join(ROOT, 'bin', 'raiment.js')
const run = promisify(execFile)

/** The exit code and output of `raiment ARGS` run in `cwd`. */
export async function raiment(args: string[], cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [BIN, ...args], { cwd, env: { ...process.env, RAIMENT_DEBUG: '' } })
    return { code: 0, stdout, stderr }
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string }
    return { code: err.code, stdout: err.stdout, stderr: err.stderr }
  }
}

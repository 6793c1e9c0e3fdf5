/**
 * A thread a reload keeps on its old code cannot be missed (src/old-code.ts): `raiment reload`
 * exits 2 with a line saying what a restart does to it and what to do, the weave's own log says
 * it (SIGHUP, --watch), `raiment ps` lists it as `running (old code)`, `raiment show` says why
 * (and `--json`, `oldCode`). Once a reload moves it to the new code, or the weave starts again,
 * none of that is said. Real weave processes on a real journal.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { raiment, raimentProcess } from './support/raiment-process.js'
import { tempDir } from './support/tmp.js'

const RAIMENT = new URL('../src/index.ts', import.meta.url).href

/** Logs `arg`, waits for a message, returns the version of its code with it. */
const waiter = (version: number, arg: number): string => `import { thread } from '${RAIMENT}'
export default thread({
  uses: ['log', 'mailbox'],
  async does() {
    await this.log.info('waiting', { arg: ${arg} })
    const m = await this.mailbox.receive()
    return { version: ${version}, m }
  },
})
`

function project(): { dir: string; put: (name: string, text: string) => void } {
  const dir = tempDir('raiment-old-code-')
  writeFileSync(join(dir, 'package.json'), '{ "type": "module" }\n')
  mkdirSync(join(dir, 'threads'))
  const put = (name: string, text: string): void => writeFileSync(join(dir, 'threads', name), text)
  put('stays.ts', waiter(1, 1))
  put('other.ts', waiter(1, 1))
  return { dir, put }
}

const statusOf = (ps: string, id: string): string | undefined => ps.split('\n').find((l) => l.startsWith(id + ' '))?.split(/ {2,}/)[2]

describe('threads a reload keeps on their old code', () => {
  it('raiment reload exits 2 and says what to do; ps, show and the weave log say it; a reload that moves it, or a restart, clears it', async () => {
    const { dir, put } = project()
    const weave = raimentProcess(dir, ['start', '--db', 'app.db', '--durability', 'sync'])
    let stays = ''
    try {
      await weave.until((out) => out.includes('weave '))
      stays = (await raiment(dir, 'spawn', 'stays', '--db', 'app.db')).stdout.trim()
      const other = (await raiment(dir, 'spawn', 'other', '--db', 'app.db')).stdout.trim()
      await weave.until((out) => (out.match(/ waiting /g) ?? []).length === 2)

      // A change before the wait: its record does not replay under it.
      put('stays.ts', waiter(2, 99))
      const r = await raiment(dir, 'reload', '--db', 'app.db')
      expect(r.code, r.stdout + r.stderr).toBe(2)
      expect(r.stdout).toContain(`kept ${stays}: diverges at entry 0`)
      expect(r.stdout).toContain(`warning: 1 thread runs old code a reload kept it on (${stays}), its record not replaying under the file on disk: a restart or a crash resumes it under that file, where it diverges and fails (or waits for code that replays it, under --on-divergence wait). Before a restart:`)
      // The weave's own log says it too (as for SIGHUP and --watch).
      await weave.until((out) => out.includes('runs old code a reload kept it on'))

      const ps = await raiment(dir, 'ps', '--db', 'app.db')
      expect(statusOf(ps.stdout, stays)).toBe('running (old code)')
      expect(statusOf(ps.stdout, other)).toBe('running')
      const show = await raiment(dir, 'show', stays, '--db', 'app.db')
      expect(show.stdout).toContain('running (old code): a reload kept it on the code it started with (diverges at entry 0')
      const json = JSON.parse((await raiment(dir, 'show', stays, '--json', '--db', 'app.db')).stdout) as { thread: { status: string; oldCode?: { why: string } } }
      expect(json.thread.status).toBe('running')
      expect(json.thread.oldCode?.why).toMatch(/^diverges at entry 0: log\.info differs/)
      const otherJson = JSON.parse((await raiment(dir, 'show', other, '--json', '--db', 'app.db')).stdout) as { thread: { oldCode?: unknown } }
      expect(otherJson.thread.oldCode).toBeUndefined()

      // A reload that changes nothing still says it: exit 2 while a thread runs old code.
      const again = await raiment(dir, 'reload', '--db', 'app.db')
      expect(again.code).toBe(2)
      expect(again.stdout).toContain('no thread file changed')
      expect(again.stdout).toContain(`warning: 1 thread runs old code a reload kept it on (${stays})`)

      // Code that replays its record: it moves, and nothing says old code any more.
      put('stays.ts', waiter(3, 1))
      const fixed = await raiment(dir, 'reload', '--db', 'app.db')
      expect(fixed.code, fixed.stdout + fixed.stderr).toBe(0)
      expect(fixed.stdout).toContain(`moved ${stays}`)
      expect(fixed.stdout).not.toContain('warning')
      expect(statusOf((await raiment(dir, 'ps', '--db', 'app.db')).stdout, stays)).toBe('running')

      // Kept again, then the weave is killed: the next start runs no old code.
      put('stays.ts', waiter(4, 7))
      expect((await raiment(dir, 'reload', '--db', 'app.db')).code).toBe(2)
      expect(statusOf((await raiment(dir, 'ps', '--db', 'app.db')).stdout, stays)).toBe('running (old code)')
      weave.child.kill('SIGKILL')
    } finally {
      await weave.ended
    }
    put('stays.ts', waiter(5, 1))
    const second = raimentProcess(dir, ['start', '--db', 'app.db', '--durability', 'sync'])
    try {
      await second.until((out) => out.includes('weave '))
      await second.until((out) => out.includes(`resumed ${stays}`))
      const ps = await raiment(dir, 'ps', '--db', 'app.db')
      expect(statusOf(ps.stdout, stays)).toBe('running')
      expect(ps.stdout).not.toContain('old code')
    } finally {
      second.child.kill('SIGTERM')
      await second.ended
    }
  })
})

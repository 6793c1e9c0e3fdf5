/**
 * `--on-divergence wait` (src/divergence-wait.ts): a thread whose record its changed code does
 * not replay as it resumes waits, nothing recorded, instead of failing for good; messages sent to
 * it wait in its inbox; a crash while it waits changes nothing; a reload of code that still
 * diverges leaves it waiting, one of code that replays it resumes it, and it goes on (its saga's
 * compensation included). Real weave processes, killed with SIGKILL, on a real journal.
 */
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { raiment, raimentProcess } from './support/raiment-process.js'
import { tempDir } from './support/tmp.js'

const RAIMENT = new URL('../src/index.ts', import.meta.url).href

/** A saga: reserves, waits for the payment's answer, releases what it reserved if it failed. */
const order = (version: number, n: number): string => `import { thread } from '${RAIMENT}'
export default thread({
  uses: ['log', 'mailbox'],
  async does() {
    await this.log.info('reserve', { n: ${n} })
    try {
      const m = await this.mailbox.receive()
      if (m === 'declined') throw new Error('payment declined')
      return { version: ${version}, m }
    } catch (e) {
      await this.log.info('release', { n: ${n}, version: ${version} })
      throw e
    }
  },
})
`

function project(): { dir: string; put: (text: string) => void } {
  const dir = tempDir('raiment-div-wait-')
  writeFileSync(join(dir, 'package.json'), '{ "type": "module" }\n')
  mkdirSync(join(dir, 'threads'))
  const put = (text: string): void => writeFileSync(join(dir, 'threads', 'order.ts'), text)
  put(order(1, 1))
  return { dir, put }
}

const statusOf = (ps: string, id: string): string | undefined => ps.split('\n').find((l) => l.startsWith(id + ' '))?.split(/ {2,}/)[2]
const START = ['start', '--db', 'app.db', '--durability', 'sync', '--on-divergence', 'wait']

describe('on-divergence wait', () => {
  it('a diverged thread waits through crashes and reloads of code that still diverges, then resumes on code that replays it and runs its compensation', async () => {
    const { dir, put } = project()
    const first = raimentProcess(dir, START)
    let id = ''
    try {
      await first.until((out) => out.includes('weave '))
      id = (await raiment(dir, 'spawn', 'order', '--db', 'app.db')).stdout.trim()
      await first.until((out) => out.includes(' reserve '))
      first.child.kill('SIGKILL')
    } finally {
      // (Killed here too when an expectation failed: else the test waits for its end to time out.)
      first.child.kill('SIGKILL')
      await first.ended
    }

    // A deploy changes the first call: its record does not replay.
    put(order(2, 2))
    const second = raimentProcess(dir, START)
    try {
      await second.until((out) => out.includes('RAIMENT_REPLAY_DIVERGENCE'))
      expect(second.stderr).toContain(`thread ${id} (order) diverged from its record`)
      expect(second.stderr).toContain('It waits (on-divergence wait), nothing recorded')
      expect(second.stderr).toContain(`raiment kill ${id}`)
      expect(second.stdout + second.stderr).not.toContain(`failed ${id}`)
      const ps = await raiment(dir, 'ps', '--db', 'app.db')
      expect(statusOf(ps.stdout, id)).toBe('waiting for code')
      const show = await raiment(dir, 'show', id, '--db', 'app.db')
      expect(show.stdout).toContain('running, waiting for code that replays its record (it diverges at entry 0 (seq 0): the code calls log.info(')
      const json = JSON.parse((await raiment(dir, 'show', id, '--json', '--db', 'app.db')).stdout) as { thread: { status: string; waitingForCode?: { diverges: string } }; calls: unknown[] }
      expect(json.thread.status).toBe('running')
      expect(json.thread.waitingForCode?.diverges).toMatch(/^diverges at entry 0 \(seq 0\): the code calls log\.info\("reserve",\{"n":2\}\) where the record holds log\.info\("reserve",\{"n":1\}\)/)
      // Nothing recorded: its one entry, as before.
      expect(json.calls).toHaveLength(1)
      // Sent to, the message waits in its inbox.
      const sent = await raiment(dir, 'send', id, '"declined"', '--db', 'app.db')
      expect(sent.code, sent.stderr).toBe(0)
      // A reload of code that still diverges: it still waits, and the reload says where.
      put(order(3, 3))
      const r = await raiment(dir, 'reload', '--db', 'app.db')
      expect(r.stdout).toContain(`still waits ${id}: diverges at entry 0`)
      // It exits 2, as for a thread kept on old code, saying what to do; a reload that changes nothing too.
      expect(r.code, r.stdout + r.stderr).toBe(2)
      expect(r.stdout).toContain(
        `warning: 1 thread still waits for code that replays its record (${id}; on-divergence wait), nothing recorded: fix the code (a patch.patched branch for the old path; raiment check says where) and reload it; or re-run it from before the change (raiment fork ${id} --at SEQ), end it (raiment kill ${id}), or restart with --on-divergence continue`,
      )
      await second.until((out) => out.includes('1 thread still waits for code'))
      const again = await raiment(dir, 'reload', '--db', 'app.db')
      expect(again.code, again.stdout + again.stderr).toBe(2)
      expect(again.stdout).toContain('no thread file changed')
      expect(again.stdout).toContain(`warning: 1 thread still waits for code that replays its record (${id}`)
      expect(statusOf((await raiment(dir, 'ps', '--db', 'app.db')).stdout, id)).toBe('waiting for code')
      // Its row says where it diverges under that code, not under the code it first diverged on; since when it waits kept.
      const after = JSON.parse((await raiment(dir, 'show', id, '--json', '--db', 'app.db')).stdout) as { thread: { waitingForCode?: { since: string; diverges: string } } }
      expect(after.thread.waitingForCode?.diverges).toMatch(/^diverges at entry 0 \(seq 0\): the code calls log\.info\("reserve",\{"n":3\}\) where the record holds log\.info\("reserve",\{"n":1\}\)/)
      expect(after.thread.waitingForCode?.since).toBe((json.thread as { waitingForCode?: { since: string } }).waitingForCode?.since)
      expect((await raiment(dir, 'show', id, '--db', 'app.db')).stdout).toContain('"n":3')
      second.child.kill('SIGKILL')
    } finally {
      // (Killed here too when an expectation failed: else the test waits for its end to time out.)
      second.child.kill('SIGKILL')
      await second.ended
    }
    expect(existsSync(join(dir, 'dumps')) ? readdirSync(join(dir, 'dumps')) : []).toEqual([])

    // A crash while it waits changes nothing: the next start checks it again, and it waits again.
    const third = raimentProcess(dir, START)
    try {
      await third.until((out) => out.includes('RAIMENT_REPLAY_DIVERGENCE'))
      expect(statusOf((await raiment(dir, 'ps', '--db', 'app.db')).stdout, id)).toBe('waiting for code')
      // Code that replays its record (the old first call, a new version after it): it resumes, takes the message, compensates.
      put(order(4, 1))
      const r = await raiment(dir, 'reload', '--db', 'app.db')
      expect(r.code, r.stdout + r.stderr).toBe(0)
      expect(r.stdout).toContain(`1 thread that waited for code that replays it resumed: ${id}`)
      expect(r.stdout).not.toContain('warning')
      await third.until((out) => out.includes(`failed ${id}`))
      expect(third.stderr).toMatch(new RegExp(`${id} release \\{"n":1,"version":4\\}`))
      expect(statusOf((await raiment(dir, 'ps', '--db', 'app.db')).stdout, id)).toBe('failed')
    } finally {
      third.child.kill('SIGTERM')
      await third.ended
    }
  })
})

/**
 * Live reload in a real weave process (`raiment start`, SIGHUP): thread files changed under
 * running threads are loaded without a restart. A running thread whose record replays under its
 * new code moves to it and ends with the new code's behaviour; one whose record does not keeps
 * the code it started with and ends with the old behaviour; a file that fails to load leaves the
 * running code as it was.
 */
import { writeFileSync, mkdirSync, renameSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { raiment, raimentProcess } from './support/raiment-process.js'
import { tempDir } from './support/tmp.js'

const RAIMENT = new URL('../src/index.ts', import.meta.url).href

/** A thread that logs, waits for a message, and returns the version of its code with it. */
const waiter = (version: number, arg: number): string => `import { thread } from '${RAIMENT}'
export default thread({
  uses: ['clock', 'log', 'mailbox'],
  async does() {
    await this.log.info('waiting', { arg: ${arg} })
    const m = await this.mailbox.receive()
    return { version: ${version}, m }
  },
})
`

/** Spawns two of each waiter, waits for a message, then sends it on to each and joins them. */
const STARTER = `import { thread } from '${RAIMENT}'
export default thread({
  uses: ['threads', 'mailbox'],
  async does() {
    const ids = [
      await this.threads.spawn('moves'), await this.threads.spawn('moves'),
      await this.threads.spawn('stays'), await this.threads.spawn('stays'),
    ]
    const go = await this.mailbox.receive()
    for (const id of ids) await this.mailbox.send(id, go)
    const out = []
    for (const id of ids) out.push(await this.threads.join(id))
    return out
  },
})
`

/** A project whose threads/ holds the waiters (v1) and the starter; returns it and `put`. */
function project(): { dir: string; put: (name: string, text: string) => void } {
  const dir = tempDir('raiment-reload-')
  writeFileSync(join(dir, 'package.json'), '{ "type": "module" }\n')
  mkdirSync(join(dir, 'threads'))
  const put = (name: string, text: string): void => writeFileSync(join(dir, 'threads', name), text)
  put('moves.ts', waiter(1, 1))
  put('stays.ts', waiter(1, 1))
  put('starter.ts', STARTER)
  return { dir, put }
}

describe('live reload', () => {
  it('SIGHUP: compatible threads move to the new code, the others keep theirs; a broken file changes nothing', async () => {
    const { dir, put } = project()
    const weave = raimentProcess(dir, ['start', '--db', 'app.db', '--durability', 'batched'])
    try {
      await weave.until((out) => out.includes('weave '))
      const spawned = await raiment(dir, 'spawn', 'starter', '--db', 'app.db')
      const starter = spawned.stdout.trim()
      await weave.until((out) => (out.match(/ waiting /g) ?? []).length === 4)
      const ids = (kind: string) => [...weave.stdout.matchAll(new RegExp(`started (\\S+) ${kind}`, 'g'))].map((m) => m[1]!)

      // moves: changed after the wait (its record replays); stays: changed before it (it does not).
      put('moves.ts', waiter(2, 1))
      put('stays.ts', waiter(2, 99))
      put('broken.ts', 'export default thread({ uses: [], async does( { return 1 } })\n')
      weave.child.kill('SIGHUP')
      await weave.until((out) => (out.match(/\n {2}(moved|kept) /g) ?? []).length === 4 && out.includes('reload of threads/broken.ts failed'))
      expect(weave.stdout).toContain('reloaded moves (threads/moves.ts): 2 running threads moved to the new code, 0 kept on the old')
      expect(weave.stdout).toContain('reloaded stays (threads/stays.ts): 0 running threads moved to the new code, 2 kept on the old')
      // The same call, made otherwise: how, as `raiment check` says it (before, "calls log.info where the record holds log.info").
      expect(weave.stdout).toMatch(/kept \S+: diverges at entry 0: log\.info differs \(args\[1\]\.arg: 1 → 99\)/)
      expect(weave.stdout).toMatch(/reload of threads\/broken\.ts failed, the running code is unchanged: RAIMENT_INVALID_THREAD_MODULE: /)

      // A new type whose file failed: its spawn says why (the load error), not "unknown type".
      const broken = await raiment(dir, 'spawn', 'broken', '--db', 'app.db')
      expect(broken.code).not.toBe(0)
      expect(broken.stderr).toMatch(/RAIMENT_THREAD_TYPE_UNAVAILABLE: .*broken/)
      const sent = await raiment(dir, 'send', starter, '"go"', '--db', 'app.db')
      expect(sent.code, sent.stderr).toBe(0)
      await weave.until((out) => out.includes(`done ${starter} starter`))
      for (const id of ids('moves')) expect(weave.stdout).toContain(`done ${id} moves → {"version":2,"m":"go"}`)
      for (const id of ids('stays')) expect(weave.stdout).toContain(`done ${id} stays → {"version":1,"m":"go"}`)
      // A spawn after the reload runs the new code.
      const fresh = await raiment(dir, 'spawn', 'stays', '--db', 'app.db')
      await weave.until((out) => out.includes(`started ${fresh.stdout.trim()} stays`) && (out.match(/ waiting /g) ?? []).length === 5)
      expect(weave.stderr).toMatch(new RegExp(`${fresh.stdout.trim()} waiting \\{"arg":99\\}`))
    } finally {
      weave.child.kill('SIGTERM')
      await weave.ended
    }
  })

  it('a SIGKILL during a reload loses nothing: every thread resumes from its record under the files on disk', async () => {
    const { dir, put } = project()
    const first = raimentProcess(dir, ['start', '--db', 'app.db', '--durability', 'sync'])
    let starter = ''
    try {
      await first.until((out) => out.includes('weave '))
      starter = (await raiment(dir, 'spawn', 'starter', '--db', 'app.db')).stdout.trim()
      await first.until((out) => (out.match(/ waiting /g) ?? []).length === 4)
      put('moves.ts', waiter(2, 1))
      first.child.kill('SIGHUP')
      // Killed as the reload moves the first thread: between stopping it and the end of the reload.
      await first.until((out) => out.includes('resumed ') || out.includes('  moved '))
      first.child.kill('SIGKILL')
    } finally {
      await first.ended
    }
    const second = raimentProcess(dir, ['start', '--db', 'app.db', '--durability', 'sync'])
    try {
      await second.until((out) => out.includes('weave '))
      expect(second.stdout).toMatch(/resumed 5 threads/)
      const sent = await raiment(dir, 'send', starter, '"go"', '--db', 'app.db')
      expect(sent.code, sent.stderr).toBe(0)
      await second.until((out) => out.includes(`done ${starter} starter`))
      const moves = [...second.stdout.matchAll(/resumed (\S+) moves/g)].map((m) => m[1]!)
      expect(moves).toHaveLength(2)
      for (const id of moves) expect(second.stdout).toContain(`done ${id} moves → {"version":2,"m":"go"}`)
      expect((second.stdout.match(/ stays → \{"version":1,"m":"go"\}/g) ?? []).length).toBe(2)
    } finally {
      second.child.kill('SIGTERM')
      await second.ended
    }
  })
  it('a thread whose module failed to load waits, not failed; the reload that loads its file resumes it where it was', async () => {
    const { dir, put } = project()
    const first = raimentProcess(dir, ['start', '--db', 'app.db', '--durability', 'batched'])
    let id = ''
    try {
      await first.until((out) => out.includes('weave '))
      id = (await raiment(dir, 'spawn', 'stays', '--db', 'app.db')).stdout.trim()
      await first.until((out) => out.includes(' waiting '))
    } finally {
      first.child.kill('SIGTERM')
      await first.ended
    }
    // A deploy with a syntax error: the thread waits for its type.
    put('stays.ts', 'export default thread({ uses: [], async does( { return 1 } })\n')
    const second = raimentProcess(dir, ['start', '--db', 'app.db', '--durability', 'batched'])
    try {
      await second.until((out) => out.includes('weave '))
      expect(second.stderr).toContain(`RAIMENT_THREADS_WAIT_FOR_TYPE: thread ${id} of type 'stays' waits, not run: its module cannot be used`)
      const sent = await raiment(dir, 'send', id, '"go"', '--db', 'app.db')
      expect(sent.code, sent.stderr).toBe(0)
      put('stays.ts', waiter(2, 1))
      second.child.kill('SIGHUP')
      await second.until((out) => out.includes(`done ${id} stays`))
      expect(second.stdout).toContain(`  1 thread that waited for the type resumed: ${id}`)
      expect(second.stdout).toContain(`done ${id} stays → {"version":2,"m":"go"}`)
      expect(second.stdout).not.toContain(`failed ${id}`)
    } finally {
      second.child.kill('SIGTERM')
      await second.ended
    }
  })

  it('a stop warns of the threads a reload kept on their old code, which the next start resumes under the new', async () => {
    const { dir, put } = project()
    const weave = raimentProcess(dir, ['start', '--db', 'app.db', '--durability', 'batched', '--stop-wait', '0'])
    let moves: string | undefined
    let stays: string | undefined
    try {
      await weave.until((out) => out.includes('weave '))
      moves = (await raiment(dir, 'spawn', 'moves', '--db', 'app.db')).stdout.trim()
      stays = (await raiment(dir, 'spawn', 'stays', '--db', 'app.db')).stdout.trim()
      await weave.until((out) => (out.match(/ waiting /g) ?? []).length === 2)
      put('moves.ts', waiter(2, 1))
      put('stays.ts', waiter(2, 99))
      weave.child.kill('SIGHUP')
      await weave.until((out) => (out.match(/\n {2}(moved|kept) /g) ?? []).length === 2)
      expect(weave.stdout).toContain(`kept ${stays}: diverges`)
    } finally {
      weave.child.kill('SIGTERM')
      await weave.ended
    }
    const warned = weave.stderr.split('\n').filter((l) => l.includes('stopping: '))
    expect(warned).toHaveLength(1)
    expect(warned[0]).toContain(`stopping: 1 thread runs the code a reload kept it on (${stays}): at the next start it resumes under the files on disk and diverges (raiment check says where), unless the change is put behind patch.patched first`)
    expect(warned[0]).not.toContain(moves)
  })

  it('start --watch: a file replaced by a rename (sed -i, an editor\'s save) is reloaded, and so is every change after', async () => {
    const { dir, put } = project()
    const version = (v: string): string => `import { thread } from '${RAIMENT}'\nexport default thread({ uses: [], async does() { return '${v}' } })\n`
    put('ver.ts', version('v1'))
    // As sed -i and editors save: the new text in another file, renamed over the old.
    const replace = (v: string): void => {
      put('ver.ts.tmp', version(v))
      renameSync(join(dir, 'threads', 'ver.ts.tmp'), join(dir, 'threads', 'ver.ts'))
    }
    const weave = raimentProcess(dir, ['start', '--db', 'app.db', '--durability', 'batched', '--watch'])
    const reloads = (): number => (weave.stdout.match(/reloaded ver /g) ?? []).length
    // The nth reload within 10 s (a change the watch missed is never reloaded: fail then, not at the test's timeout).
    const reloaded = (n: number): Promise<void> => Promise.race([
      weave.until(() => reloads() === n),
      new Promise<void>((_, no) => setTimeout(() => no(new Error(`no reload ${n} in 10 s:\n${weave.stdout}`)), 10_000).unref()),
    ])
    const run = async (): Promise<string> => {
      const r = await raiment(dir, 'spawn', 'ver', '--wait', '--db', 'app.db')
      expect(r.code, r.stderr).toBe(0)
      return r.stdout.trim()
    }
    try {
      await weave.until((out) => out.includes('weave '))
      expect(await run()).toBe('"v1"')
      replace('v2')
      await reloaded(1)
      expect(await run()).toBe('"v2"')
      // The file is another inode now: a watch of the old one saw nothing of these.
      replace('v3')
      await reloaded(2)
      expect(await run()).toBe('"v3"')
      put('ver.ts', version('v4'))
      await reloaded(3)
      expect(await run()).toBe('"v4"')
    } finally {
      weave.child.kill('SIGTERM')
      await weave.ended
    }
  })
})

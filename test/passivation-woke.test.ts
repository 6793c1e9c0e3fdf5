/**
 * The wake of a passivated thread is told apart from a resume after a crash or a restart: its
 * 'thread-start' has `woke` (what woke it), and `raiment start` logs it as `woke ID TYPE (…)` only
 * with RAIMENT_LOG_LEVEL=debug (level 20 in JSON), never as `resumed ID TYPE` (a timer storm of
 * 50,000 passivated threads printed 50,000 such lines). Real SQLite, real weave, real `raiment start`.
 */
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { thread, Weave, type WeaveOptions } from 'raiment'
import type { WeaveEvents } from '../src/weave-types.js'
import { raiment, raimentProcess, THREADS } from './support/raiment-process.js'
import { tempDir } from './support/tmp.js'

const SLOW = 120_000

const waiter = thread({
  uses: ['mailbox'],
  async does() {
    return this.mailbox.receive()
  },
})

const napper = thread({
  uses: ['clock'],
  async does(p: { ms: number }) {
    await this.clock.sleep(p.ms)
    return 'rested'
  },
})

const joiner = thread({
  uses: ['threads'],
  async does() {
    const child = await this.threads.spawn('waiter')
    return this.threads.join(child)
  },
})

type Start = WeaveEvents['thread-start'][0]

function open(dir: string, o: Partial<WeaveOptions> = {}): Promise<Weave> {
  return Weave.open({ db: join(dir, 'w.db'), durability: 'memory', threads: { waiter, napper, joiner }, ioLibs: false, dumps: false, passivateAfter: 0, ...o })
}

/** The 'thread-start' events `weave` emits from now on, and a wait for threads to be passivated (on the event). */
function watch(weave: Weave): { seen: Start[]; asleep: (ids: string[]) => Promise<void> } {
  const seen: Start[] = []
  const out = new Set<string>()
  weave.on('thread-start', (e) => {
    seen.push(e)
    out.delete(e.id)
  })
  weave.on('thread-passivated', (e) => out.add(e.id))
  const asleep = (ids: string[]): Promise<void> =>
    new Promise((res) => {
      const check = (): void => {
        if (!ids.every((id) => out.has(id))) return
        weave.off('thread-passivated', check)
        res()
      }
      weave.on('thread-passivated', check)
      check()
    })
  return { seen, asleep }
}

describe('the wake of a passivated thread', () => {
  it("says what woke it in 'thread-start' (a message, its timer, the end of the thread it joins, a kill); a start does not", async () => {
    const weave = await open(tempDir('raiment-woke-'))
    try {
      const { seen, asleep } = watch(weave)
      const woke = (id: string): Array<Start['woke']> => seen.filter((e) => e.id === id).map((e) => e.woke)
      const byMessage = weave.spawn('waiter')
      const killed = weave.spawn('waiter')
      const timed = weave.spawn('napper', { ms: 200 })
      await asleep([byMessage, killed])
      weave.send(byMessage, 'hi')
      expect(await weave.join(byMessage)).toMatchObject({ status: 'done', result: 'hi' })
      expect(weave.kill(killed)).toBe(true)
      expect(await weave.join(killed)).toMatchObject({ status: 'killed' })
      expect(await weave.join(timed)).toMatchObject({ status: 'done', result: 'rested' })
      expect(woke(byMessage)).toEqual([undefined, 'message'])
      expect(woke(killed)).toEqual([undefined, 'kill'])
      expect(woke(timed)).toEqual([undefined, 'timer'])

      const parent = weave.spawn('joiner')
      const child = await new Promise<string>((res) => weave.on('thread-start', (e) => e.type === 'waiter' && !e.resumed && res(e.id)))
      await asleep([parent, child])
      weave.send(child, 'done')
      expect(await weave.join(parent)).toMatchObject({ status: 'done', result: 'done' })
      expect(woke(child)).toEqual([undefined, 'message'])
      expect(woke(parent)).toEqual([undefined, 'join'])
      // A wake is a resume (by replay of its record), and says so.
      expect(seen.filter((e) => e.woke !== undefined).every((e) => e.resumed)).toBe(true)
    } finally {
      await weave.close()
    }
  })

  it(
    "raiment start logs a wake as 'woke ID TYPE (a message)' only with RAIMENT_LOG_LEVEL=debug, never as 'resumed'",
    async () => {
      const dir = tempDir('raiment-woke-log-')
      const db = join(dir, 'w.db')
      const opts = ['--db', db, '--threads', THREADS, '--durability', 'memory', '--dumps', join(dir, 'dumps'), '--passivate-after', '0']
      /** Starts a weave, spawns a listener in it, sends it a message once it is passivated, stops the weave once it has ended. */
      const wakeOne = async (format: string[], env: Record<string, string>): Promise<{ id: string; stdout: string }> => {
        const run = raimentProcess(dir, ['start', ...opts, ...format], { env })
        await run.until((out) => out.includes('weave '))
        const id = (await raiment(dir, 'spawn', 'listener', '--db', db)).stdout.trim().match(/^\S+\/\d+$/)?.[0]
        expect(id).toBeDefined()
        // Passivated: its row says so (raiment ps lists it), so the message is its wake.
        for (;;) {
          const ps = await raiment(dir, 'ps', '--status', 'passivated', '--json', '--db', db)
          if (ps.stdout.includes(`"${id!}"`)) break
        }
        expect((await raiment(dir, 'send', id!, '"hi"', '--db', db)).code).toBe(0)
        await run.until((out) => out.includes(`${id!} listener`) && /(^|")done |"event":"thread-end"/m.test(out))
        run.child.kill('SIGINT')
        const ended = await run.ended
        expect(ended.code, ended.stderr).toBe(0)
        return { id: id!, stdout: ended.stdout }
      }

      const quiet = await wakeOne([], { RAIMENT_LOG_LEVEL: '' })
      expect(quiet.stdout).toContain(`started ${quiet.id} listener\n`)
      expect(quiet.stdout).toContain(`done ${quiet.id} listener`)
      expect(quiet.stdout).not.toContain(`resumed ${quiet.id}`)
      expect(quiet.stdout).not.toContain(`woke ${quiet.id}`)

      const debug = await wakeOne(['--log-format', 'json'], { RAIMENT_LOG_LEVEL: 'debug' })
      const lines = debug.stdout.trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>)
      const mine = lines.filter((l) => l['thread'] === debug.id).map((l) => l['event'])
      expect(mine).toEqual(['thread-start', 'thread-woke', 'thread-end'])
      expect(lines.find((l) => l['event'] === 'thread-woke')).toMatchObject({ level: 20, thread: debug.id, type: 'listener', by: 'message', msg: `woke ${debug.id} listener (a message)` })
    },
    SLOW,
  )
})

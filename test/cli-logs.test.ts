/**
 * `raiment start --log-format json`: one JSON object per line, the log library's lines among
 * them with thread and call ids; and, when not on a terminal, one summary line of a resume. A
 * start says 'resumed' of the threads it runs, not of the passivated ones it leaves asleep.
 */
import { describe, expect, test } from 'vitest'
import { join } from 'node:path'
import { Weave } from 'raiment'
import listener from '../threads/listener.js'
import { passivatedOnce } from './support/passivated.js'
import { raiment, raimentProcess, THREADS } from './support/raiment-process.js'
import { tempDir } from './support/tmp.js'

const SLOW = 120_000

describe('the weave log', () => {
  test(
    'json lines for the weave and the log library; a resume summed up in one line',
    async () => {
      const dir = tempDir()
      const db = join(dir, 'w.db')
      const opts = ['--db', db, '--threads', THREADS, '--durability', 'memory', '--dumps', join(dir, 'dumps')]
      // Recorded for the next weave: one that ends at once, one that waits for a message.
      const greet = (await raiment(dir, 'spawn', 'greet', '{"name":"ada"}', ...opts)).stderr.match(/(\S+\/\d+) starts/)?.[1]
      const listener = (await raiment(dir, 'spawn', 'listener', ...opts)).stderr.match(/(\S+\/\d+) starts/)?.[1]
      expect(greet).toBeDefined()
      expect(listener).toBeDefined()

      const json = raimentProcess(dir, ['start', ...opts, '--log-format', 'json'])
      await json.until((out) => out.includes('"event":"thread-end"'))
      json.child.kill('SIGINT')
      const ended = await json.ended
      expect(ended.code, ended.stderr).toBe(0)
      const lines = ended.stdout.trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>)
      for (const l of lines) expect(l).toMatchObject({ level: expect.any(Number), time: expect.any(Number), msg: expect.any(String) })
      expect(lines.find((l) => l['event'] === 'weave-open')).toMatchObject({ resumed: 0, db })
      expect(lines.filter((l) => l['event'] === 'thread-start').map((l) => l['thread'])).toEqual(expect.arrayContaining([greet, listener]))
      expect(lines.find((l) => l['event'] === 'thread-end')).toMatchObject({ thread: greet, type: 'greet', status: 'done', result: { greeted: 'ada' } })
      // The greet thread's log.info lines: through the same logger, with its thread and call ids.
      const hello = lines.find((l) => l['msg'] === 'hello ada')!
      expect(hello).toMatchObject({ level: 30, thread: greet, visit: expect.any(String) })
      expect(String(hello['call'])).toMatch(new RegExp(`^${greet!.replace(/[/]/g, '\\/')}@[0-9a-z]+:.+:0$`))
      // The signal line: on stderr, a JSON line too.
      expect(JSON.parse(ended.stderr.trimEnd().split('\n').pop()!)).toMatchObject({ level: 40, event: 'stopping', signal: 'SIGINT' })

      // The listener still waits: the next weave resumes it, and, not on a terminal, says so once.
      const pretty = raimentProcess(dir, ['start', ...opts])
      await pretty.until((out) => /resumed 1 thread: \d+ entries replayed in /.test(out))
      pretty.child.kill('SIGINT')
      const again = await pretty.ended
      expect(again.stdout).toMatch(new RegExp(`^weave \\S+ on .* resumed 1 thread\\n`))
      expect(again.stdout).toContain(`resumed ${listener} listener\n`)
      expect(again.stderr).not.toContain('resuming:')
    },
    SLOW,
  )

  test(
    "a start says 'resumed' of the threads it runs, not of the passivated ones left asleep",
    async () => {
      const dir = tempDir()
      const db = join(dir, 'w.db')
      const w = await Weave.open({ db, threads: { listener }, durability: 'memory', ioLibs: false, dumps: false, passivateAfter: 0 })
      const asleep = w.spawn('listener')
      const woken = w.spawn('listener')
      await passivatedOnce(w, [asleep, woken])
      await w.close()
      // Sent while no weave runs: the next open wakes it.
      expect((await raiment(dir, 'send', woken, '"hi"', '--db', db)).code).toBe(0)
      const opts = ['--db', db, '--threads', THREADS, '--durability', 'memory', '--dumps', join(dir, 'dumps'), '--log-format', 'json']
      const run = raimentProcess(dir, ['start', ...opts])
      await run.until((out) => out.includes('"event":"thread-end"'))
      run.child.kill('SIGINT')
      const ended = await run.ended
      expect(ended.code, ended.stderr).toBe(0)
      const lines = ended.stdout.trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>)
      // Before, every running row was said resumed: the sleeping one too.
      expect(lines.filter((l) => l['event'] === 'thread-resumed').map((l) => l['thread'])).toEqual([woken])
      expect(lines.find((l) => l['event'] === 'thread-end')).toMatchObject({ thread: woken, result: { received: 'hi' } })
    },
    SLOW,
  )
})

/**
 * `raiment start --log-format json`: one JSON object per line, the log library's lines among
 * them with thread and call ids; and, when not on a terminal, one summary line of a resume. A
 * start says 'resumed' of the threads it runs, not of the passivated ones it leaves asleep.
 */
import { describe, expect, test } from 'vitest'
import { mkdirSync, writeFileSync } from 'node:fs'
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

  test(
    "a long result or error is cut in the weave's lines (its start, its size and where to read it whole); show --json keeps it whole",
    async () => {
      const dir = tempDir()
      mkdirSync(join(dir, 'threads'))
      writeFileSync(join(dir, 'package.json'), '{ "type": "module" }\n')
      writeFileSync(
        join(dir, 'threads', 'big.ts'),
        `import { thread } from '${new URL('../src/index.ts', import.meta.url).href}'
export default thread({ uses: [], async does(p: { size: number; fail?: boolean }) {
  if (p.fail) throw new Error('y'.repeat(p.size))
  return { blob: 'x'.repeat(p.size) }
} })
`,
      )
      const opts = ['--db', join(dir, 'w.db'), '--threads', join(dir, 'threads'), '--durability', 'memory', '--dumps', join(dir, 'dumps')]
      const spawn = async (params: object): Promise<string> => (await raiment(dir, 'spawn', 'big', JSON.stringify(params), ...opts)).stderr.match(/(\S+\/\d+) starts/)![1]!
      const big = await spawn({ size: 100_000 })
      const bad = await spawn({ size: 100_000, fail: true })
      const small = await spawn({ size: 5 })

      const pretty = raimentProcess(dir, ['start', ...opts])
      await pretty.until((out) => (out.match(/^(done|failed) /gm) ?? []).length === 3)
      pretty.child.kill('SIGINT')
      const out = (await pretty.ended).stdout + pretty.stderr
      // Before, the line held the whole 100,011-character result.
      const done = out.split('\n').find((l) => l.startsWith(`done ${big} `))!
      expect(done).toBe(`done ${big} big → {"blob":"${'x'.repeat(491)}… (100011 bytes; raiment show ${big} --full)`)
      const failed = out.split('\n').find((l) => l.startsWith(`failed ${bad} `))!
      expect(failed).toMatch(new RegExp(`^failed ${bad} big: Error: y{493}… \\(100007 bytes; raiment show ${bad} --full\\) \\(dump: .*\\.json\\)$`))
      expect(out).toContain(`done ${small} big → {"blob":"xxxxx"}\n`)
      // show --json, as spawn --wait and --json, give it whole.
      const shown = JSON.parse((await raiment(dir, 'show', big, '--json', '--db', join(dir, 'w.db'))).stdout) as { thread: { result: { blob: string } } }
      expect(shown.thread.result.blob).toHaveLength(100_000)

      // --log-format json: the line's msg is cut as above, and the result is not copied in: its size is.
      const again = await spawn({ size: 100_000 })
      const json = raimentProcess(dir, ['start', ...opts, '--log-format', 'json'])
      await json.until((o) => o.includes('"event":"thread-end"'))
      json.child.kill('SIGINT')
      const end = (await json.ended).stdout.split('\n').filter((l) => l.includes('"event":"thread-end"')).map((l) => JSON.parse(l) as Record<string, unknown>)[0]!
      expect(end).toMatchObject({ thread: again, status: 'done', resultBytes: 100_011, msg: expect.stringMatching(/… \(100011 bytes; raiment show \S+ --full\)$/) })
      expect(end).not.toHaveProperty('result')
    },
    SLOW,
  )
})

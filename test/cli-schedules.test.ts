/**
 * `raiment schedule add|ls|rm|pause|resume` as real processes on a real journal: bad input gives
 * one line `raiment: CODE: ...` and writes nothing; with no weave running the change is written
 * by the command; with one running, the weave makes it (and refuses what it cannot run), and
 * fires the schedule. Synchronisation is on the processes' output.
 */
import Database from 'better-sqlite3'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { raiment, raimentProcess } from './support/raiment-process.js'
import { projectWith } from './support/threads-dir.js'

const RAIMENT = new URL('../src/index.ts', import.meta.url).href
const TICK = `import { thread } from '${RAIMENT}'
export default thread({ uses: [], async does(p: { scheduledAt: string }) { return p.scheduledAt } })
`

function schedules(dir: string): Array<{ name: string; paused: number }> {
  const db = new Database(join(dir, 'raiment.db'), { readonly: true })
  try {
    return db.prepare('SELECT name, paused FROM schedules ORDER BY name').all() as Array<{ name: string; paused: number }>
  } finally {
    db.close()
  }
}

describe('raiment schedule', () => {
  it('refuses bad input with one line and a code, writing nothing', async () => {
    const dir = projectWith({ 'tick.ts': TICK })
    const cases: Array<[string[], string]> = [
      [['every', 'tick', '--cron', '*/5 * * *'], 'RAIMENT_BAD_CRON'],
      [['every', 'tock', '--cron', '* * * * *'], 'RAIMENT_UNKNOWN_THREAD_TYPE'],
      [['every', 'tick', '{"a":', '--cron', '* * * * *'], 'RAIMENT_INVALID_ARGUMENT'],
    ]
    const runs = await Promise.all(cases.map(([args]) => raiment(dir, 'schedule', 'add', ...args)))
    runs.forEach((r, i) => {
      expect(r.stderr.trim().split('\n'), r.stderr).toHaveLength(1)
      expect(r.stderr).toMatch(new RegExp(`^raiment: ${cases[i]![1]}: `))
      expect(r.code).toBeGreaterThan(0)
    })
    // No journal was made for any of them.
    expect(existsSync(join(dir, 'raiment.db'))).toBe(false)
    const ok = await raiment(dir, 'schedule', 'add', 'every', 'tick', '{"n":1}', '--cron', '*/5 * * * *', '--missed', 'once')
    expect(ok.code, ok.stderr).toBe(0)
    expect(ok.stdout).toMatch(/^added schedule every: tick at "\*\/5 \* \* \* \*" \(UTC\), missed times: once; next \d{4}-/)
    expect((await raiment(dir, 'schedule', 'pause', 'every')).stdout).toBe('paused schedule every\n')
    expect(schedules(dir)).toEqual([{ name: 'every', paused: 1 }])
    expect((await raiment(dir, 'schedule', 'ls')).stdout).toMatch(/^NAME +TYPE +CRON +TZ +MISSED +STATE +NEXT +LAST FIRED +LAST THREAD +PARAMS\nevery +tick +\*\/5 \* \* \* \* +UTC +once +paused +- +- +- +\{"n":1\}\n$/)
    expect((await raiment(dir, 'schedule', 'rm', 'every')).code).toBe(0)
    expect(schedules(dir)).toEqual([])
  })

  it('asks the running weave, which fires the schedule', async () => {
    const dir = projectWith({ 'tick.ts': TICK })
    const weave = raimentProcess(dir, ['start', '--durability', 'batched'])
    try {
      await weave.until((out) => out.includes('resumed 0 threads'))
      const refused = await raiment(dir, 'schedule', 'add', 'sec', 'tock', '--cron', '* * * * * *')
      expect(refused.stderr).toMatch(/^raiment: RAIMENT_UNKNOWN_THREAD_TYPE: unknown thread type 'tock' \(did you mean 'tick'\?\)/)
      const added = await raiment(dir, 'schedule', 'add', 'sec', 'tick', '--cron', '* * * * * *')
      expect(added.code, added.stderr).toBe(0)
      expect(added.stderr).toBe('')
      await weave.until((out) => /done \S+\/sec@\d{8}T\d{6}Z tick → "/.test(out))
      const paused = await raiment(dir, 'schedule', 'pause', 'sec')
      expect(paused.stdout).toBe('paused schedule sec\n')
      const ls = JSON.parse((await raiment(dir, 'schedule', 'ls', '--json')).stdout) as Array<{ paused: boolean; lastThread: string; next: number | null }>
      expect(ls).toMatchObject([{ name: 'sec', cron: '* * * * * *', missed: 'skip', source: 'cli', paused: true, next: null }])
      expect(ls[0]!.lastThread).toMatch(/\/sec@\d{8}T\d{6}Z$/)
    } finally {
      weave.child.kill('SIGTERM')
      await weave.ended
    }
  })
})

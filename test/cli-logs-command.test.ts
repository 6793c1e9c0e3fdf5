/**
 * `raiment logs ID`: a thread's log lines read back from its record, every level (those below the
 * weave's level were recorded too), with when each was made; `--json` one object a line; an
 * unknown id is a clear error. Real journals in temp dirs, the CLI run in this process.
 */
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { thread, Weave } from 'raiment'
import { cliOut, cliRun } from './support/cli-in-process.js'
import { tempDir } from './support/tmp.js'

const talker = thread({
  uses: ['log', 'clock'],
  async does(p: { n: number }) {
    await this.log.info('hello', { n: p.n })
    await this.clock.now()
    await this.log.warn('careful')
    await this.log.debug('below the level', { deep: { a: [1, 2n] } })
    return p.n
  },
})

describe('raiment logs', () => {
  it("prints a thread's log lines from its record, every level, oldest first; --json one object a line", async () => {
    const db = join(tempDir('raiment-logs-'), 'w.db')
    const weave = await Weave.open({ db, threads: { talker }, dumps: false, config: { logLevel: 'silent' } })
    const id = weave.spawn(talker, { n: 3 })
    await weave.join(id)
    await weave.close()
    const lines = (await cliOut(['logs', id, '--db', db])).trimEnd().split('\n')
    expect(lines).toHaveLength(3)
    expect(lines[0]).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z info {2}hello \{"n":3\}$/)
    expect(lines[1]).toMatch(/^\S+Z warn {2}careful$/)
    expect(lines[2]).toMatch(/^\S+Z debug below the level \{"deep":\{"a":\[1,"2n"\]\}\}$/)
    const json = (await cliOut(['logs', id, '--db', db, '--json'])).trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>)
    expect(json.map((j) => [j['seq'], j['level'], j['message']])).toEqual([[0, 'info', 'hello'], [2, 'warn', 'careful'], [3, 'debug', 'below the level']])
    expect(json[0]!['fields']).toEqual({ n: 3 })
    expect(Date.parse(json[0]!['at'] as string)).toBeGreaterThan(0)

    const unknown = await cliRun(['logs', 'nope/1', '--db', db])
    expect(unknown.code).toBe(1)
    expect(unknown.printed.join('')).toMatch(/^raiment: RAIMENT_UNKNOWN_THREAD: /m)
  })
})

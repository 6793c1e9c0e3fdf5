/**
 * `raiment fork` of a record the code on disk no longer replays (a user trial): it said `forked …`
 * and exited 0, and the fork failed at once with ReplayDivergence. The fork's record is checked
 * against the code first: refused with one line, `RAIMENT_FORK_DIVERGES`, nothing written; a fork
 * from an earlier `--at`, before the change, goes ahead. Real thread files, a real CLI process.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { expect, it } from 'vitest'
import { Weave } from 'raiment'
import { raiment } from './support/raiment-process.js'
import { tempDir } from './support/tmp.js'

const RAIMENT = new URL('../src/index.ts', import.meta.url).href

/** Reads the time twice, then fails; `second`: what the code asks second. */
const order = (second: string): string => `import { thread } from '${RAIMENT}'
export default thread({
  uses: ['clock', 'random'],
  async does() {
    await this.clock.now()
    await ${second}
    throw new Error('out of stock')
  },
})
`

it('a fork whose record the code no longer replays is refused, nothing written; one from before the change goes ahead', async () => {
  const dir = tempDir('raiment-fork-diverges-')
  mkdirSync(join(dir, 'threads'))
  const file = join(dir, 'threads', 'order.ts')
  writeFileSync(file, order('this.clock.now()'))
  const db = join(dir, 'app.db')
  const weave = await Weave.open({ db, threads: join(dir, 'threads'), ioLibs: false, dumps: false, durability: 'memory' })
  let id: string
  try {
    id = weave.spawn('order')
    expect(await weave.join(id)).toMatchObject({ status: 'failed' })
  } finally {
    await weave.close()
  }
  // The code changed since: its second call is another.
  writeFileSync(file, order('this.random.int(0, 10)'))
  const bytes = readFileSync(db)
  const refused = await raiment(dir, 'fork', id, '--db', db)
  expect(refused.code).toBe(1)
  expect(refused.stderr.trim().split('\n')).toEqual([
    expect.stringMatching(/^raiment: RAIMENT_FORK_DIVERGES: the fork's record \(2 entries of .*\) does not replay under the code in threads\/: .*diverges at entry 1.*clock\.now.*Nothing was forked: fork from an earlier --at, or change the code/),
  ])
  expect(readFileSync(db).equals(bytes)).toBe(true)
  // From before the change (the record's first entry only): forked.
  const forked = await raiment(dir, 'fork', id, '--db', db, '--at', '1')
  expect(forked.code, forked.stderr).toBe(0)
  expect(forked.stderr).toMatch(/forked .* \(1 entry to replay\); no weave runs on/)
})

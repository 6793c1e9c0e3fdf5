/**
 * record() runs its thread in a weave on a journal in a temporary directory, removed when it
 * ends. A record not awaited, or cut short by the end of the process (a test that forgot its
 * await, a run interrupted), left that directory behind, with its journal: it is removed as the
 * process exits. A real child process, with a temporary directory of its own.
 */
import { spawnSync } from 'node:child_process'
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { expect, it } from 'vitest'
import { tempDir } from './support/tmp.js'

const INDEX = new URL('../src/index.ts', import.meta.url).href
const TESTING = new URL('../src/testing.ts', import.meta.url).href

it('a record not awaited leaves no journal behind once the process exits', () => {
  const dir = tempDir()
  const tmp = join(dir, 'tmp')
  const script = join(dir, 'forgot.mts')
  writeFileSync(
    script,
    `import { readdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { thread } from ${JSON.stringify(INDEX)}
import { record } from ${JSON.stringify(TESTING)}
const sleeper = thread({ uses: ['clock'], async does() { await this.clock.sleep(60_000); return 1 } })
// Not awaited: the process ends while it runs.
void record(sleeper, undefined, { name: 'sleeper', ioLibs: false })
// Ends once the record's journal is there (no event tells it from outside record()).
const look = setInterval(() => {
  const dirs = readdirSync(tmpdir()).filter((f) => f.startsWith('raiment-record-'))
  if (dirs.length === 0 || readdirSync(tmpdir() + '/' + dirs[0]).length === 0) return
  clearInterval(look)
  console.log('running: ' + dirs.length)
  process.exit(0)
}, 10)
`,
  )
  mkdirSync(tmp)
  const r = spawnSync(process.execPath, ['--conditions=raiment-source', '--import', 'tsx', script], { env: { ...process.env, TMPDIR: tmp }, encoding: 'utf8' })
  expect(r.status, r.stderr).toBe(0)
  expect(r.stdout).toContain('running: 1')
  expect(readdirSync(tmp).filter((f) => f.startsWith('raiment-record-'))).toEqual([])
})

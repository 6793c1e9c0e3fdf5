/**
 * `raiment replay` compares the error the replay threw with the recorded one as the journal
 * records errors: a field holding a function was recorded as its source text, and the error met
 * again among its own fields as its name and message; the same error thrown again is the
 * recorded one (it was reported as differing from itself). A real `raiment` process.
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { expect, test } from 'vitest'
import { dumpText } from 'raiment'
import { record } from 'raiment/testing'
import { loadThreadTypes } from '../src/thread-types.js'
import { raiment } from './support/raiment-process.js'
import { projectWith } from './support/threads-dir.js'

const RAIMENT = new URL('../src/index.ts', import.meta.url).href

const THREADS = {
  'cyc.ts': `import { thread } from '${RAIMENT}'
export default thread({
  uses: ['clock'],
  async does(p: { other?: string }) {
    await this.clock.now()
    const e: any = new Error('bad')
    e.self = e
    e.fn = () => 2
    e.list = [e, 1]
    e.when = new Date(0)
    if (p.other !== undefined) e.other = p.other
    throw e
  },
})
`,
}

test('an error with a function field and itself among its fields replays as the recorded error; another field value still differs', async () => {
  const dir = projectWith(THREADS)
  const cyc = (await loadThreadTypes(join(dir, 'threads'))).types.get('cyc')!
  const { dump } = await record(cyc, {}, { name: 'cyc', ioLibs: false })
  expect(dump.thread.status).toBe('failed')
  expect(dump.thread.error!.fields['fn']).toBe('() => 2')
  writeFileSync(join(dir, 'cyc.json'), dumpText(dump))
  const same = await raiment(dir, 'replay', 'cyc.json', '--threads', 'threads', '--io-libs', 'io-libs')
  expect(same.stdout + same.stderr).toContain('which is the recorded error')
  expect(same.code).toBe(0)
  // A field the replay gives another value: a difference, reported.
  writeFileSync(join(dir, 'other.json'), dumpText({ ...dump, thread: { ...dump.thread, params: { other: 'x' } } }))
  const other = await raiment(dir, 'replay', 'other.json', '--threads', 'threads', '--io-libs', 'io-libs')
  expect(other.stdout + other.stderr).toContain('which differs from the recorded error')
  expect(other.code).toBe(1)
}, 60_000)

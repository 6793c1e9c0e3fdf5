/**
 * A weave SIGKILLed after a failed thread's end is durable and before its dump is written (crash
 * point `failed-committed`): the next weave on the journal writes the dump that is missing (of a
 * thread that failed while the crashed owner ran), and it replays to the same failure. Real
 * `raiment` processes; a clean close leaves nothing to write again. A second crash before the
 * missing dumps are written (crash point `dumps-missing`) leaves them due for the weave after. A
 * thread ended by a linked one (LinkedExit) is not among them.
 */
import { existsSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { expect, test } from 'vitest'
import { raiment, raimentProcess, type Running } from './support/raiment-process.js'
import { projectWith } from './support/threads-dir.js'

const RAIMENT = new URL('../src/index.ts', import.meta.url).href

const BOOM = `import { thread } from '${RAIMENT}'
export default thread({
  uses: ['clock'],
  async does() {
    await this.clock.now()
    throw new Error('boom')
  },
})
`

/** Spawns a linked child that waits, then fails: the child ends with LinkedExit in the same commit. */
const BOOM_LINKED = `import { thread } from '${RAIMENT}'
export default thread({
  uses: ['threads'],
  async does() {
    await this.threads.spawn('waiter', undefined, { link: true })
    throw new Error('boom')
  },
})
`

const WAITER = `import { thread } from '${RAIMENT}'
export default thread({
  uses: ['mailbox'],
  async does() {
    return this.mailbox.receive()
  },
})
`

async function startWeave(dir: string, env: Record<string, string> = {}): Promise<Running> {
  const weave = raimentProcess(dir, ['start'], { env })
  await weave.until((out) => /^weave \S+ on raiment\.db/m.test(out))
  return weave
}

/** Starts a weave that crashes at `failed-committed`, spawns a failing thread, and returns its dump's path (not written). */
async function crashBeforeDump(dir: string, type = 'boom'): Promise<string> {
  const crashing = await startWeave(dir, { RAIMENT_CRASH_AT: 'failed-committed' })
  const spawned = await raiment(dir, 'spawn', type)
  expect(spawned.code, spawned.stderr).toBe(0)
  const id = spawned.stdout.trim()
  expect((await crashing.ended).signal).toBe('SIGKILL')
  const dump = join(dir, 'dumps', ...id.split('/')) + '.json'
  expect(existsSync(dump)).toBe(false)
  return dump
}

test('a dump a crash kept from being written is written by the next weave, and replays', async () => {
  const dir = projectWith({ 'boom.ts': BOOM })
  const dump = await crashBeforeDump(dir)

  const weave = await startWeave(dir)
  weave.child.kill('SIGTERM')
  expect((await weave.ended).code, weave.stderr).toBe(0)
  expect(existsSync(dump)).toBe(true)
  expect(readdirSync(join(dir, 'dumps'), { recursive: true }).filter((f) => String(f).endsWith('.tmp'))).toEqual([])
  const replayed = await raiment(dir, 'replay', dump)
  expect(replayed.stdout + replayed.stderr).toContain('boom')
}, 120_000)

test('dumps still missing after a second crash are written by the weave after it', async () => {
  const dir = projectWith({ 'boom.ts': BOOM })
  const dump = await crashBeforeDump(dir)
  // The next weave dies before it writes them: its own start is later than the failure.
  const second = raimentProcess(dir, ['start'], { env: { RAIMENT_CRASH_AT: 'dumps-missing' } })
  expect((await second.ended).signal).toBe('SIGKILL')
  expect(existsSync(dump)).toBe(false)

  const weave = await startWeave(dir)
  weave.child.kill('SIGTERM')
  expect((await weave.ended).code, weave.stderr).toBe(0)
  expect(existsSync(dump)).toBe(true)
}, 120_000)

test('the dumps a crash kept from being written leave out a thread ended by a linked one (LinkedExit)', async () => {
  const dir = projectWith({ 'boomLinked.ts': BOOM_LINKED, 'waiter.ts': WAITER })
  const dump = await crashBeforeDump(dir, 'boomLinked')

  const weave = await startWeave(dir)
  weave.child.kill('SIGTERM')
  expect((await weave.ended).code, weave.stderr).toBe(0)
  expect(existsSync(dump)).toBe(true)
  const written = readdirSync(join(dir, 'dumps'), { recursive: true }).map(String).filter((f) => f.endsWith('.json'))
  expect(written).toHaveLength(1)
}, 120_000)

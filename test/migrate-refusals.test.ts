/**
 * The order in which a move is refused (docs/many-weaves.md, Moving a thread, step 1): the thread
 * is checked before the target, so a finished thread to a weave that never joined is
 * RAIMENT_THREAD_NOT_MOVABLE, both from `Weave.migrate` (on a real broker) and from `raiment
 * migrate` (which reads the thread in the journal before it asks a weave).
 */
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { cliRun } from './support/cli-in-process.js'
import { brokerUp, CI, freshNamespace, removeNamespace, brokerTests } from './support/broker.js'
import { tempDir } from './support/tmp.js'
import { openWeave } from './support/weaves.js'
import listener from '../threads/listener.js'

describe.skipIf(!brokerUp && !CI)('what a move refuses, in order', () => {
  const cleanups = brokerTests()

  it('a finished thread to a weave that never joined: ThreadNotMovable, from the weave and from raiment migrate; a running one: UnknownWeave', async () => {
    const dir = tempDir('raiment-migrate-refusals-')
    const ns = freshNamespace()
    cleanups.push(() => removeNamespace(ns, ['a']))
    const a = await openWeave(cleanups, dir, ns, 'a', { listener })
    const done = a.weave.spawn('listener', {})
    a.weave.send(done, 'hi')
    expect(await a.weave.join(done)).toMatchObject({ status: 'done' })
    const running = a.weave.spawn('listener', {})
    await a.weave.committed()
    await expect(a.weave.migrate(done, 'nowhere')).rejects.toMatchObject({ code: 'RAIMENT_THREAD_NOT_MOVABLE' })
    await expect(a.weave.migrate('a/99', 'nowhere')).rejects.toMatchObject({ code: 'RAIMENT_UNKNOWN_THREAD' })
    await expect(a.weave.migrate(running, 'nowhere')).rejects.toMatchObject({ code: 'RAIMENT_UNKNOWN_WEAVE' })
    await a.close()

    let printed: string[] = []
    const cli = async (...args: string[]): Promise<number> => {
      const r = await cliRun([...args, '--db', join(dir, 'a.db')])
      printed = r.printed
      return r.code
    }
    expect(await cli('migrate', done, '--to', 'nowhere')).toBe(1)
    expect(printed.join('')).toMatch(new RegExp(`^raiment: RAIMENT_THREAD_NOT_MOVABLE: thread ${done} cannot move: it is done`, 'm'))
    expect(await cli('migrate', running, '--to', 'nowhere')).toBe(1)
    expect(printed.join('')).toMatch(/^raiment: RAIMENT_NO_WEAVE: no weave runs on /m)
  }, 60_000)
})

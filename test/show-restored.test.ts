/**
 * `raiment show` on a file rebuilt from a journal stream: a thread that ended before the stream's
 * snapshot has its row (and its count of calls) but not its calls, which the stream no longer
 * carries. `ps` said CALLS 3 while `show` said "(no calls recorded)"; now both count the calls it
 * made, and `show` says why this file does not hold them; `dump` refuses to write a dump of it
 * that would not replay.
 */
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { thread } from 'raiment'
import { rebuildJournal } from '../src/replication/rebuild.js'
import { AMQP_URL, brokerTests, brokerUp, CI, freshNamespace, removeNamespace } from './support/broker.js'
import { cliOut, cliRun } from './support/cli-in-process.js'
import { dropStreams, openReplicated } from './support/replication.js'
import { tempDir } from './support/tmp.js'

const thrice = thread({
  uses: ['clock'],
  async does() {
    await this.clock.now()
    await this.clock.now()
    await this.clock.now()
    return 'ok'
  },
})

describe.skipIf(!brokerUp && !CI)('show on a restored file', () => {
  const cleanups = brokerTests()

  it('says how many calls the ended thread made and why this file has none of them, as ps counts them', async () => {
    const ns = freshNamespace()
    const dir = tempDir()
    const file = join(dir, 'r.db')
    cleanups.push(async () => {
      await dropStreams(ns, 'r')
      await removeNamespace(ns, ['r'])
    })
    const first = await openReplicated(ns, { db: file, weaveId: 'r', threads: { thrice } })
    const id = first.weave.spawn('thrice')
    expect(await first.weave.join(id)).toMatchObject({ status: 'done' })
    await first.close()
    // Started again: a new generation, whose snapshot holds the ended thread's row, not its calls.
    const again = await openReplicated(ns, { db: file, weaveId: 'r', threads: { thrice } })
    await again.close()
    const restored = join(dir, 'restored.db')
    await rebuildJournal({ url: AMQP_URL, namespace: ns, weaveId: 'r', file: restored })

    const ps = JSON.parse(await cliOut(['ps', '--db', restored, '--json'])) as Array<{ id: string; calls: number }>
    expect(ps.find((t) => t.id === id)?.calls).toBe(3)
    const shown = await cliOut(['show', id, '--db', restored])
    expect(shown).not.toContain('(no calls recorded)')
    expect(shown).toContain('(3 calls made; none in this file: it was rebuilt from a journal stream')
    const json = JSON.parse(await cliOut(['show', id, '--db', restored, '--json'])) as { thread: { calls: number }; calls: unknown[] }
    expect(json.thread.calls).toBe(3)
    expect(json.calls).toEqual([])
    // The weave's own file holds them: no such line there.
    const own = await cliOut(['show', id, '--db', file])
    expect(own).not.toContain('in this file')
    expect(own).toContain('clock.now')

    // A dump of it from the restored file would replay to a divergence: refused, nothing written.
    const out = join(dir, 'd.json')
    const refused = await cliRun(['dump', id, '--db', restored, '-o', out])
    expect(refused.code).not.toBe(0)
    expect(refused.printed.join('\n')).toMatch(/RAIMENT_RECORD_INCOMPLETE: cannot dump .*3 calls made; none in this file: it was rebuilt from a journal stream/)
    expect(existsSync(out)).toBe(false)
    // From the weave's own file it is dumped whole.
    expect((await cliRun(['dump', id, '--db', file, '-o', out])).code).toBe(0)
    expect(existsSync(out)).toBe(true)
  })
})

/**
 * A thread a reload kept on its old code (its record diverges under the new) that continues as
 * new starts its next run on the code of now, with a record of its own: from then on it is a
 * thread like the others, passivated when it waits (before, it stayed marked as kept, and in
 * memory, for good). Real thread files, `weave.reload()`, passivation at once.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { Weave } from 'raiment'
import { tempDir } from './support/tmp.js'

const RAIMENT = new URL('../src/index.ts', import.meta.url).href

/** v1 takes a message, then another: 'again' continues as new. */
const V1 = `import { thread } from '${RAIMENT}'
export default thread({
  uses: ['mailbox', 'threads'],
  async does() {
    const first = await this.mailbox.receive()
    const m = await this.mailbox.receive()
    if (m === 'again') return this.threads.continueAsNew({})
    return { version: 1, first, m }
  },
})
`
/** v2 reads the clock first: a record of v1 diverges at its first entry. */
const V2 = `import { thread } from '${RAIMENT}'
export default thread({
  uses: ['mailbox', 'threads', 'clock'],
  async does() {
    await this.clock.now()
    const m = await this.mailbox.receive()
    return { version: 2, m }
  },
})
`

describe('continue-as-new after a reload kept a thread on its old code', () => {
  it('the next run is on the new code, and is passivated when it waits', async () => {
    const dir = tempDir('raiment-continue-reload-')
    mkdirSync(join(dir, 'threads'))
    const file = join(dir, 'threads', 'actor.ts')
    writeFileSync(file, V1)
    const weave = await Weave.open({ db: join(dir, 'w.db'), threads: join(dir, 'threads'), durability: 'memory', dumps: false, passivateAfter: 0 })
    try {
      const passivated: string[] = []
      weave.on('thread-passivated', (e) => passivated.push(e.id))
      const id = weave.spawn('actor')
      weave.send(id, 'hello')
      await expect.poll(() => weave.journal.entries(id).length, { interval: 5 }).toBe(1)
      writeFileSync(file, V2)
      const report = await weave.reload()
      expect(report.types.find((t) => t.type === 'actor')?.kept.map((k) => k.id)).toEqual([id])
      // Kept on v1: it waits in memory.
      expect(weave.running).toBe(1)
      const before = passivated.length
      weave.send(id, 'again')
      // Its next run (v2) reads the clock and waits: passivated.
      await expect.poll(() => passivated.length > before && weave.running === 0, { timeout: 5_000, interval: 5 }).toBe(true)
      weave.send(id, 'last')
      expect(await weave.join(id)).toMatchObject({ status: 'done', result: { version: 2, m: 'last' } })
    } finally {
      await weave.close()
    }
  })
})

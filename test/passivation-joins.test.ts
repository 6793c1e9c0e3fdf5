/**
 * A join given up leaves nothing behind. A thread that joins a child while it waits on something
 * else too (a heartbeat: `Promise.race([threads.join(c), clock.sleep(5)])`), passivated between
 * its ticks, replays its record at each wake and so joins again: each earlier join was given up
 * with the run that made it. Its resolver, with the whole run it belonged to, stayed on the
 * child's joiners until the child ended: memory grew with the square of the wakes (+69 MB for 400
 * ticks, against +1 MB with passivation off), so a thread passivated to save memory cost far more.
 */
import { join } from 'node:path'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { describe, expect, it } from 'vitest'
import { thread, Weave } from 'raiment'
import { tempDir } from './support/tmp.js'
import { receiveOne } from './support/receive-one.js'

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

const idle = receiveOne

const ticker = thread({
  uses: ['threads', 'clock'],
  async does(p: { n: number }) {
    const c = await this.threads.spawn('idle')
    for (let i = 0; i < p.n; i++) {
      const r = await Promise.race([this.threads.join(c).then(() => 'ended'), this.clock.sleep(5).then(() => 'tick')])
      if (r === 'ended') return i
    }
    return 'ticks done'
  },
})

describe('joins and passivation', () => {
  it('a joiner passivated and woken 400 times, joining again each time, leaves no resolver behind', async () => {
    const weave = await Weave.open({ db: join(tempDir('raiment-joins-'), 'w.db'), durability: 'memory', threads: { idle, ticker }, dumps: false, ioLibs: false, passivateAfter: 0 })
    try {
      let wakes = 0
      weave.on('thread-start', () => wakes++)
      gc()
      const before = process.memoryUsage().heapUsed
      const end = await weave.join(weave.spawn('ticker', { n: 400 }))
      gc()
      const grown = process.memoryUsage().heapUsed - before
      expect(end).toMatchObject({ status: 'done', result: 'ticks done' })
      // Woken many times (each wake replays its record and joins again).
      expect(wakes).toBeGreaterThan(100)
      // Each given-up join held its run: 69 MB before; a few MB of records and rows now.
      expect(grown).toBeLessThan(20e6)
    } finally {
      await weave.close()
    }
  }, 120_000)
})

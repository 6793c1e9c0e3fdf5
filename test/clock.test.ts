import { expect, it } from 'vitest'
import { join } from 'node:path'
import { Weave, thread } from 'raiment'
import { tempDir } from './support/tmp.js'

it('a sleep longer than a timer can hold (24.8 days) waits, rather than firing at once', async () => {
  const long = thread({ uses: ['clock'], async does() { await this.clock.sleep(30 * 24 * 3600 * 1000); return 'woke' } })
  const short = thread({ uses: ['clock'], async does() { await this.clock.sleep(50); return 'short' } })
  const weave = await Weave.open({ db: join(tempDir(), 'w.db'), durability: 'memory', threads: { long, short }, ioLibs: false, dumps: false })
  const l = weave.spawn('long')
  const ended: string[] = []
  weave.on('thread-end', (e) => ended.push(e.id))
  // The short sleep ends well after a 1 ms misfire of the long one would have.
  expect(await weave.join(weave.spawn('short'))).toMatchObject({ result: 'short' })
  expect(ended).not.toContain(l)
  weave.kill(l)
  expect(await weave.join(l)).toMatchObject({ status: 'killed' })
  await weave.close()
})

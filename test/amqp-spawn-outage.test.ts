/**
 * A spawn on a named weave while the broker is out of reach. Weave b joined the namespace and
 * stopped (as for a restart), so a no longer hears it; then a loses the broker (a TCP proxy in
 * front of the service broker is cut). Before, a's check for b's queue answered "no" at once
 * with no connection, and the spawn ended RAIMENT_UNKNOWN_WEAVE, recorded so for good. Now it
 * waits for the broker, finds b's queue, and the spawn goes there.
 */
import { describe, expect, it } from 'vitest'
import { thread, type AnyThreadType } from 'raiment'
import { AMQP_URL, brokerTests, brokerUp, CI, freshNamespace, removeNamespace } from './support/broker.js'
import { brokerProxy } from './support/broker-proxy.js'
import { linkedWeave, type LinkedWeave } from './support/linked-weave.js'
import { tempDir } from './support/tmp.js'

declare module 'raiment' {
  interface Libraries {
    spawnProbe: { before(): Promise<void> }
  }
}

const child = thread({ uses: [], async does() { return 'child ran' } })
const spawner = thread({
  uses: ['spawnProbe', 'threads'],
  async does(p: { on: string }) {
    await this.spawnProbe.before()
    return await this.threads.spawn('child', {}, { on: p.on })
  },
})
const types = { child, spawner } as Record<string, AnyThreadType>

describe.skipIf(!brokerUp && !CI)('a spawn on a named weave during an outage', () => {
  const cleanups = brokerTests()

  it('waits for the broker and goes to the weave, instead of failing for good', async () => {
    const ns = freshNamespace()
    cleanups.push(() => removeNamespace(ns, ['a', 'b']))
    const px = await brokerProxy()
    cleanups.push(() => px.close())
    const dir = tempDir()
    let asked = (): void => {}
    const calling = new Promise<void>((r) => (asked = r))
    const open = (id: string, url: string): Promise<LinkedWeave> =>
      linkedWeave({ dir, ns, id, link: { url }, weave: { threads: types, libraries: { spawnProbe: { before: async () => asked() } } } }, cleanups)
    const b = await open('b', AMQP_URL)
    const a = await open('a', px.url)
    await expect.poll(() => a.link.live().map((w) => w.id), { timeout: 10_000, interval: 20 }).toContain('b')
    await b.close()
    await expect.poll(() => a.link.live().map((w) => w.id), { timeout: 10_000, interval: 20 }).not.toContain('b')
    const down = new Promise<void>((r) => a.link.broker.once('down', () => r()))
    px.cut()
    await down
    const id = a.weave.spawn('spawner', { on: 'b' })
    // Its spawn call is made once `before` is answered (committed), on a turn after.
    await calling
    await a.weave.committed()
    await new Promise((r) => setImmediate(r))
    px.restore()
    const end = await a.weave.join(id)
    expect(end, JSON.stringify(end)).toMatchObject({ status: 'done', result: expect.stringMatching(/^b\//) })
  }, 60_000)
})

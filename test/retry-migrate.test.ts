/**
 * A thread moved to another weave (real broker) while a call of it waits between two attempts:
 * the failed attempts travel with it, so the wait ends at the recorded due time there and the
 * attempt count goes on; the service sees no more requests than the policy allows.
 */
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { thread, Weave } from 'raiment'
import { AmqpLink } from '../src/amqp/link.js'
import { AttemptLog } from '../src/retry/attempts.js'
import { pendingRetryWaits } from '../src/retry/run.js'
import { AMQP_URL, brokerUp, CI, freshNamespace, removeNamespace, requireBroker } from './support/broker.js'
import { flakyServer, type FlakyServer } from './support/flaky-server.js'
import { cliOut } from './support/cli-in-process.js'
import { tempDir } from './support/tmp.js'

const poster = thread({
  uses: ['fetch'],
  async does(url: string) {
    const res = await this.fetch.post(url, {}, { idempotent: true, retry: { attempts: 3, initialInterval: 300, jitter: 0 } })
    return res.status
  },
})

describe.skipIf(!brokerUp && !CI)('retries of a thread that moves', () => {
  let server: FlakyServer
  beforeAll(async () => {
    requireBroker()
    server = await flakyServer()
  })
  afterAll(async () => {
    await server?.close()
  })

  it('the failed attempts travel with the thread: the wait and the count go on where it arrives', async () => {
    const dir = tempDir()
    const ns = freshNamespace()
    const env: Record<string, { link: AmqpLink; weave: Weave }> = {}
    try {
      for (const id of ['a', 'b']) {
        const link = await AmqpLink.connect({ url: AMQP_URL, namespace: ns, heartbeatMs: 100, log: () => {} })
        const weave = await Weave.open({ db: join(dir, `${id}.db`), weaveId: id, threads: { poster }, ioLibs: false, dumps: false, durability: 'memory', remote: link })
        await link.start(weave)
        env[id] = { link, weave }
      }
      const a = env['a']!
      const b = env['b']!
      await expect.poll(() => a.link.live().map((w) => w.id), { timeout: 5_000, interval: 20 }).toContain('b')
      const id = a.weave.spawn('poster', `${server.url}/effect?fail=9`)
      await expect.poll(() => pendingRetryWaits(), { timeout: 5_000, interval: 5 }).toBe(1)
      const [first] = AttemptLog.of(a.weave.journal).ofThread(id)
      expect(await a.weave.migrate(id, 'b')).toBe('b')
      // Where it left, show says the wait went on there, not that the call was never answered.
      await a.weave.committed()
      const shown = await cliOut(['show', id, '--db', join(dir, 'a.db')])
      expect(shown).toMatch(/in flight on weave b \(moved there\) fetch\.request {2}attempt 1 /)
      expect(shown).not.toMatch(/never answered/)
      // Attempts 2 and 3 on b (the answer of the third, a 503, is the outcome): three requests in all.
      expect(await b.weave.join(id)).toMatchObject({ status: 'done', result: 503 })
      const rows = AttemptLog.of(b.weave.journal).ofThread(id)
      expect(rows.map((r) => r.n)).toEqual([1, 2])
      expect(rows[0]).toEqual(first)
      expect(rows[1]!.started).toBeGreaterThanOrEqual(first!.due)
      expect(server.keys.get(first!.call)?.requests).toBe(3)
    } finally {
      for (const { link, weave } of Object.values(env).reverse()) {
        await link.close()
        await weave.close()
      }
      await removeNamespace(ns, ['a', 'b'])
    }
  }, 30_000)
})

/**
 * `raiment/broker` as a program uses it: a weave replicating its journal through `AmqpLink`
 * (`Weave.open({ remote, replicate: true, durability: 'replicated' })`), a `ReplicatedHost` (what
 * `raiment start --replicate` runs), and `rebuildJournal` writing a journal that resumes its
 * threads where they were. On the service broker, in a namespace of the test's own.
 */
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { thread, Weave } from 'raiment'
import { AmqpLink, Fenced, rebuildJournal, ReplicatedHost } from 'raiment/broker'
import { AMQP_URL, brokerUp, CI, freshNamespace, requireBroker } from './support/broker.js'
import { dropStreams, journalState } from './support/replication.js'
import { tempDir } from './support/tmp.js'

/** Counts to `n`, a recorded call per step, then waits for a message and returns it with the count. */
const counter = thread({
  uses: ['clock', 'mailbox'],
  async does(p: { n: number }) {
    let total = 0
    for (let i = 0; i < p.n; i++) total += (await this.clock.now()) > 0 ? 1 : 0
    const got = await this.mailbox.receive<string>()
    return { total, got }
  },
})
const threads = { counter }

describe.skipIf(!brokerUp && !CI)('raiment/broker', () => {
  it('Weave.open with an AmqpLink and replicate: true; rebuildJournal gives a journal that runs the thread on to the same end', async () => {
    requireBroker()
    const dir = tempDir()
    const namespace = freshNamespace()
    const link = await AmqpLink.connect({ url: AMQP_URL, namespace, log: () => {} })
    const weave = await Weave.open({ db: join(dir, 'a.db'), weaveId: 'api-a', threads, ioLibs: false, dumps: false, remote: link, replicate: true, durability: 'replicated' })
    try {
      await link.start(weave)
      const id = weave.spawn('counter', { n: 20 })
      // Under 'replicated', the thread saw its 20 outcomes only once the broker had them: its
      // record is in the stream before it waits for its message.
      await until(() => weave.journal.entries(id).length >= 20)
      await weave.committed()
      await weave.close()
      await link.close()

      const copy = join(dir, 'copy.db')
      const r = await rebuildJournal({ url: AMQP_URL, namespace, weaveId: 'api-a', file: copy })
      expect(r.entries).toBeGreaterThanOrEqual(20)
      expect(journalState(copy, true)).toEqual(journalState(join(dir, 'a.db'), true))

      // The copy runs the thread on: a message ends it with the count the original reached.
      const resumed = await Weave.open({ db: copy, threads, ioLibs: false, dumps: false })
      try {
        expect(resumed.journal.weaveId).toBe('api-a')
        expect(resumed.send(id, 'go').delivered).toBe(true)
        const end = await resumed.join(id)
        expect(end).toEqual({ id, type: 'counter', status: 'done', result: { total: 20, got: 'go' } })
      } finally {
        await resumed.close()
      }
    } finally {
      await weave.close()
      await link.close()
      await dropStreams(namespace, 'api-a')
    }
  }, 60_000)

  it('ReplicatedHost runs a replicated weave with its lease; a second host of the same journal is refused', async () => {
    requireBroker()
    const dir = tempDir()
    const namespace = freshNamespace()
    const lines: string[] = []
    const fenced: Fenced[] = []
    const host = await ReplicatedHost.start({
      url: AMQP_URL,
      namespace,
      weave: { db: join(dir, 'h.db'), weaveId: 'api-h', threads, ioLibs: false, dumps: false, durability: 'replicated' },
      log: (l) => lines.push(l),
      fenced: (e) => fenced.push(e),
    })
    try {
      const id = host.weave.spawn('counter', { n: 5 })
      expect(host.weave.send(id, 'hi').delivered).toBe(true)
      expect(await host.weave.join(id)).toEqual({ id, type: 'counter', status: 'done', result: { total: 5, got: 'hi' } })
      // The lease is taken before the journal is opened: a second host of the weave is refused
      // (a weave that runs on its own hands nothing back when asked), and one on its very file at once.
      await expect(
        ReplicatedHost.start({ url: AMQP_URL, namespace, weave: { db: join(dir, 'h2.db'), weaveId: 'api-h', threads, ioLibs: false }, log: () => {}, fenced: () => {}, reclaimMs: 500 }),
      ).rejects.toMatchObject({ code: 'RAIMENT_LEASE_HELD', message: expect.stringContaining("'api-h'") })
      await expect(
        ReplicatedHost.start({ url: AMQP_URL, namespace, weave: { db: join(dir, 'h.db'), threads, ioLibs: false }, log: () => {}, fenced: () => {}, reclaimMs: 500 }),
      ).rejects.toMatchObject({ code: 'RAIMENT_JOURNAL_OWNED' })
      expect(fenced).toEqual([])
    } finally {
      await host.close()
      await dropStreams(namespace, 'api-h')
    }
  }, 60_000)
})

/** Resolves once `check` holds, looking at each turn of the event loop's timers. */
async function until(check: () => boolean): Promise<void> {
  while (!check()) await new Promise((r) => setTimeout(r, 5))
}

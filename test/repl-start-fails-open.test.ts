/**
 * A replicated weave whose start fails after its weave opened (here its `opened` listener throws;
 * its start on the broker could too) is closed before the failure is thrown. Before, only its
 * link closed: the weave stayed open with its owner lock, threads and timers, and nothing could
 * close it (ReplicatedHost.start threw, so the caller had no host): the journal stayed owned by a
 * weave that ran nowhere, and `raiment start --replicate` hung after printing its error. The
 * service broker, a real journal file.
 */
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { thread, Weave, type AnyThreadType } from 'raiment'
import { ReplicatedHost } from '../src/replication/host.js'
import { JournalLock } from '../src/journal-owner.js'
import { AMQP_URL, brokerTests, brokerUp, CI, freshNamespace } from './support/broker.js'
import { dropStreams } from './support/replication.js'
import { tempDir } from './support/tmp.js'

const threads = { echo: thread({ uses: [], async does(p: unknown) { return p } }) as AnyThreadType }

describe.skipIf(!brokerUp && !CI)('a replicated start that fails once its weave is open', () => {
  const cleanups = brokerTests()

  it('closes the weave (its journal and owner lock let go), and the weave starts again', async () => {
    const ns = freshNamespace()
    const db = join(tempDir(), 'f.db')
    cleanups.push(() => dropStreams(ns, 'f'))
    const weave = { db, weaveId: 'f', threads, ioLibs: false as const, dumps: false as const }
    let opened: Weave | null = null
    const failed = await ReplicatedHost.start({
      url: AMQP_URL,
      namespace: ns,
      weave,
      log: () => {},
      fenced: () => {},
      opened: (w) => {
        opened = w
        throw new Error('the opened listener failed')
      },
    }).catch((e: unknown) => e)
    expect((failed as Error).message).toBe('the opened listener failed')
    const w = opened as Weave | null
    expect(w).not.toBe(null)
    expect(w!.journal.closed).toBe(true)
    expect(JournalLock.held(db)).toBe(false)
    expect(() => w!.spawn('echo', 1)).toThrow(/the weave is closed/)
    // Its lease was let go with its link: it starts again at once, and runs.
    const host = await ReplicatedHost.start({ url: AMQP_URL, namespace: ns, weave, log: () => {}, fenced: () => {}, reclaimMs: 0 })
    try {
      expect(await host.weave.join(host.weave.spawn('echo', 2))).toMatchObject({ status: 'done', result: 2 })
    } finally {
      await host.close()
    }
  }, 60_000)
})

/**
 * The broker connection lost while a replicated weave writes its first generation (the window
 * of one round trip in `Replicator.start`, opened here by closing the real connection as the
 * generation's declaring channel closes). Before, the journal was left with no tap: the weave
 * ran, released every outcome at its local commit under 'replicated', said its lag was 0, and
 * the stream never had a batch (a rebuild found nothing). Now the open fails with
 * RAIMENT_REPLICATION_UNAVAILABLE and resumes nothing (a takeover's fencing counts on the first
 * generation being in the stream before any thread runs); opened again, the journal replicates,
 * and rebuilt from the stream it equals the file.
 */
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { thread, Weave } from 'raiment'
import { AmqpLink } from '../src/amqp/link.js'
import { rebuildJournal } from '../src/replication/rebuild.js'
import { AMQP_URL, brokerTests, brokerUp, CI, freshNamespace } from './support/broker.js'
import { dropStreams, journalState } from './support/replication.js'
import { tempDir } from './support/tmp.js'

const steps = thread({
  uses: ['clock'],
  async does(p: { n: number }) {
    for (let i = 0; i < p.n; i++) await this.clock.now()
    return p.n
  },
})

describe.skipIf(!brokerUp && !CI)('the connection lost during the first generation', () => {
  const cleanups = brokerTests()

  it('fails the open, resuming nothing; opened again, the journal replicates', async () => {
    const ns = freshNamespace()
    const dir = tempDir()
    const file = join(dir, 'a.db')
    const link = await AmqpLink.connect({ url: AMQP_URL, namespace: ns, log: () => {} })
    cleanups.push(() => dropStreams(ns, 'a'))
    cleanups.push(() => link.close())
    // The first channel made after the replicator's confirm channel is the one that declares
    // the first generation: the connection goes as it closes.
    const conn = link.broker.connection! as unknown as { createConfirmChannel(): Promise<unknown>; createChannel(): Promise<{ close(): Promise<void> }>; close(): Promise<void> }
    let confirmMade = false
    let dropped = false
    const confirm = conn.createConfirmChannel.bind(conn)
    conn.createConfirmChannel = async () => {
      const ch = await confirm()
      confirmMade = true
      return ch
    }
    const plain = conn.createChannel.bind(conn)
    conn.createChannel = async () => {
      const ch = await plain()
      if (confirmMade && !dropped) {
        const close = ch.close.bind(ch)
        ch.close = async () => {
          dropped = true
          await conn.close().catch(() => {})
          return close()
        }
      }
      return ch
    }
    const up = new Promise<void>((res) => link.broker.once('up', () => res()))
    const opening = Weave.open({ db: file, weaveId: 'a', threads: { steps }, durability: 'replicated', dumps: false, ioLibs: false, remote: link, replicate: true })
    await expect(opening).rejects.toMatchObject({ code: 'RAIMENT_REPLICATION_UNAVAILABLE', message: expect.stringMatching(/went while its first generation was written; nothing was resumed/) })
    expect(dropped).toBe(true)
    await up
    const weave = await Weave.open({ db: file, weaveId: 'a', threads: { steps }, durability: 'replicated', dumps: false, ioLibs: false, remote: link, replicate: true })
    cleanups.push(() => weave.close())
    await link.start(weave)
    const id = weave.spawn('steps', { n: 100 })
    expect(await weave.join(id)).toMatchObject({ status: 'done', result: 100 })
    await link.replicator!.settled()
    expect(link.replicator!.lag()).toEqual({ entries: 0, bytes: 0 })
    await rebuildJournal({ url: AMQP_URL, namespace: ns, weaveId: 'a', file: join(dir, 'b.db') })
    expect(journalState(join(dir, 'b.db'), true)).toEqual(journalState(file, true))
  }, 60_000)
})

/**
 * On the 3-node cluster (scripts/rabbitmq-cluster.sh; skipped, with one line, when it does not
 * run): a replicated weave connected to one node writes its journal to streams with a replica on
 * every node, and the journal rebuilt through another node equals the file.
 */
import { join } from 'node:path'
import amqp from 'amqplib'
import { describe, expect, it } from 'vitest'
import { thread, Weave } from 'raiment'
import { AmqpLink } from '../src/amqp/link.js'
import { rebuildJournal } from '../src/replication/rebuild.js'
import { genStream, headStream } from '../src/replication/records.js'
import { deleteJournalStreams } from '../src/replication/streams.js'
import { clusterUrls, streamReplicas } from './support/cluster.js'
import { freshNamespace } from './support/broker.js'
import { journalState } from './support/replication.js'
import { tempDir } from './support/tmp.js'

const urls = clusterUrls()

const steps = thread({
  uses: ['clock'],
  async does(p: { n: number }) {
    for (let i = 0; i < p.n; i++) await this.clock.now()
    return p.n
  },
})

describe.skipIf(urls === null)('journal replication on a 3-node cluster', () => {
  it('keeps a replica on every node, and rebuilds through another node', async () => {
    const [first, second] = urls!
    const dir = tempDir()
    const ns = freshNamespace()
    const link = await AmqpLink.connect({ url: first!, namespace: ns, log: () => {} })
    const weave = await Weave.open({ db: join(dir, 'a.db'), weaveId: 'c', threads: { steps }, ioLibs: false, dumps: false, remote: link, replicate: true, durability: 'replicated' })
    await link.start(weave)
    try {
      const ids = Array.from({ length: 5 }, () => weave.spawn('steps', { n: 20 }))
      for (const id of ids) await weave.join(id)
      await link.replicator!.flushed()
      expect(await streamReplicas(genStream(ns, 'c', link.replicator!.generation))).toHaveLength(3)
      expect(await streamReplicas(headStream(ns, 'c'))).toHaveLength(3)
    } finally {
      await weave.close()
      await link.close()
    }
    await rebuildJournal({ url: second!, namespace: ns, weaveId: 'c', file: join(dir, 'b.db') })
    expect(journalState(join(dir, 'b.db'), true)).toEqual(journalState(join(dir, 'a.db'), true))
    const conn = await amqp.connect(first!)
    await deleteJournalStreams(conn, ns, 'c')
    await conn.close()
  })
})

/**
 * A replicated weave's link closing while its threads still run (a host closes its links, then
 * its weaves): once the replicator has stopped publishing, no outcome reaches a thread. Before,
 * batches committed after it stopped were released at once, never in the stream: a weave taken
 * over from the stream lost outcomes its threads had acted on. The service broker, a real journal
 * file, the journal rebuilt from the stream.
 */
import Database from 'better-sqlite3'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { thread } from 'raiment'
import { rebuildJournal } from '../src/replication/rebuild.js'
import { AMQP_URL, brokerUp, CI, freshNamespace } from './support/broker.js'
import { dropStreams, openReplicated } from './support/replication.js'
import { tempDir } from './support/tmp.js'

/** Outcomes the looping thread has seen. */
let seen = 0

const looping = thread({
  uses: ['clock'],
  async does() {
    for (;;) {
      await this.clock.now()
      seen++
    }
  },
})

describe.skipIf(!brokerUp && !CI)('a replicated link closing under running threads', () => {
  const namespaces: string[] = []
  afterAll(async () => {
    for (const ns of namespaces) await dropStreams(ns, 'c').catch(() => {})
  })

  it('releases no outcome that is not in the stream', async () => {
    const dir = tempDir()
    const ns = freshNamespace()
    namespaces.push(ns)
    const r = await openReplicated(ns, { db: join(dir, 'c.db'), weaveId: 'c', threads: { looping } })
    const id = r.weave.spawn('looping')
    while (seen < 50) await new Promise((res) => setImmediate(res))
    await r.link.close()
    // Turns for the thread to go on: each a commit, had its outcome been released.
    for (let i = 0; i < 200; i++) await new Promise((res) => setImmediate(res))
    const saw = seen
    await r.weave.close()
    await rebuildJournal({ url: AMQP_URL, namespace: ns, weaveId: 'c', file: join(dir, 'rebuilt.db') })
    const db = new Database(join(dir, 'rebuilt.db'), { readonly: true })
    try {
      const inStream = db.prepare('SELECT count(*) FROM journal WHERE thread = ?').pluck().get(id) as number
      // The spawn's own entry aside, every outcome the thread saw is in the stream.
      expect(inStream).toBeGreaterThanOrEqual(saw)
    } finally {
      db.close()
    }
  })
})

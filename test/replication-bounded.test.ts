/**
 * Bounded streams: a weave whose generation passes `checkpointBytes` starts a new one from a
 * snapshot of its live state; ended threads' entries are not carried; the old generation is
 * deleted once the new one is current; a rebuild reads the live state, not all history. A
 * generation of many small batches is checkpointed by their count (`checkpointRecords`), once
 * they outweigh its snapshot.
 */
import amqp from 'amqplib'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { thread, Weave } from 'raiment'
import { rebuildJournal } from '../src/replication/rebuild.js'
import { genStream, headStream } from '../src/replication/records.js'
import { queueExists } from '../src/replication/streams.js'
import { AMQP_URL, brokerUp, CI, freshNamespace } from './support/broker.js'
import { dropStreams, journalState, openReplicated } from './support/replication.js'
import { tempDir } from './support/tmp.js'

const short = thread({
  uses: ['clock'],
  async does(p: { n: number }) {
    for (let i = 0; i < p.n; i++) await this.clock.now()
    return p.n
  },
})

const waiting = thread({
  uses: ['clock', 'mailbox'],
  async does(p: { n: number }) {
    for (let i = 0; i < p.n; i++) await this.clock.now()
    return await this.mailbox.receive()
  },
})

const CHECKPOINT = 64 * 1024

describe.skipIf(!brokerUp && !CI)('bounded journal streams', () => {
  const namespaces: Array<[string, string]> = []
  afterAll(async () => {
    for (const [ns, id] of namespaces) await dropStreams(ns, id).catch(() => {})
  })

  it('checkpoint into new generations, carry only live threads, and delete the old ones', async () => {
    const dir = tempDir()
    const ns = freshNamespace()
    namespaces.push([ns, 'b'])
    const r = await openReplicated(ns, { db: join(dir, 'a.db'), weaveId: 'b', threads: { short, waiting } }, { checkpointBytes: CHECKPOINT })
    r.weave.spawn('waiting', { n: 30 })
    r.weave.spawn('waiting', { n: 7 })
    let entries = 37
    // 20 rounds: with 10, a full run once saw 3 generations (a checkpoint is not begun while one is
    // under way, and a big snapshot waits for as many bytes of batches after it).
    for (let round = 0; round < 20; round++) {
      const ids = Array.from({ length: 20 }, () => r.weave.spawn('short', { n: 25 }))
      for (const id of ids) await r.weave.join(id)
      entries += 20 * 25
    }
    await r.weave.committed()
    await r.link.replicator!.flushed()
    const rep = r.link.replicator!
    const gen = rep.generation
    // 10,000 entries of some 100 bytes each: many times the checkpoint size went through.
    expect(gen).toBeGreaterThan(3)
    expect(rep.streamBytes()).toBeLessThan(2 * CHECKPOINT)
    expect(rep.lag()).toEqual({ entries: 0, bytes: 0 })
    await r.close()
    const conn = await amqp.connect(AMQP_URL)
    try {
      expect(await queueExists(conn, headStream(ns, 'b'))).toBe(true)
      expect(await queueExists(conn, genStream(ns, 'b', gen))).toBe(true)
      for (let g = 1; g < gen; g++) expect(await queueExists(conn, genStream(ns, 'b', g)), `generation ${g} of ${gen}`).toBe(false)
    } finally {
      await conn.close()
    }
    const rebuilt = await rebuildJournal({ url: AMQP_URL, namespace: ns, weaveId: 'b', file: join(dir, 'b.db') })
    expect(rebuilt.generation).toBe(gen)
    // The live threads' entries, and those of the threads that ended since the last snapshot.
    expect(rebuilt.entries).toBeGreaterThanOrEqual(37)
    expect(rebuilt.entries).toBeLessThan(entries / 4)
    expect(journalState(join(dir, 'b.db'), false)).toEqual(journalState(join(dir, 'a.db'), false))
  })

  it('checkpoint a generation of many small batches by their count, once they outweigh its snapshot', async () => {
    const dir = tempDir()
    const ns = freshNamespace()
    namespaces.push([ns, 'c'], [ns, 'd'])
    // One thread's sequential steps: a small batch each, and a snapshot of almost nothing.
    const r = await openReplicated(ns, { db: join(dir, 'c.db'), weaveId: 'c', threads: { short } }, { checkpointRecords: 20 })
    await r.weave.join(r.weave.spawn('short', { n: 200 }))
    await r.link.replicator!.flushed()
    expect(r.link.replicator!.generation).toBeGreaterThan(3)
    await r.close()
    const rebuilt = await rebuildJournal({ url: AMQP_URL, namespace: ns, weaveId: 'c', file: join(dir, 'c2.db') })
    // Without checkpoints by count it reads ~200 batches. With them: the head (two records a
    // checkpoint, plus a marker per reconnect), the last snapshot and the batches since, which
    // may be as many as the head holds: ~40 on a quiet machine, 62 seen in a loaded full run.
    expect(rebuilt.records).toBeLessThan(100)
    expect(journalState(join(dir, 'c2.db'), false)).toEqual(journalState(join(dir, 'c.db'), false))
    // A journal whose state (300 ended threads) outweighs 60 small batches: no checkpoint for them.
    const plain = await Weave.open({ db: join(dir, 'd.db'), weaveId: 'd', threads: { short }, ioLibs: false, dumps: false })
    const ids = Array.from({ length: 300 }, () => plain.spawn('short', { n: 1 }))
    for (const id of ids) await plain.join(id)
    await plain.close()
    const d = await openReplicated(ns, { db: join(dir, 'd.db'), weaveId: 'd', threads: { short } }, { checkpointRecords: 20 })
    await d.weave.join(d.weave.spawn('short', { n: 60 }))
    await d.link.replicator!.flushed()
    expect(d.link.replicator!.generation).toBe(1)
    await d.close()
  })

  it('snapshot a live state larger than checkpointBytes again only once as many bytes were written since, not at every batch', async () => {
    const dir = tempDir()
    const ns = freshNamespace()
    namespaces.push([ns, 'e'])
    // 40 waiting threads of 200 entries each: a snapshot of ~3x CHECKPOINT.
    const plain = await Weave.open({ db: join(dir, 'e.db'), weaveId: 'e', threads: { short, waiting }, ioLibs: false, dumps: false })
    for (let i = 0; i < 40; i++) plain.spawn('waiting', { n: 200 })
    const count = plain.journal.db.prepare('SELECT count(*) FROM journal').pluck()
    while ((count.get() as number) < 40 * 200) await new Promise((r) => setImmediate(r))
    await plain.close()
    const r = await openReplicated(ns, { db: join(dir, 'e.db'), weaveId: 'e', threads: { short, waiting } }, { checkpointBytes: CHECKPOINT })
    const rep = r.link.replicator!
    await rep.settled()
    const snapshot = rep.streamBytes()
    expect(snapshot).toBeGreaterThan(2 * CHECKPOINT)
    const start = rep.generation
    // A thread's 60 steps, each a batch of its own: far less than the snapshot.
    await r.weave.join(r.weave.spawn('short', { n: 60 }))
    await rep.settled()
    expect(rep.generation).toBe(start)
    // Then writes of more than the snapshot: checkpointed.
    for (let round = 0; round < 20 && rep.generation === start; round++) {
      const ids = Array.from({ length: 20 }, () => r.weave.spawn('short', { n: 25 }))
      for (const id of ids) await r.weave.join(id)
      await rep.settled()
    }
    expect(rep.generation).toBeGreaterThan(start)
    await r.close()
  })
})

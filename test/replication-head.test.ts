/**
 * Reading a journal's head stream from its end: the head is never trimmed (a generation record
 * per checkpoint, start and takeover, a marker per read), so a takeover or restore must not read
 * all of it. `readHead` finds the last generation record however far back it is, and of the
 * highest epoch, while receiving only the records after it (and a window before), not the head's
 * history; a real replicated weave still restarts and rebuilds on it. A head naming a generation
 * whose snapshot never became whole (a checkpoint lost as it began) is rebuilt from the one before.
 */
import amqp, { type ChannelModel } from 'amqplib'
import Database from 'better-sqlite3'
import fc from 'fast-check'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { thread } from 'raiment'
import { rebuildJournal, THREAD_GAP } from '../src/replication/rebuild.js'
import { genStream, headStream, STREAM_ARGS } from '../src/replication/records.js'
import { declareGeneration, queueExists, readHead } from '../src/replication/streams.js'
import { AMQP_URL, brokerUp, CI, freshNamespace, requireBroker } from './support/broker.js'
import { dropStreams, journalState, openReplicated } from './support/replication.js'
import { tempDir } from './support/tmp.js'

const steps = thread({
  uses: ['clock'],
  async does(p: { n: number }) {
    for (let i = 0; i < p.n; i++) await this.clock.now()
    return p.n
  },
})

/** Appends records to a head stream: `gen` records (epoch, gen) and `pad` markers of nobody. */
async function append(conn: ChannelModel, queue: string, records: Array<{ gen: number; epoch: number } | { pad: number }>): Promise<void> {
  const ch = await conn.createConfirmChannel()
  await ch.assertQueue(queue, { durable: true, arguments: STREAM_ARGS })
  for (const r of records) {
    if ('pad' in r) for (let i = 0; i < r.pad; i++) ch.publish('', queue, Buffer.alloc(0), { headers: { kind: 'marker', id: 'nobody' } })
    else ch.publish('', queue, Buffer.alloc(0), { headers: { weave: 'w', epoch: r.epoch, rseq: r.gen * 10, kind: 'generation', gen: r.gen, journal: 'j' } })
  }
  await ch.waitForConfirms()
  await ch.close()
}

describe.skipIf(!brokerUp && !CI)('reading the head from its end', () => {
  beforeAll(requireBroker)
  const namespaces: Array<[string, string]> = []
  afterAll(async () => {
    for (const [ns, id] of namespaces) await dropStreams(ns, id)
  })

  it('finds the last generation record of the highest epoch, receiving the head after it, not its history', async () => {
    const conn = await amqp.connect(AMQP_URL)
    try {
      await fc.assert(
        fc.asyncProperty(
          fc.array(fc.record({ epochUp: fc.boolean(), after: fc.integer({ min: 0, max: 5000 }) }), { minLength: 1, maxLength: 3 }),
          fc.integer({ min: 0, max: 1000 }),
          async (gens, before) => {
            const ns = freshNamespace()
            namespaces.push([ns, 'w'])
            const queue = headStream(ns, 'w')
            let epoch = 1
            const records: Array<{ gen: number; epoch: number } | { pad: number }> = [{ pad: before }]
            gens.forEach((g, i) => {
              if (g.epochUp) epoch++
              records.push({ gen: i + 1, epoch }, { pad: g.after })
            })
            await append(conn, queue, records)
            const total = before + gens.reduce((n, g) => n + 1 + g.after, 0)
            const head = await readHead(conn, ns, 'w')
            expect(head).toMatchObject({ gen: gens.length, epoch, rseq: gens.length * 10, journal: 'j' })
            // Its own markers (one a read) are in the head too.
            expect(head!.length).toBeGreaterThan(total)
            expect(head!.length).toBeLessThanOrEqual(total + 4)
            // What it received: the records after the last generation record, within 16 times
            // the window that reached it, never the history before. Its reads: the last chunk (at
            // most the head), the windows that fell short (together less than 16/15 of the
            // distance, so of the head), and the one that reached it (at most the head): under
            // three heads, and under three times the window that reached it.
            const after = gens[gens.length - 1]!.after
            expect(head!.read).toBeLessThanOrEqual(Math.min(3 * (total + 4), 3 * (16 * (after + 2) + 256)) + 20)
          },
        ),
        // The example: a generation record just past the 4,096 window, so the next reads the whole head.
        { numRuns: 6, examples: [[[{ epochUp: false, after: 4095 }], 0]] },
      )
    } finally {
      await conn.close()
    }
  }, 120_000)

  it('a head of 20,000 records: a weave restarts on it, and a read of it receives its end only; a rebuild equals the journal', async () => {
    const dir = tempDir()
    const ns = freshNamespace()
    namespaces.push([ns, 'h'])
    const r = await openReplicated(ns, { db: join(dir, 'h.db'), weaveId: 'h', threads: { steps } })
    await r.weave.join(r.weave.spawn('steps', { n: 20 }))
    await r.close()
    // The history a long-lived weave leaves: markers of reads (restores, reconnects).
    const conn = await amqp.connect(AMQP_URL)
    try {
      await append(conn, headStream(ns, 'h'), [{ pad: 20_000 }])
      // Started again, it finds its generation behind them, and appends the next.
      const again = await openReplicated(ns, { db: join(dir, 'h.db'), weaveId: 'h', threads: { steps } })
      await again.weave.join(again.weave.spawn('steps', { n: 5 }))
      await again.link.replicator!.flushed()
      expect(again.link.replicator!.generation).toBe(2)
      await again.close()
      const head = await readHead(conn, ns, 'h')
      expect(head!.gen).toBe(2)
      expect(head!.length).toBeGreaterThan(20_000)
      expect(head!.read).toBeLessThan(1_000)
    } finally {
      await conn.close()
    }
    const rebuilt = await rebuildJournal({ url: AMQP_URL, namespace: ns, weaveId: 'h', file: join(dir, 'h2.db') })
    expect(rebuilt.generation).toBe(2)
    expect(rebuilt.records).toBeLessThan(1_000)
    expect(journalState(join(dir, 'h2.db'), false)).toEqual(journalState(join(dir, 'h.db'), false))
  }, 60_000)

  it('a generation left undeleted by a weave that stopped after its head moved on is deleted at the next start', async () => {
    const dir = tempDir()
    const ns = freshNamespace()
    namespaces.push([ns, 'l'])
    const run = async (): Promise<number> => {
      const r = await openReplicated(ns, { db: join(dir, 'l.db'), weaveId: 'l', threads: { steps } })
      await r.weave.join(r.weave.spawn('steps', { n: 3 }))
      await r.link.replicator!.settled()
      const gen = r.link.replicator!.generation
      await r.close()
      return gen
    }
    expect(await run()).toBe(1)
    expect(await run()).toBe(2)
    const conn = await amqp.connect(AMQP_URL)
    try {
      expect(await queueExists(conn, genStream(ns, 'l', 1))).toBe(false)
      // As if the weave had stopped before it deleted generation 1.
      await declareGeneration(conn, ns, 'l', 1)
      expect(await run()).toBe(3)
      expect(await queueExists(conn, genStream(ns, 'l', 1))).toBe(false)
      expect(await queueExists(conn, genStream(ns, 'l', 2))).toBe(false)
      expect(await queueExists(conn, genStream(ns, 'l', 3))).toBe(true)
    } finally {
      await conn.close()
    }
  }, 60_000)

  it('a head naming a generation whose snapshot never became whole: the rebuild takes the one before', async () => {
    const dir = tempDir()
    const ns = freshNamespace()
    namespaces.push([ns, 'i'])
    const r = await openReplicated(ns, { db: join(dir, 'i.db'), weaveId: 'i', threads: { steps } })
    await r.weave.join(r.weave.spawn('steps', { n: 20 }))
    await r.link.replicator!.settled()
    expect(r.link.replicator!.generation).toBe(1)
    const journal = r.weave.journal.meta('journal_id')!
    await r.close()
    // Two takeovers lost as they began (epochs 2 and 3): generations 2 and 3 declared and named
    // by the head, their snapshots never written (generation 1 is not deleted then).
    const conn = await amqp.connect(AMQP_URL)
    try {
      const ch = await conn.createConfirmChannel()
      for (const gen of [2, 3]) {
        await declareGeneration(conn, ns, 'i', gen)
        ch.publish('', headStream(ns, 'i'), Buffer.alloc(0), { headers: { weave: 'i', epoch: gen, rseq: 1_000, kind: 'generation', gen, journal } })
      }
      await ch.waitForConfirms()
      await ch.close()
    } finally {
      await conn.close()
    }
    const lines: string[] = []
    const rebuilt = await rebuildJournal({ url: AMQP_URL, namespace: ns, weaveId: 'i', file: join(dir, 'i2.db'), log: (l) => lines.push(l) })
    expect(rebuilt.generation).toBe(1)
    expect(lines).toEqual(["generation 3 of 'i' holds no whole snapshot; rebuilding from generation 2", "generation 2 of 'i' holds no whole snapshot; rebuilding from generation 1"])
    expect(journalState(join(dir, 'i2.db'), true)).toEqual(journalState(join(dir, 'i.db'), true))
    // The head's epoch, not generation 1's: a takeover of it picks the one after the stream's.
    expect(rebuilt.epoch).toBe(3)
    const meta = (file: string, k: string): unknown => {
      const db = new Database(join(dir, file), { readonly: true })
      try {
        return db.prepare('SELECT v FROM meta WHERE k = ?').pluck().get(k)
      } finally {
        db.close()
      }
    }
    expect(meta('i2.db', 'repl_epoch')).toBe('3')
    // Its thread numbers go on THREAD_GAP past the stream's: those of spawns a lost weave made
    // under 'sync' that the stream lacks are never given again.
    expect(Number(meta('i2.db', 'next_thread'))).toBe(Number(meta('i.db', 'next_thread')) + THREAD_GAP)
  }, 60_000)
})

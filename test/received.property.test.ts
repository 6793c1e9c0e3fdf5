/**
 * Pruning `received` never lets a copy be taken twice (src/received.ts), whatever order copies
 * come in. fast-check generates a sender's outbox (rows 1..M, each for this weave or for another,
 * with `prev` the row before it for this weave, as the relay sends it) and a delivery schedule:
 * every row for this weave in order, some neighbours swapped (a row taken ahead of the one before
 * it), copies of any row inserted anywhere (a republished row, or a redelivery long after the row
 * was taken and its id pruned), commits and restarts of the receiver in between. The receiver
 * prunes every few rows. Each row must be taken exactly once; after a tail of rows in order, it
 * keeps about one prune interval of ids, not every id.
 *
 * Also: a journal of schema 5 keeps the ids it had (without an origin) and still ignores them; a
 * sender rebuilt from its stream (rows numbered past those its lost weave sent beyond the stream,
 * the first linked to a row taken long before) is followed by the chain, not kept by id for good.
 *
 * Reproduce a failure with FC_SEED=<seed>.
 */
import Database from 'better-sqlite3'
import fc from 'fast-check'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { Journal, SCHEMA_VERSION } from '../src/journal.js'
import { ReceivedIds, type Origin } from '../src/received.js'
import { OUTBOX_GAP } from '../src/replication/rebuild.js'
import { tempDir } from './support/tmp.js'

const seed = process.env['FC_SEED'] !== undefined ? Number(process.env['FC_SEED']) : Date.now() % 2 ** 31
const RUNS = Number(process.env['RECEIVED_RUNS'] ?? 100)
console.log(`received: fast-check seed ${seed}, ${RUNS} runs (FC_SEED=${seed} to reproduce)`)

const PRUNE = 8
const SRC = 'a#0123456789abcdef'

/** Rows of the sender's outbox for this weave, in order, each with the row before it for this weave. */
function rowsFor(mine: boolean[]): Origin[] {
  const out: Origin[] = []
  mine.forEach((m, i) => {
    if (m) out.push({ src: SRC, sn: i + 1, prev: out.at(-1)?.sn ?? null })
  })
  return out
}

type Step = { copy: number } | 'commit' | 'restart'

const scenario = fc.record({
  mine: fc.array(fc.boolean(), { minLength: 1, maxLength: 120 }),
  swaps: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 4 })), { maxLength: 10 }),
  extra: fc.array(fc.tuple(fc.nat(), fc.oneof(fc.record({ copy: fc.nat() }), fc.constantFrom<Step>('commit', 'restart'))), { maxLength: 60 }),
})

function count(db: Database.Database, sql: string): number {
  return db.prepare(sql).pluck().get() as number
}

describe('pruning received', () => {
  it(`takes every row once, whatever the copies and their order (${RUNS} runs, seed ${seed})`, () => {
    fc.assert(
      fc.property(scenario, ({ mine, swaps, extra }) => {
        const rows = rowsFor(mine)
        if (rows.length === 0) return
        // Deliveries: every row in order, neighbours swapped, copies and commits/restarts inserted.
        const order: Step[] = rows.map((_, i) => ({ copy: i }))
        for (const [at, d] of swaps) {
          const i = at % order.length
          const j = Math.min(i + d, order.length - 1)
          ;[order[i], order[j]] = [order[j]!, order[i]!]
        }
        for (const [at, step] of extra) {
          const s = typeof step === 'object' ? { copy: step.copy % rows.length } : step
          order.splice(at % (order.length + 1), 0, s)
        }
        // Then a tail in order, so that the chain reaches the end.
        const tail = rowsFor(Array.from({ length: 3 * PRUNE }, () => true)).map((o) => ({ ...o, sn: o.sn + mine.length, prev: o.prev === null ? (rows.at(-1)?.sn ?? null) : o.prev + mine.length }))
        const all = [...rows, ...tail]
        // Committed after each, as a weave commits every turn: a prune sees the rows before it.
        order.push('commit')
        for (let i = rows.length; i < all.length; i++) order.push({ copy: i }, 'commit')

        const file = join(tempDir(), 'r.db')
        let journal = new Journal(file, { durability: 'memory' })
        let ids = new ReceivedIds(journal, PRUNE)
        const taken = new Map<number, number>()
        for (const step of order) {
          if (step === 'commit') journal.flushNow()
          else if (step === 'restart') {
            journal.close()
            journal = new Journal(file, { durability: 'memory' })
            ids = new ReceivedIds(journal, PRUNE)
          } else {
            const o = all[step.copy]!
            if (ids.once(`m${o.sn}`, o, () => {})) taken.set(o.sn, (taken.get(o.sn) ?? 0) + 1)
          }
        }
        journal.flushNow()
        try {
          for (const o of all) expect(taken.get(o.sn), `row ${o.sn}`).toBe(1)
          // What was taken since the last prune, and the row that prune was queued with.
          expect(count(journal.db, 'SELECT count(*) FROM received')).toBeLessThanOrEqual(PRUNE)
        } finally {
          journal.close()
        }
      }),
      { seed, numRuns: RUNS },
    )
  })

  it('keeps the ids of a journal of schema 5, without an origin, and ignores them still', () => {
    const file = join(tempDir(), 'old.db')
    new Journal(file).close()
    // Back to schema 5, with an id taken then (without what schemas 6 and later added).
    const raw = new Database(file)
    raw.exec(`ALTER TABLE threads DROP COLUMN scope; DROP TABLE parked; ALTER TABLE outbox DROP COLUMN prev; DROP TABLE catch_up_held; DROP TABLE catch_up; DROP INDEX journal_marked; DROP TABLE moved_names; ALTER TABLE control DROP COLUMN msg_id; DROP TABLE passivated; ALTER TABLE threads DROP COLUMN continued; DROP TABLE retry_attempts; ALTER TABLE threads DROP COLUMN trace; ALTER TABLE inbox DROP COLUMN trace; ALTER TABLE outbox DROP COLUMN trace;
      DROP TABLE schedules; DROP TABLE name_owners; DROP TABLE outbox_names; DROP INDEX received_src; ALTER TABLE received DROP COLUMN src; ALTER TABLE received DROP COLUMN sn;
      ALTER TABLE received DROP COLUMN prev; DROP TABLE received_chains; DROP TABLE outbox_sent; DELETE FROM meta WHERE k = 'journal_id';
      INSERT INTO received (msg_id, at) VALUES ('old', 1); PRAGMA user_version = 5;`)
    raw.close()
    const journal = new Journal(file)
    try {
      expect(journal.db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION)
      expect(journal.meta('journal_id')).toMatch(/^[0-9a-f]{16}$/)
      const ids = new ReceivedIds(journal, 1)
      expect(ids.once('old', undefined, () => {})).toBe(false)
      expect(ids.once('old', { src: SRC, sn: 1, prev: null }, () => {})).toBe(false)
      expect(ids.once('new', { src: SRC, sn: 2, prev: 1 }, () => {})).toBe(true)
      journal.flushNow()
      expect(journal.db.prepare('SELECT msg_id, src FROM received ORDER BY msg_id').raw().all()).toEqual([['old', null]])
      // Row 1, a copy by its id, is taken all the same: the chain starts there.
      expect(journal.db.prepare('SELECT src, base, base_prev, upto FROM received_chains').raw().all()).toEqual([[SRC, 1, null, 2]])
    } finally {
      journal.close()
    }
  })

  it('follows a sender rebuilt from its stream: its rows are pruned, copies of them ignored', () => {
    const journal = new Journal(join(tempDir(), 'r.db'), { durability: 'memory' })
    try {
      const ids = new ReceivedIds(journal, PRUNE)
      // The lost weave sent rows 1..5; its stream had them up to row 2 (its outbox_sent here: 2).
      let prev: number | null = null
      for (let sn = 1; sn <= 5; sn++) {
        expect(ids.once(`lost-${sn}`, { src: SRC, sn, prev }, () => {})).toBe(true)
        prev = sn
      }
      journal.flushNow()
      // The rebuilt journal numbers its rows past the gap, the first linked to row 2.
      prev = 2
      for (let i = 0; i < 100; i++) {
        const sn = OUTBOX_GAP + 3 + i
        expect(ids.once(`new-${i}`, { src: SRC, sn, prev }, () => {})).toBe(true)
        prev = sn
        if (i % 5 === 0) journal.flushNow()
      }
      journal.flushNow()
      // A copy of a rebuilt row, by its number alone; a row of the lost history the broker
      // delivers late belongs to a history the rebuilt journal replaced (its thread sends again).
      expect(ids.once('new-10', { src: SRC, sn: OUTBOX_GAP + 13, prev: OUTBOX_GAP + 12 }, () => {})).toBe(false)
      expect(ids.once('lost-6', { src: SRC, sn: 6, prev: 5 }, () => {})).toBe(false)
      journal.flushNow()
      expect(count(journal.db, `SELECT count(*) FROM received WHERE src = '${SRC}'`)).toBeLessThanOrEqual(2 * PRUNE)
      expect(journal.db.prepare('SELECT upto FROM received_chains WHERE src = ?').pluck().get(SRC)).toBeGreaterThan(OUTBOX_GAP)
    } finally {
      journal.close()
    }
  })

  it('a copy by its id from a row not taken before joins the chain: later rows are pruned', () => {
    const journal = new Journal(join(tempDir(), 'c.db'), { durability: 'memory' })
    try {
      const ids = new ReceivedIds(journal, PRUNE)
      for (let sn = 1; sn <= 5; sn++) expect(ids.once(`m-${sn}`, { src: SRC, sn, prev: sn === 1 ? null : sn - 1 }, () => {})).toBe(true)
      journal.flushNow()
      // Row 6 sends m-3 again (a call made again after a divergence, or by a rebuilt journal).
      expect(ids.once('m-3', { src: SRC, sn: 6, prev: 5 }, () => {})).toBe(false)
      for (let sn = 7; sn <= 80; sn++) {
        expect(ids.once(`m-${sn}`, { src: SRC, sn, prev: sn - 1 }, () => {})).toBe(true)
        if (sn % 5 === 0) journal.flushNow()
      }
      journal.flushNow()
      expect(count(journal.db, `SELECT count(*) FROM received WHERE src = '${SRC}'`)).toBeLessThanOrEqual(2 * PRUNE)
      expect(journal.db.prepare('SELECT upto FROM received_chains WHERE src = ?').pluck().get(SRC)).toBeGreaterThanOrEqual(70)
      // And its copy is a copy by its number.
      expect(ids.once('m-3', { src: SRC, sn: 6, prev: 5 }, () => {})).toBe(false)
    } finally {
      journal.close()
    }
  })
})

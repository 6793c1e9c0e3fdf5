// New entries of many threads committed together go to journal_tail (a page or two per commit),
// and move into journal_main (each thread's entries together) in bulk. These tests check that a
// thread's record reads the same wherever its entries are, across the move, a reopen, and a
// journal written before the tail existed.
import { describe, expect, it } from 'vitest'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { Weave, thread, type AnyThreadType } from 'raiment'
import { SCHEMA_VERSION } from '../src/journal.js'
import { tempDir } from './support/tmp.js'

declare module 'raiment' {
  interface Libraries {
    jt: {
      step(i: number): Promise<number>
      gate(): Promise<never>
    }
  }
}

const lib = {
  async step(i: number) {
    return i
  },
  gate(): Promise<never> {
    return new Promise(() => {})
  },
}

/** `n` steps one after another, then `wide` steps at once, then optionally waits forever. */
const stepper = thread({
  uses: ['jt'],
  async does(p: { n: number; wide?: number; hang?: boolean }) {
    let sum = 0
    for (let i = 0; i < p.n; i++) sum += await this.jt.step(i)
    if (p.wide) for (const v of await Promise.all(Array.from({ length: p.wide }, (_, i) => this.jt.step(1000 + i)))) sum += v
    if (p.hang) await this.jt.gate()
    return sum
  },
})

const open = (file: string, threads: Record<string, AnyThreadType> = { stepper }) =>
  Weave.open({ db: file, durability: 'memory', threads: threads as never, libraries: { jt: lib }, ioLibs: false, dumps: false })

const count = (w: Weave, table: string): number => w.journal.db.prepare(`SELECT count(*) FROM ${table}`).pluck().get() as number

/** Every thread's entries: seqs 0..n-1 in order, and none in the tail older than one in main. */
function expectWhole(w: Weave, ids: string[], n: number): void {
  for (const id of ids) {
    const seqs = w.journal.entries(id).map(([seq]) => seq)
    expect(seqs).toEqual(Array.from({ length: n }, (_, i) => i))
    const newestMain = w.journal.db.prepare('SELECT max(seq) FROM journal_main WHERE thread = ?').pluck().get(id) as number | null
    const oldestTail = w.journal.db.prepare('SELECT min(seq) FROM journal_tail WHERE thread = ?').pluck().get(id) as number | null
    if (newestMain !== null && oldestTail !== null) expect(oldestTail).toBeGreaterThan(newestMain)
  }
}

describe('the journal tail', () => {
  it("keeps many threads' entries of one commit in the tail, reads them whole, and moves them at reopen", async () => {
    const file = join(tempDir(), 'w.db')
    const w = await open(file)
    const ids = Array.from({ length: 20 }, () => w.spawn('stepper', { n: 5 }))
    for (const id of ids) expect(await w.join(id)).toMatchObject({ status: 'done', result: 10 })
    expect(count(w, 'journal_tail')).toBe(100)
    expect(count(w, 'journal')).toBe(100)
    expectWhole(w, ids, 5)
    expect(w.journal.thread(ids[0]!)?.calls).toBe(5)
    await w.close()

    const again = await open(file)
    expect(count(again, 'journal_tail')).toBe(0)
    expect(count(again, 'journal_main')).toBe(100)
    expectWhole(again, ids, 5)
    await again.close()
  })

  it('moves the tail into journal_main once it holds enough entries, keeping each thread in order', async () => {
    const w = await open(join(tempDir(), 'w.db'))
    const ids = Array.from({ length: 100 }, () => w.spawn('stepper', { n: 50 }))
    for (const id of ids) expect((await w.join(id)).status).toBe('done')
    expect(count(w, 'journal_main')).toBeGreaterThan(0)
    expect(count(w, 'journal_main') + count(w, 'journal_tail')).toBe(5000)
    expectWhole(w, ids, 50)
    await w.close()
  })

  it('keeps entries of many threads, a few each, in the tail until it holds sixteen per thread', async () => {
    const w = await open(join(tempDir(), 'w.db'))
    // 2,000 threads x 3 entries: past 4,096 entries, but fewer than 16 per thread.
    const few = Array.from({ length: 2000 }, () => w.spawn('stepper', { n: 3 }))
    for (const id of few) expect((await w.join(id)).status).toBe('done')
    expect(count(w, 'journal_tail')).toBe(6000)
    expect(count(w, 'journal_main')).toBe(0)
    // 100 threads x 300 more: 36,000 entries of 2,100 threads, over 16 each: the tail moves.
    const more = Array.from({ length: 100 }, () => w.spawn('stepper', { n: 300 }))
    for (const id of more) expect((await w.join(id)).status).toBe('done')
    expect(count(w, 'journal_main')).toBeGreaterThan(0)
    expect(count(w, 'journal_main') + count(w, 'journal_tail')).toBe(36000)
    expectWhole(w, few, 3)
    expectWhole(w, more, 300)
    await w.close()
  })

  it('writes a commit of many entries per thread to journal_main after the tail, in order', async () => {
    const w = await open(join(tempDir(), 'w.db'))
    // Ten threads step together (tail), then each makes 20 calls at once (journal_main).
    const ids = Array.from({ length: 10 }, () => w.spawn('stepper', { n: 3, wide: 20 }))
    for (const id of ids) expect((await w.join(id)).status).toBe('done')
    expect(count(w, 'journal_main')).toBeGreaterThanOrEqual(200)
    expectWhole(w, ids, 23)
    await w.close()
  })

  it('resumes a thread whose entries are in the tail when its weave stopped', async () => {
    const file = join(tempDir(), 'w.db')
    const w = await open(file)
    const ids = Array.from({ length: 5 }, () => w.spawn('stepper', { n: 4, hang: true }))
    await new Promise<void>((resolve) => {
      const poll = (): void => void (count(w, 'journal') === 20 ? resolve() : setImmediate(poll))
      poll()
    })
    expect(count(w, 'journal_tail')).toBe(20)
    await w.close()

    const finish = thread({ uses: ['jt'], async does(p: { n: number }) { let s = 0; for (let i = 0; i < p.n; i++) s += await this.jt.step(i); return s } })
    const again = await open(file, { stepper: finish })
    expect(again.resumed).toBe(5)
    for (const id of ids) expect(await again.join(id)).toMatchObject({ status: 'done', result: 6 })
    expectWhole(again, ids, 4)
    await again.close()
  })

  it('migrates a journal written before the tail existed (schema 4), entries and all', async () => {
    const file = join(tempDir(), 'w.db')
    const w = await open(file)
    const id = w.spawn('stepper', { n: 3, hang: true })
    await new Promise<void>((resolve) => {
      const poll = (): void => void (count(w, 'journal') === 3 ? resolve() : setImmediate(poll))
      poll()
    })
    await w.close()
    // Back to schema 4: one clustered `journal` table (and without what schemas 6 and later added).
    const raw = new Database(file)
    raw.exec(`ALTER TABLE threads DROP COLUMN scope; DROP TABLE parked; ALTER TABLE outbox DROP COLUMN prev; DROP TABLE catch_up_held; DROP TABLE catch_up; DROP INDEX journal_marked; DROP TABLE moved_names; ALTER TABLE control DROP COLUMN msg_id; DROP TABLE passivated; ALTER TABLE threads DROP COLUMN continued; DROP TABLE retry_attempts; ALTER TABLE threads DROP COLUMN trace; ALTER TABLE inbox DROP COLUMN trace; ALTER TABLE outbox DROP COLUMN trace;
      DROP TABLE schedules; DROP TABLE name_owners; DROP TABLE outbox_names; DROP INDEX received_src; ALTER TABLE received DROP COLUMN src; ALTER TABLE received DROP COLUMN sn;
      ALTER TABLE received DROP COLUMN prev; DROP TABLE received_chains; DROP TABLE outbox_sent; DELETE FROM meta WHERE k = 'journal_id';
      INSERT INTO journal_main SELECT thread, seq, key, ord, ok, outcome, started, duration FROM journal_tail;
      DROP TRIGGER journal_insert; DROP TRIGGER journal_delete; DROP VIEW journal; DROP TABLE journal_tail;
      ALTER TABLE journal_main RENAME TO journal; PRAGMA user_version = 4;`)
    raw.close()

    const finish = thread({ uses: ['jt'], async does(p: { n: number }) { let s = 0; for (let i = 0; i < p.n; i++) s += await this.jt.step(i); return s } })
    const again = await open(file, { stepper: finish })
    expect(again.journal.db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION)
    expect(again.resumed).toBe(1)
    expect(await again.join(id)).toMatchObject({ status: 'done', result: 3 })
    expectWhole(again, [id], 3)
    // Writes to the view (as older code paths make them) land in journal_main.
    again.journal.db.prepare('INSERT INTO journal (thread, seq, key, ord, ok, outcome, started, duration) VALUES (?, ?, ?, ?, ?, ?, ?, ?)').run('x/1', 0, 'k', 0, 1, 'J1', 0, 0)
    expect(count(again, 'journal_main')).toBe(4)
    again.journal.db.prepare('DELETE FROM journal WHERE thread = ?').run('x/1')
    expect(count(again, 'journal')).toBe(3)
    await again.close()
  })
})

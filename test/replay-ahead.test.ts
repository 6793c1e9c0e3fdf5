// Long records are read ahead by a worker at a resume while the replay runs (src/replay-ahead.ts).
// Whatever the records hold (gaps, a key SQLite's joined text cannot carry, a secret's marker past
// the first block), and whether the worker starts or not, a record read ahead is the record read
// whole, position for position; a thread resumed so goes on as one never restarted, and a weave
// closed while the worker still reads closes cleanly and opens again.
import { afterEach, describe, expect, it } from 'vitest'
import Database from 'better-sqlite3'
import fc from 'fast-check'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { Weave, thread } from 'raiment'
import { Journal } from '../src/journal.js'
import { readAhead, ReadAhead } from '../src/replay-ahead.js'
import { RecordReader } from '../src/replay-load.js'
import { MARK } from '../src/secrets/marker.js'
import { onceAndResumed, readyLibrary } from './support/resumed.js'
import { tempDir } from './support/tmp.js'

declare module 'raiment' {
  interface Libraries {
    ra: { v(k: number, later: number): Promise<number>; ready(): Promise<void> }
  }
}

const { lib: ra, whenReady } = readyLibrary()

/** `n` calls (every 50th two at once, completing out of order), a receive, 20 calls live. */
const longer = thread({
  uses: ['ra', 'mailbox'],
  async does(p: { n: number }) {
    let sum = 0
    for (let i = 0; i < p.n; i++) {
      if (i % 50 === 7) {
        const [a, b] = await Promise.all([this.ra.v(i % 11, 3), this.ra.v(1 + (i % 13), 0)])
        sum += a * 3 + b
      } else sum += await this.ra.v(i % 17, 0)
    }
    await this.ra.ready()
    sum += await this.mailbox.receive<number>()
    for (let i = 0; i < 20; i++) sum += await this.ra.v(i % 17, i % 3)
    return sum
  },
})

/** `n` calls of distinct keys (a replay in recorded order never looks a key up out of order), then a receive. */
const distinct = thread({
  uses: ['ra', 'mailbox'],
  async does(p: { n: number }) {
    let sum = 0
    for (let i = 0; i < p.n; i++) sum += await this.ra.v(i, 0)
    await this.ra.ready()
    return sum + (await this.mailbox.receive<number>())
  },
})

const defaults = { ...readAhead }
afterEach(() => Object.assign(readAhead, defaults))

type Row = { seq: number; key: string; ord: number; ok: number; outcome: string }

/** A journal holding `records` (thread id to rows), in journal_main. */
function journalOf(records: Record<string, Row[]>): Journal {
  const journal = new Journal(join(tempDir(), 'ahead.db'), { durability: 'memory' })
  const insert = journal.db.prepare('INSERT INTO journal_main (thread, seq, key, ord, ok, outcome, started, duration) VALUES (?, ?, ?, ?, ?, ?, 0, 0)')
  journal.db.transaction(() => {
    for (const [thread, rows] of Object.entries(records)) for (const r of rows) insert.run(thread, r.seq, r.key, r.ord, r.ok, r.outcome)
  })()
  return journal
}

const plain = (e: { seq: number; key: string; ord: number; ok: boolean; text: string | undefined }): unknown => [e.seq, e.key, e.ord, e.ok, e.text]

/** Rows of one record: `n` entries, seqs rising with gaps, and odd keys at the given positions. */
function rowsOf(n: number, gapEvery: number, odd: ReadonlyArray<readonly [number, 'us' | 'mark']>): Row[] {
  const rows: Row[] = []
  let seq = 0
  for (let i = 0; i < n; i++) {
    seq += i % gapEvery === gapEvery - 1 ? 3 : 1
    // Keys of one, two, three and four UTF-8 bytes a character: the worker indexes them in UTF-16
    // and hands them over in UTF-8.
    rows.push({ seq, key: i % 23 === 5 ? `ra.v:["é€😀",${i % 17}]` : `ra.v:[${i % 17}]`, ord: Math.floor(i / 17), ok: i % 9 === 0 ? 0 : 1, outcome: `J${i}` })
  }
  for (const [at, what] of odd) {
    if (n === 0) break
    const r = rows[at % n]!
    // A raw U+001F cannot travel in SQLite's joined text: that block is read by row.
    r.key = what === 'us' ? `ra.v:["a\x1fb",${at}]` : `ra.v:["${MARK}]",${at}]`
  }
  return rows
}

const recordArb = fc
  .record({
    n: fc.oneof(fc.integer({ min: 0, max: 300 }), fc.integer({ min: 4000, max: 11000 })),
    gapEvery: fc.integer({ min: 50, max: 5000 }),
    odd: fc.array(fc.tuple(fc.integer({ min: 0, max: 11000 }), fc.constantFrom('us' as const, 'mark' as const)), { maxLength: 2 }),
  })
  .map(({ n, gapEvery, odd }) => rowsOf(n, gapEvery, odd))

describe('records read ahead', () => {
  it('are the records read whole, position for position, whatever they hold and whether the worker starts or not', () => {
    fc.assert(
      fc.property(fc.array(recordArb, { minLength: 1, maxLength: 3 }), fc.boolean(), fc.constantFrom(1, 2, 64), (records, starts, window) => {
        readAhead.minRows = 0
        // The worker waits for the replay to take what it handed over, up to `window` blocks.
        readAhead.window = window
        // A wait of 0 ms: the worker is never ready in time, and the records are read here.
        readAhead.waitMs = starts ? defaults.waitMs : 0
        const byId = Object.fromEntries(records.map((rows, i) => [`t${i}`, rows]))
        const journal = journalOf(byId)
        try {
          const ids = Object.keys(byId)
          const { records: got, ahead } = new RecordReader(journal.db, true).records(ids, journal.file)
          if (starts && records.some((r) => r.length > 4096)) expect(ahead).not.toBeNull()
          // Read ahead, a long record is not counted: its length is known once its last block came.
          if (starts) for (const [id, rows] of Object.entries(byId)) expect(got.get(id)!.knownLength).toBe(rows.length >= 4096 ? null : rows.length)
          const one = new RecordReader(journal.db, false)
          for (const id of ids) {
            const whole = one.entries(id)
            const record = got.get(id)!
            expect(record.lastSeq).toBe(whole.length === 0 ? -1 : whole[whole.length - 1]!.seq)
            expect(record.keysInclude(MARK)).toBe(whole.some((e) => e.key.includes(MARK)))
            // As a replay reads it: position by position, each released as passed.
            for (let i = 0; i < whole.length; i++) {
              expect(record.has(i)).toBe(true)
              expect(plain(record.at(i)!)).toEqual(plain(whole[i]!))
              record.passed(i + 1)
            }
            expect(record.has(whole.length)).toBe(false)
            expect(record.at(whole.length)).toBeUndefined()
            expect(record.knownLength).toBe(whole.length)
            expect(record.length).toBe(whole.length)
          }
          ahead?.stop()
        } finally {
          journal.close()
        }
      }),
      {
        numRuns: 12,
        // Past the first block: a key read by row, then a secret's marker (found in the index of
        // the keys that hold one).
        examples: [
          [[rowsOf(9000, 700, [[6000, 'us'], [8000, 'mark']]), rowsOf(5000, 5000, [])], true, 1],
          [[rowsOf(9000, 700, [[8000, 'mark']])], false, 64],
        ],
      },
    )
  })

  it('a worker that fails, before its snapshot or after, hands every record back to be read here', () => {
    const journal = journalOf({ a: Array.from({ length: 10 }, (_, i) => ({ seq: i, key: `ra.v:[${i}]`, ord: 0, ok: 1, outcome: `J${i}` })) })
    try {
      const job = [{ id: 'a', after: -1 }]
      // A statement SQLite refuses: the worker fails before its snapshot, and says so (the
      // wait does not run out its minute).
      readAhead.waitMs = 60_000
      const t0 = Date.now()
      expect(ReadAhead.start(journal.file, 'SELECT no_such_column FROM journal_main WHERE thread = ? AND seq > ?', job)!.ready()).toBe(false)
      expect(Date.now() - t0).toBeLessThan(30_000)
      // One that fails as it runs (an integer overflow): after the snapshot.
      const ahead = ReadAhead.start(journal.file, 'SELECT count(*) FROM journal_main WHERE thread = ? AND seq > ? AND abs(-9223372036854775807 - 1) > 0', job)!
      expect(ahead.ready()).toBe(true)
      expect(ahead.next(0)).toBe('alone')
      ahead.stop()
    } finally {
      journal.close()
    }
  })

  it('a record let go is read no more while the others are; once stopped (the journal closes), what has not come reads as past the end at once', () => {
    readAhead.minRows = 0
    readAhead.waitMs = 60_000
    const rows = rowsOf(12000, 5000, [])
    const journal = journalOf({ a: rows, b: rows, c: rows })
    try {
      const { records, ahead } = new RecordReader(journal.db, true).records(['a', 'b', 'c'], journal.file)
      expect(ahead).not.toBeNull()
      const [a, b, c] = ['a', 'b', 'c'].map((id) => records.get(id)!)
      expect(plain(a!.at(0)!)).toEqual(plain(b!.at(0)!))
      // 'a' stops (its thread killed mid-replay): 'b' still reads whole.
      a!.release()
      for (let i = 0; i < rows.length; i++) expect(b!.at(i)!.seq).toBe(rows[i]!.seq)
      // Stopped before 'c''s last block was taken (the worker posts it after 'b''s): no wait, no
      // error, nothing more of it; what came reads as before.
      const t0 = Date.now()
      ahead!.stop()
      expect(c!.at(rows.length - 1)).toBeUndefined()
      expect(c!.at(100)!.seq).toBe(rows[100]!.seq)
      expect(Date.now() - t0).toBeLessThan(30_000)
    } finally {
      journal.close()
    }
  })

  it('a record read ahead whose thread is not run here (its type gone: it waits for it) is let go of: the worker ends and its snapshot with it (the WAL checkpoints whole)', async () => {
    const db = join(tempDir(), 'gone.db')
    const waits = thread({
      uses: ['ra', 'mailbox'],
      async does() {
        await this.ra.v(0, 0)
        return await this.mailbox.receive()
      },
    })
    const first = await Weave.open({ db, threads: { gone: waits }, libraries: { ra }, ioLibs: false, dumps: false, durability: 'batched', passivateAfter: false })
    const id = first.spawn('gone')
    await first.committed()
    await first.close()
    // A long record: blocks beyond the worker's window.
    const raw = new Database(db)
    const ins = raw.prepare('INSERT INTO journal_main (thread, seq, key, ord, ok, outcome, started, duration) VALUES (?, ?, ?, 0, 1, ?, 0, 0)')
    raw.transaction(() => {
      for (let i = 1; i < 30_000; i++) ins.run(id, i, `ra.v:[${i},0]`, `J${i}`)
    })()
    raw.close()
    readAhead.minRows = 0
    readAhead.window = 1
    const other = thread({ uses: [], async does() { return 1 } })
    const w = await Weave.open({ db, threads: { other }, libraries: { ra }, ioLibs: false, dumps: false, durability: 'batched', passivateAfter: false, onWarning: () => {} })
    try {
      expect(w.journal.thread(id)?.status).toBe('running')
      await w.join(w.spawn('other'))
      await w.committed()
      let busy = 1
      for (const until = Date.now() + 20_000; busy !== 0 && Date.now() < until; ) {
        busy = (w.journal.db.pragma('wal_checkpoint(TRUNCATE)') as Array<{ busy: number }>)[0]!.busy
        if (busy !== 0) await new Promise((r) => setTimeout(r, 50))
      }
      expect(busy).toBe(0)
    } finally {
      await w.close()
    }
  })

  it('a record that cannot be replayed (an outcome damaged on disk) fails its thread alone, with RAIMENT_JOURNAL_DAMAGED; the weave runs on', async () => {
    const db = join(tempDir(), 'damaged.db')
    const open = (): Promise<Weave> => Weave.open({ db, threads: { distinct }, libraries: { ra }, ioLibs: false, dumps: false, durability: 'batched', passivateAfter: false })
    const first = await open()
    const reached = whenReady()
    const damaged = first.spawn('distinct', { n: 10 })
    const whole = first.spawn('distinct', { n: 10 })
    await reached
    await first.committed()
    await first.close()
    const raw = new Database(db)
    // Wherever the row is (a record's first rows may still be in the tail table).
    const changed = ['journal_main', 'journal_tail'].map((t) => raw.prepare(`UPDATE ${t} SET outcome = ? WHERE thread = ? AND seq = 5`).run('J{bad', damaged).changes)
    expect(changed.reduce((a, b) => a + b)).toBe(1)
    raw.close()
    const w = await open()
    try {
      expect(await w.join(damaged)).toMatchObject({ status: 'failed', error: { code: 'RAIMENT_JOURNAL_DAMAGED' } })
      w.send(whole, 1)
      expect(await w.join(whole)).toMatchObject({ status: 'done', result: 46 })
    } finally {
      await w.close()
    }
  })

  it('a thread resumed from a long record read ahead goes on as one never restarted; a weave closed while the worker reads opens again', async () => {
    readAhead.minRows = 0
    const open = (db: string): Promise<Weave> =>
      Weave.open({ db, threads: { longer }, libraries: { ra }, ioLibs: false, dumps: false, durability: 'batched', passivateAfter: false })
    const { once, resumed, resumedCount, db, id } = await onceAndResumed({
      open,
      type: 'longer',
      params: { n: 9000 },
      message: 5,
      ready: whenReady,
      // Closed at once, the worker still reading: the journal closes and leaves WAL mode.
      between: async (db) => {
        await (await open(db)).close()
        expect(existsSync(`${db}-wal`)).toBe(false)
      },
    })
    expect(resumedCount).toBe(1)
    expect(once.end.status).toBe('done')
    expect(resumed.end).toMatchObject({ status: 'done', result: once.end.status === 'done' ? once.end.result : null })
    expect(resumed.record).toEqual(once.record)
    // Its entries counted at its end by the weft: the record's length, known once its last block came.
    const raw = new Database(db, { readonly: true })
    try {
      expect(raw.prepare('SELECT calls FROM threads WHERE id = ?').pluck().get(id)).toBe(once.record.length)
    } finally {
      raw.close()
    }
  })

  it('a thread killed as it replays a long record read ahead, whose length is not known yet, has its entries counted at its end; one that replays to its end, by the replay', async () => {
    readAhead.minRows = 0
    const db = join(tempDir(), 'killed.db')
    const open = (): Promise<Weave> => Weave.open({ db, threads: { distinct }, libraries: { ra }, ioLibs: false, dumps: false, durability: 'batched', passivateAfter: false })
    const first = await open()
    const spawned = async (n: number): Promise<string> => {
      const reached = whenReady()
      const id = first.spawn('distinct', { n })
      await reached
      return id
    }
    const killed = await spawned(30_000)
    const replayed = await spawned(20_000)
    // Their ready calls recorded: the resume replays all of each.
    await first.committed()
    await first.close()
    const again = await open()
    try {
      // Killed before its replay reached the last block (the worker's): the weft does not know
      // how many entries the thread has, and the end's commit counts them.
      const before = again.resumeProgress()
      expect(before.done).toBe(0)
      expect(before.replayed).toBeLessThan(30_001)
      expect(again.kill(killed)).toBe(true)
      expect(await again.join(killed)).toMatchObject({ status: 'killed' })
      const calls = again.journal.db.prepare('SELECT calls FROM threads WHERE id = ?').pluck()
      expect(calls.get(killed)).toBe(30_001)
      // What it released stays counted in the progress, and the other replays to its end.
      while (again.resumeProgress().done < 2) await new Promise((r) => setImmediate(r))
      const after = again.resumeProgress()
      expect(after.replayed).toBeGreaterThanOrEqual(before.replayed)
      expect(after.replayed).toBeGreaterThanOrEqual(20_001)
      again.send(replayed, 1)
      expect(await again.join(replayed)).toMatchObject({ status: 'done', result: (20_000 * 19_999) / 2 + 1 })
      expect(calls.get(replayed)).toBe(20_002)
    } finally {
      await again.close()
    }
  })

  it('looks for a secret\'s marker in an index whose condition is the one the reader asks (the two spell MARK alike)', () => {
    const journal = journalOf({})
    try {
      const sql = journal.db.prepare("SELECT sql FROM sqlite_schema WHERE name = 'journal_marked'").pluck().get() as string
      expect(sql).toContain(`WHERE instr(key, '${MARK}') > 0`)
    } finally {
      journal.close()
    }
  })
})

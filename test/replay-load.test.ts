// The records a weave resumes are read in blocks (src/replay-load.ts): a record longer than a
// block, with a gap in its seqs (an entry dropped), and entries in journal_tail as well as in
// journal_main, reads as the journal holds it, and the threads resume from it to their end, also
// more of them than one replay round pumps (src/replay-rounds.ts). Blocks are read joined by
// SQLite and split: any text (a separator in a key or an outcome, an empty one, a character
// outside the BMP) and any ordinals read as a row at a time reads them (property test).
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { join } from 'node:path'
import { Weave, thread } from 'raiment'
import { encodeArgs, encodeValue } from '../src/encoding.js'
import { Journal } from '../src/journal.js'
import { RecordReader, resumeSet } from '../src/replay-load.js'
import type { Entry } from '../src/replay-record.js'
import { tempDir } from './support/tmp.js'

declare module 'raiment' {
  interface Libraries {
    rl: { step(i: number): Promise<number> }
  }
}

const rl = {
  async step(i: number) {
    return i
  },
}

const steps = thread({
  uses: ['rl'],
  async does(p: { n: number }) {
    let sum = 0
    for (let i = 0; i < p.n; i++) sum += await this.rl.step(i)
    return sum
  },
})

/** A journal with running threads of `steps`: ids and how many of their calls it holds, and where. */
function build(file: string, threads: Array<{ n: number; main: number; tail: number }>): string[] {
  const journal = new Journal(file, { durability: 'memory' })
  const ids: string[] = []
  const now = Date.now()
  const main = journal.db.prepare('INSERT INTO journal_main (thread, seq, key, ord, ok, outcome, started, duration) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
  const tail = journal.db.prepare('INSERT INTO journal_tail (thread, seq, key, ord, ok, outcome, started, duration) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
  journal.db.transaction(() => {
    for (const t of threads) {
      const id = journal.nextThreadId()
      ids.push(id)
      journal.db.prepare("INSERT INTO threads (id, type, params, parent, status, created) VALUES (?, 'steps', ?, NULL, 'running', ?)").run(id, encodeValue({ n: t.n }), now)
      // seq 2i: a record whose seqs have gaps, as one that dropped entries has.
      for (let i = 0; i < t.main + t.tail; i++) (i < t.main ? main : tail).run(id, 2 * i, 'rl.step:' + encodeArgs([i]), 0, 1, encodeValue(i), now, 0.001)
    }
  })()
  journal.close()
  return ids
}

const shape = (e: Entry): unknown[] => [e.seq, e.key, e.ord, e.ok, e.text]

describe('records read in blocks', () => {
  it('reads records longer than a block, in main and in the tail, as a row at a time reads them', () => {
    const file = join(tempDir(), 'rl.db')
    const ids = build(file, [
      { n: 9000, main: 9000, tail: 0 },
      { n: 30, main: 20, tail: 5 },
      { n: 10, main: 0, tail: 4 },
      { n: 5, main: 0, tail: 0 },
    ])
    // Read-only here: an owner's open would move the tail into journal_main first.
    const journal = new Journal(file, { readonly: true })
    try {
      const { rows, records } = resumeSet(journal)
      expect(rows.map((r) => r.id)).toEqual(ids)
      const single = new RecordReader(journal.db, false)
      for (const id of ids) {
        const expected = journal.replayEntries(id, (seq, key, ord, ok, text) => [seq, key, ord, ok, text])
        expect(records.get(id)!.toArray().map(shape)).toEqual(expected)
        expect(single.entries(id).map(shape)).toEqual(expected)
      }
      expect(records.get(ids[0]!)!.length).toBe(9000)
      expect(records.get(ids[1]!)!.toArray().map((e) => e.seq).slice(-6)).toEqual([38, 40, 42, 44, 46, 48])
    } finally {
      journal.close()
    }
  })

  it('reads any texts and ordinals, across blocks, as a row at a time reads them (property)', () => {
    const text = fc.oneof(fc.string({ unit: 'binary', maxLength: 12 }), fc.constantFrom('', '\x1f', 'a\x1fb', '\x1f\x1f', '😀'))
    const rec = fc.array(fc.record({ gap: fc.integer({ min: 1, max: 3 }), key: text, ord: fc.nat(1_000_000), ok: fc.boolean(), outcome: text }), { maxLength: 40 })
    const dir = tempDir()
    let run = 0
    fc.assert(
      fc.property(rec, fc.nat(9000), (odd, plain) => {
        const file = join(dir, `p${run++}.db`)
        const journal = new Journal(file, { durability: 'memory' })
        try {
          const id = journal.nextThreadId()
          const main = journal.db.prepare('INSERT INTO journal_main (thread, seq, key, ord, ok, outcome, started, duration) VALUES (?, ?, ?, ?, ?, ?, 0, 0)')
          journal.db.transaction(() => {
            // `plain` ordinary entries, then the odd ones (some blocks split, some read by row).
            let seq = 0
            for (let i = 0; i < plain; i++) main.run(id, seq++, 'rl.step:' + encodeArgs([i]), 0, 1, encodeValue(i))
            for (const e of odd) main.run(id, (seq += e.gap), e.key, e.ord, e.ok ? 1 : 0, e.outcome)
          })()
          const expected = journal.replayEntries(id, (seq, key, ord, ok, text) => [seq, key, ord, ok, text])
          expect(new RecordReader(journal.db, false).entries(id).map(shape)).toEqual(expected)
          expect(expected.length).toBe(plain + odd.length)
        } finally {
          journal.close()
        }
      }),
      { numRuns: 60 },
    )
  })

  it("an owner's reader skips journal_tail for a thread it holds nothing of, and reads it for one it does", () => {
    const file = join(tempDir(), 'tail.db')
    const journal = new Journal(file, { durability: 'memory' })
    try {
      const ids = Array.from({ length: 10 }, () => journal.nextThreadId())
      const put = (id: string, seq: number, first = true): void => journal.addEntry(id, seq, 'rl.step:' + encodeArgs([seq]), 0, 1, encodeValue(seq), 0, 0, () => {}, first)
      // Many threads, an entry each, in one batch: they go to the tail.
      for (const id of ids) put(id, 0)
      journal.flushNow()
      const reader = new RecordReader(journal.db, false, (t) => journal.mayHaveTail(t))
      const rows = (id: string) => journal.replayEntries(id, (seq, key, ord, ok, text) => [seq, key, ord, ok, text])
      const inTail = (): number => journal.db.prepare('SELECT count(*) FROM journal_tail').pluck().get() as number
      expect(inTail()).toBe(10)
      for (const id of ids) {
        expect(journal.mayHaveTail(id)).toBe(true)
        expect(reader.entries(id).map(shape)).toEqual(rows(id))
      }
      expect(journal.mayHaveTail('other/1')).toBe(false)
      // One thread's entries in a batch go to journal_main, the tail moving there first.
      for (let seq = 1; seq < 40; seq++) put(ids[0]!, seq, seq === 1)
      journal.flushNow()
      expect(inTail()).toBe(0)
      for (const id of ids) {
        expect(journal.mayHaveTail(id)).toBe(false)
        expect(reader.entries(id).map(shape)).toEqual(rows(id))
      }
      expect(reader.entries(ids[0]!).length).toBe(40)
    } finally {
      journal.close()
    }
  })

  it('resumes threads from such records to their end', async () => {
    const file = join(tempDir(), 'rl.db')
    const ids = build(file, [
      { n: 9000, main: 9000, tail: 0 },
      { n: 30, main: 20, tail: 5 },
      { n: 10, main: 0, tail: 4 },
    ])
    const weave = await Weave.open({ db: file, durability: 'memory', threads: { steps }, ioLibs: false, dumps: false, libraries: { rl } })
    try {
      expect(weave.resumed).toBe(3)
      const ends = await Promise.all(ids.map((id) => weave.join(id)))
      expect(ends.map((e) => (e.status === 'done' ? e.result : e.status))).toEqual([(9000 * 8999) / 2, (30 * 29) / 2, (10 * 9) / 2])
      // Each thread's record is now its calls, the replayed ones and those made live after them.
      expect(weave.journal.thread(ids[1]!)!.calls).toBe(30)
    } finally {
      await weave.close()
    }
  })

  it('resumes more threads than a replay round pumps (64), every one to its end', async () => {
    const file = join(tempDir(), 'rl.db')
    const ids = build(file, Array.from({ length: 150 }, (_, i) => ({ n: 20 + (i % 7), main: 20, tail: 0 })))
    const weave = await Weave.open({ db: file, durability: 'memory', threads: { steps }, ioLibs: false, dumps: false, libraries: { rl } })
    try {
      expect(weave.resumed).toBe(150)
      const ends = await Promise.all(ids.map((id) => weave.join(id)))
      expect(ends.map((e) => (e.status === 'done' ? e.result : e.status))).toEqual(ids.map((_, i) => ((20 + (i % 7)) * (19 + (i % 7))) / 2))
      expect(weave.resumeProgress()).toMatchObject({ threads: 150, done: 150, entries: 3000, replayed: 3000 })
    } finally {
      await weave.close()
    }
  })
})

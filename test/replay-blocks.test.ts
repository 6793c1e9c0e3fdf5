// A record read for a resume is split into entries only as the replay reaches it, a unit of rows
// at a time, and the entries of units replayed are let go (src/replay-blocks.ts). A thread whose
// record spans many units, with calls of one key again and again, calls completing out of order
// (found ahead of the replay) and a key called once before the restart and again after it, resumes
// and goes on live exactly as the same thread run without a restart: the same result and the same
// record, key for key and ordinal for ordinal. Positions read after their unit was let go (keys,
// entries) are those of the record.
import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { join } from 'node:path'
import { Weave, thread } from 'raiment'
import { Journal } from '../src/journal.js'
import { RecordReader } from '../src/replay-load.js'
import { RisingRuns } from '../src/replay-record.js'
import { ReplayedKeys } from '../src/replay-keys.js'
import { US } from '../src/replay-blocks.js'
import { onceAndResumed, readyLibrary } from './support/resumed.js'
import { tempDir } from './support/tmp.js'

declare module 'raiment' {
  interface Libraries {
    rb: { v(k: number, later: number): Promise<number>; ready(): Promise<void> }
  }
}

const { lib: rb, whenReady } = readyLibrary()

/** ~1,370 entries (units of 256), then a receive, then 60 calls live. */
const long = thread({
  uses: ['rb', 'mailbox'],
  async does(p: { n: number }) {
    const out: number[] = [await this.rb.v(1000, 0)]
    for (let i = 0; i < p.n; i++) {
      if (i % 7 === 3) {
        const [a, b] = await Promise.all([this.rb.v(i % 5, 3), this.rb.v(100 + (i % 3), 0)])
        out.push(a * 1000 + b)
      } else out.push(await this.rb.v(i % 5, 0))
    }
    await this.rb.ready()
    out.push(await this.mailbox.receive<number>())
    // Live after a resume: keys the replay counted, and one (1000) whose only call was counted by its entry.
    for (let i = 0; i < 60; i++) out.push(await this.rb.v(i % 5, i % 4 === 0 ? 2 : 0))
    out.push(await this.rb.v(1000, 0))
    return out
  },
})

const N = 1200

async function open(db: string): Promise<Weave> {
  return Weave.open({ db, threads: { long }, libraries: { rb }, ioLibs: false, dumps: false, durability: 'batched', passivateAfter: false })
}

describe('records split as the replay reaches them', () => {
  it('a thread resumed from a record of many units goes on live as one never restarted', async () => {
    const { once, resumed, db, id, resumedCount } = await onceAndResumed({ open, type: 'long', params: { n: N }, message: 7, ready: whenReady })
    expect(resumedCount).toBe(1)
    expect(once.end.status).toBe('done')
    expect(resumed.end).toMatchObject({ status: 'done', result: once.end.status === 'done' ? once.end.result : null })
    expect(resumed.record).toEqual(once.record)

    // The record read in blocks: every position, before and after its unit is let go, is the record's.
    const journal = new Journal(db, { readonly: true })
    try {
      const whole = journal.entries(id).map(([seq, key, ord, ok, text]) => ({ seq, key, ord, ok: ok === 1, text }))
      const record = new RecordReader(journal.db, false).record(id)
      expect(record.length).toBe(whole.length)
      expect(record.lastSeq).toBe(whole[whole.length - 1]!.seq)
      const at = (i: number): unknown => {
        const e = record.at(i)!
        return { seq: e.seq, key: e.key, ord: e.ord, ok: e.ok, text: e.text }
      }
      for (let i = 0; i < whole.length; i++) {
        expect(at(i)).toEqual(whole[i])
        record.passed(i + 1)
        // Released in the unit the replay is in (let go entry by entry): split again alone.
        if (i === 300) expect(at(299)).toEqual(whole[299])
      }
      // A unit passed keeps its keys and ordinals, not its outcomes.
      expect(() => record.at(3)).toThrow(expect.objectContaining({ code: 'RAIMENT_RECORD_LET_GO' }))
      expect(() => record.toArray()).toThrow(expect.objectContaining({ code: 'RAIMENT_RECORD_LET_GO' }))
      for (const i of [0, 3, 255, 256, whole.length - 2, whole.length - 1]) expect(record.keyAt(i)).toBe(whole[i]!.key)
      const positions = [0, 1, 255, 256, 257, 700, whole.length - 1]
      const runs = new RisingRuns()
      for (const i of positions) runs.push(i)
      const exact = record.replayedKeys(runs, false)
      const searched = record.replayedKeys(runs, true)
      for (const i of positions) {
        expect(exact.has(whole[i]!.key)).toBe(true)
        expect(searched.has(whole[i]!.key)).toBe(true)
      }
      // A key of the record at no position given; a prefix and a suffix of a recorded key; none.
      const other = whole.find((e) => !positions.some((i) => whole[i]!.key === e.key))!.key
      expect(exact.has(other)).toBe(false)
      for (const k of [whole[0]!.key.slice(0, -1), whole[0]!.key.slice(1), 'rb.v:[9,9]']) expect(searched.has(k)).toBe(false)
      // Searched in the passed units' keys (UTF-8), before enough searches put the keys in a Set.
      for (const i of positions) expect(record.replayedKeys(runs, true).has(whole[i]!.key)).toBe(true)
      for (const k of [whole[0]!.key.slice(0, -1), whole[0]!.key.slice(1), whole[700]!.key.slice(0, -1), 'rb.v:[9,9]']) expect(record.replayedKeys(runs, true).has(k)).toBe(false)
      const keys: Array<[string, number, number]> = []
      record.eachKey((key, ord, i) => keys.push([key, ord, i]))
      expect(keys).toEqual(whole.map((e, i) => [e.key, e.ord, i]))
    } finally {
      journal.close()
    }
  })

  it('records read many at once (a resume) are those read one by one: long ones, gaps past the first block, none', () => {
    const journal = new Journal(join(tempDir(), 'many.db'), { durability: 'memory' })
    try {
      const insert = journal.db.prepare('INSERT INTO journal_main (thread, seq, key, ord, ok, outcome, started, duration) VALUES (?, ?, ?, ?, ?, ?, 0, 0)')
      const seqs: Record<string, number[]> = {
        long: Array.from({ length: 9000 }, (_, i) => i),
        gap: [...Array.from({ length: 100 }, (_, i) => i), 5000, 5001],
        short: [0, 1, 2, 7],
        none: [],
      }
      journal.db.transaction(() => {
        for (const [thread, list] of Object.entries(seqs)) for (const seq of list) insert.run(thread, seq, `rb.v:[${seq % 7}]`, Math.floor(seq / 7), seq % 5 === 0 ? 0 : 1, `J${seq}`)
      })()
      const ids = Object.keys(seqs)
      const many = new RecordReader(journal.db, true).records(ids).records
      const one = new RecordReader(journal.db, false)
      for (const id of ids) {
        const expected = one.entries(id).map(({ seq, key, ord, ok, text }) => ({ seq, key, ord, ok, text }))
        expect(expected.map((e) => e.seq)).toEqual(seqs[id])
        const record = many.get(id)!
        expect(record.length).toBe(expected.length)
        expect(record.toArray().map(({ seq, key, ord, ok, text }) => ({ seq, key, ord, ok, text }))).toEqual(expected)
      }
    } finally {
      journal.close()
    }
  })
})

describe('a divergence past the units a replay let go', () => {
  it('names the last entry matched and the nearest recorded requests from the keys kept', async () => {
    const dir = tempDir()
    const db = join(dir, 'j.db')
    const first = await open(db)
    const ready = whenReady()
    const id = first.spawn('long', { n: N })
    await ready
    await first.close()
    // The same thread type, changed: at its 600th step it asks for a call the record lacks.
    const changed = thread({
      uses: ['rb'],
      async does(p: { n: number }) {
        await this.rb.v(1000, 0)
        for (let i = 0; i < p.n; i++) {
          if (i === 600) await this.rb.v(77, 0)
          if (i % 7 === 3) await Promise.all([this.rb.v(i % 5, 3), this.rb.v(100 + (i % 3), 0)])
          else await this.rb.v(i % 5, 0)
        }
      },
    })
    const again = await Weave.open({ db, threads: { long: changed }, libraries: { rb }, ioLibs: false, dumps: false, durability: 'batched', passivateAfter: false })
    try {
      const end = await again.join(id)
      expect(end.status).toBe('failed')
      const error = end.status === 'failed' ? end.error : null
      expect(error).toMatchObject({ code: 'RAIMENT_REPLAY_DIVERGENCE' })
      expect(String((error as Error).message)).toMatch(/rb\.v\(77,0\).*Nearest recorded requests: rb\.v\(.*Last matched: rb\.v\(/s)
    } finally {
      await again.close()
    }
  })
})

describe('RisingRuns (the positions a replay counted by their entries)', () => {
  it('holds exactly the positions added, in runs, and gives them back rising', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.nat(300), { maxLength: 120 }), (xs) => {
        const rising = [...xs].sort((a, b) => a - b)
        const runs = new RisingRuns()
        for (const i of rising) runs.push(i)
        expect(runs.empty).toBe(rising.length === 0)
        for (let i = -1; i <= 302; i++) expect(runs.has(i)).toBe(rising.includes(i))
        const back: number[] = []
        runs.forEach((i) => back.push(i))
        expect(back).toEqual(rising)
      }),
    )
  })
})

describe('ReplayedKeys (the keys a finished replay counted by their entries)', () => {
  it('finds exactly the keys joined in the texts, as strings and as UTF-8, before and after they go into a Set', () => {
    const key = fc.string({ unit: 'grapheme', minLength: 1, maxLength: 6 }).filter((k) => !k.includes(US))
    fc.assert(
      fc.property(fc.uniqueArray(key, { minLength: 1, maxLength: 30 }), fc.array(key, { maxLength: 12 }), fc.nat(3), (keys, others, cut) => {
        const at = Math.min(cut * 8, keys.length)
        const parts = [keys.slice(0, at), keys.slice(at)].filter((p) => p.length > 0)
        const probes = [...keys, ...others, ...keys.map((k) => k.slice(1)), ...keys.map((k) => k + k)]
        for (const texts of [parts.map((p) => p.join(US)), parts.map((p) => Buffer.from(p.join(US), 'utf8')), parts]) {
          const fresh = (): ReplayedKeys => new ReplayedKeys(texts)
          for (const p of probes) expect(fresh().has(p)).toBe(keys.includes(p))
          // One instance asked again and again: its searches end in a Set, which answers alike.
          const kept = fresh()
          for (const p of [...probes, ...probes, ...probes, ...probes, ...probes]) expect(kept.has(p)).toBe(keys.includes(p))
        }
      }),
    )
  })
})

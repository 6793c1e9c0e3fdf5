/**
 * A large dump shows how far it has come: makeDump ticks every 16,384 entries decoded and once
 * at the end, and the CLI's line names the phase (reading, decoding, writing).
 */
import { describe, expect, test } from 'vitest'
import { join } from 'node:path'
import { makeDump } from '../src/dump.js'
import { encodeArgs, encodeValue } from '../src/encoding.js'
import { Journal } from '../src/journal.js'
import { dumpLine } from '../src/cli/progress.js'
import { tempDir } from './support/tmp.js'

describe('dump progress', () => {
  test('makeDump ticks as it decodes, ending at the total', () => {
    const journal = new Journal(join(tempDir(), 'big.db'), { durability: 'memory' })
    const id = journal.nextThreadId()
    journal.insertThread(id, 'sequential', encodeValue({}, 'params'), null, 'running')
    journal.flushNow()
    const insert = journal.db.prepare('INSERT INTO journal_main (thread, seq, key, ord, ok, outcome, started, duration) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
    const n = 40_000
    journal.db.transaction(() => {
      for (let i = 0; i < n; i++) insert.run(id, i, 'noop.step:' + encodeArgs([i]), 0, 1, encodeValue(i), 0, 0)
    })()
    const ticks: Array<[number, number]> = []
    const d = makeDump(journal, id, (done, total) => ticks.push([done, total]))
    journal.close()
    expect(d.entries).toHaveLength(n)
    expect(ticks).toEqual([[0, n], [16_384, n], [32_768, n], [n, n]])
  })

  test('the line names the phase', () => {
    expect(dumpLine(0, 0, 100)).toBe('dumping: reading the journal')
    expect(dumpLine(500_000, 1_000_000, 5_000)).toBe('dumping: 500,000 of 1,000,000 entries, 100,000 entries/s, 5.0 s left')
    expect(dumpLine(1_000_000, 1_000_000, 10_000)).toBe('dumping: writing 1,000,000 entries')
  })
})

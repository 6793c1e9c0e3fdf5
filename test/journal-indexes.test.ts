/**
 * What a thread's end deletes from the journal's bookkeeping is found by an index, not by a scan
 * of the table: in a long-running weave those tables hold a row per live watch, and the deletes
 * run inside the group commit.
 */
import { join } from 'node:path'
import { expect, it } from 'vitest'
import { Journal } from '../src/journal.js'
import { tempDir } from './support/tmp.js'

it("a watched thread's end finds its watches as target and as watcher by index", () => {
  const journal = new Journal(join(tempDir('raiment-indexes-'), 'w.db'), { durability: 'memory' })
  try {
    const plan = journal.db.prepare('EXPLAIN QUERY PLAN DELETE FROM watches WHERE target = ? OR watcher = ?').all('a', 'b') as Array<{ detail: string }>
    const steps = plan.map((p) => p.detail)
    expect(steps.filter((d) => d.startsWith('SCAN'))).toEqual([])
    expect(steps).toEqual(expect.arrayContaining([expect.stringMatching(/^SEARCH watches USING .*INDEX watches_watcher \(watcher=\?\)$/)]))
  } finally {
    journal.close()
  }
})

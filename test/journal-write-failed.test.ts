/**
 * A batch that fails to commit is the journal's last: its callbacks never run, and every later
 * flush throws the same error (code RAIMENT_JOURNAL_WRITE_FAILED) and commits nothing. Before, a
 * caller that caught the error (a fork, a reload, a move) let the weave go on: later batches
 * committed without the lost one (a message taken in memory, a send a replay makes again). A
 * real journal file; the failure is a statement the database refuses, as a full disk or a lock
 * held past the busy timeout would refuse the COMMIT.
 */
import Database from 'better-sqlite3'
import { join } from 'node:path'
import { expect, it } from 'vitest'
import { Weave } from 'raiment'
import { Journal } from '../src/journal.js'
import { tempDir } from './support/tmp.js'

it('after a batch fails to commit, nothing more commits and no callback of it runs', () => {
  const file = join(tempDir('raiment-write-failed-'), 'w.db')
  const journal = new Journal(file, { durability: 'memory' })
  const put = journal.db.prepare('INSERT INTO meta (k, v) VALUES (?, ?)')
  const ran: string[] = []
  put.run('taken', 'x')
  journal.queue(put, ['a', '1'], () => ran.push('a'))
  journal.queue(put, ['taken', 'again'], () => ran.push('refused'))
  expect(() => journal.flushNow()).toThrow(expect.objectContaining({ code: 'RAIMENT_JOURNAL_WRITE_FAILED' }) as Error)
  journal.queue(put, ['b', '2'], () => ran.push('b'))
  expect(() => journal.flushNow()).toThrow(expect.objectContaining({ code: 'RAIMENT_JOURNAL_WRITE_FAILED', message: expect.stringContaining('start it again') as unknown }) as Error)
  expect(ran).toEqual([])
  expect(() => journal.close()).toThrow(expect.objectContaining({ code: 'RAIMENT_JOURNAL_WRITE_FAILED' }) as Error)
  const db = new Database(file, { readonly: true })
  try {
    expect(db.prepare("SELECT k FROM meta WHERE k IN ('a', 'b')").pluck().all()).toEqual([])
    // The owner record stays, as after a crash: the next owner writes the dumps that may be missing.
    expect(db.prepare("SELECT count(*) FROM meta WHERE k = 'owner'").pluck().get()).toBe(1)
  } finally {
    db.close()
  }
})

it('a weave whose journal failed a batch closes (the lock let go) with that error, and the file opens again', async () => {
  const file = join(tempDir('raiment-write-failed-'), 'w.db')
  const w = await Weave.open({ db: file, durability: 'memory', threads: {}, ioLibs: false, dumps: false })
  const put = w.journal.db.prepare('INSERT INTO meta (k, v) VALUES (?, ?)')
  put.run('taken', 'x')
  w.journal.queue(put, ['taken', 'again'])
  expect(() => w.journal.flushNow()).toThrow(expect.objectContaining({ code: 'RAIMENT_JOURNAL_WRITE_FAILED' }) as Error)
  w.journal.queue(put, ['later', '1'])
  await expect(w.close()).rejects.toMatchObject({ code: 'RAIMENT_JOURNAL_WRITE_FAILED' })
  const again = await Weave.open({ db: file, durability: 'memory', threads: {}, ioLibs: false, dumps: false })
  try {
    expect(again.journal.meta('later')).toBeUndefined()
  } finally {
    await again.close()
  }
})

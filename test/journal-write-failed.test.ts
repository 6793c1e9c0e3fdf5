/**
 * A batch that fails to commit is the journal's last: its callbacks never run, and every later
 * flush throws the same error (code RAIMENT_JOURNAL_WRITE_FAILED) and commits nothing. Before, a
 * caller that caught the error (a fork, a reload, a move) let the weave go on: later batches
 * committed without the lost one (a message taken in memory, a send a replay makes again). A
 * real journal file; the failure is a statement the database refuses, as a full disk or a lock
 * held past the busy timeout would refuse the COMMIT. And a real `raiment start` whose journal
 * another process locks past the busy timeout: it stops with one line and the code, exit 1, and
 * started again it resumes its thread (fail-stop).
 */
import Database from 'better-sqlite3'
import { join } from 'node:path'
import { expect, it } from 'vitest'
import { Weave } from 'raiment'
import { Journal } from '../src/journal.js'
import { raiment, raimentProcess } from './support/raiment-process.js'
import { projectWith } from './support/threads-dir.js'
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

it('a weave whose journal failed a batch closes (the lock let go) with that error, tells who waits for durability so, and the file opens again', async () => {
  const file = join(tempDir('raiment-write-failed-'), 'w.db')
  const w = await Weave.open({ db: file, durability: 'memory', threads: {}, ioLibs: false, dumps: false })
  const put = w.journal.db.prepare('INSERT INTO meta (k, v) VALUES (?, ?)')
  put.run('taken', 'x')
  w.journal.queue(put, ['taken', 'again'])
  // Asked before the failure: told it failed, not that it is durable.
  const durable = w.committed()
  expect(() => w.journal.flushNow()).toThrow(expect.objectContaining({ code: 'RAIMENT_JOURNAL_WRITE_FAILED' }) as Error)
  w.journal.queue(put, ['later', '1'])
  const later = w.committed()
  await expect(w.close()).rejects.toMatchObject({ code: 'RAIMENT_JOURNAL_WRITE_FAILED' })
  await expect(durable).rejects.toMatchObject({ code: 'RAIMENT_JOURNAL_WRITE_FAILED' })
  await expect(later).rejects.toMatchObject({ code: 'RAIMENT_JOURNAL_WRITE_FAILED' })
  await expect(w.committed()).rejects.toMatchObject({ code: 'RAIMENT_JOURNAL_WRITE_FAILED' })
  const again = await Weave.open({ db: file, durability: 'memory', threads: {}, ioLibs: false, dumps: false })
  try {
    expect(again.journal.meta('later')).toBeUndefined()
  } finally {
    await again.close()
  }
})

const RAIMENT = new URL('../src/index.ts', import.meta.url).href

const TICKER = `import { thread } from '${RAIMENT}'
export default thread({
  uses: ['clock'],
  async does() {
    for (;;) await this.clock.sleep(20)
  },
})
`

it('raiment start whose journal is locked past the busy timeout stops with one line and its code, and resumes when started again', async () => {
  const dir = projectWith({ 'ticker.ts': TICKER })
  const weave = raimentProcess(dir, ['start'])
  await weave.until((out) => /^weave \S+ on raiment\.db/m.test(out))
  const spawned = await raiment(dir, 'spawn', 'ticker')
  expect(spawned.code, spawned.stderr).toBe(0)
  const id = spawned.stdout.trim()
  await weave.until((out) => out.includes(`started ${id}`))
  // Another process takes the write lock and keeps it: the weave's next commit waits 5 s, then fails.
  const other = new Database(join(dir, 'raiment.db'))
  other.exec('BEGIN IMMEDIATE')
  const ended = await weave.ended
  other.exec('ROLLBACK')
  other.close()
  expect(ended.code, ended.stderr).toBe(1)
  expect(ended.stderr).toMatch(/^raiment: RAIMENT_JOURNAL_WRITE_FAILED: a batch could not be committed to .*raiment\.db/m)
  const again = raimentProcess(dir, ['start'])
  await again.until((out) => /resumed 1 thread/.test(out))
  again.child.kill('SIGTERM')
  expect((await again.ended).code).toBe(0)
}, 60_000)

/**
 * A weave whose journal file is replaced or deleted between its open of the file and its taking
 * the owner lock (by a process that holds that lock to do it: a restore, a takeover's rebuild, a
 * refused start) runs on the file the path leads to, not on the unlinked one, where everything it
 * recorded would be lost. Made deterministic with the stop point `journal-opened`
 * (src/crash-points.ts). Real processes.
 */
import { readFileSync, renameSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { expect, test } from 'vitest'
import { Journal } from '../src/journal.js'
import { JournalLock } from '../src/journal-owner.js'
import { raiment, raimentProcess, THREADS } from './support/raiment-process.js'
import { tempDir } from './support/tmp.js'
import { until } from './support/until.js'

/** Each weave is a Node process loading TypeScript through tsx. */
const SLOW = 60_000

/** The state letter of a process in /proc (Linux): T while it is stopped. */
function stateOf(pid: number): string {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3)
}

// In rollback mode, as a weave that closed leaves it, or in WAL mode, as one that died does (SQLite
// then finds no file moved at the first write: it would run on the unlinked one).
test.each([
  ['replaced', 'rollback'],
  ['deleted', 'rollback'],
  ['replaced', 'wal'],
  ['deleted', 'wal'],
])('a journal %s before the weave that opened it takes the lock (%s mode): the weave runs on the file at the path', async (how, mode) => {
  const dir = tempDir()
  const db = join(dir, 'w.db')
  new Journal(db, { weaveId: 'before', durability: 'memory' }).close()
  if (mode === 'wal') {
    const sqlite = new Database(db)
    sqlite.pragma('journal_mode = WAL')
    sqlite.close()
  }
  const weave = raimentProcess(dir, ['start', '--db', db, '--threads', THREADS], { env: { RAIMENT_STOP_AT: 'journal-opened' } })
  try {
    await weave.until((out) => out.includes('raiment: stopped at journal-opened'))
    const pid = weave.child.pid!
    await until('the weave to stop', () => stateOf(pid) === 'T')
    // As a restore, a takeover's rebuild or a refused start does it: holding the owner lock.
    const lock = JournalLock.take(db)
    if (how === 'replaced') {
      const other = join(dir, 'other.db')
      new Journal(other, { weaveId: 'after', durability: 'memory' }).close()
      renameSync(other, db)
    } else {
      rmSync(db)
    }
    lock.release()
    weave.child.kill('SIGCONT')
    await weave.until((out) => /^weave \S+ on /m.test(out))
    if (how === 'replaced') expect(weave.stdout + weave.stderr).toMatch(/^weave after on /m)
    const j = new Journal(db, { readonly: true })
    expect(j.owner()?.pid, 'the owner recorded in the file at the path').toBe(pid)
    j.close()
    // And what it runs is recorded there.
    const spawned = await raiment(dir, 'spawn', 'greet', '{"name":"ada"}', '--wait', '--db', db, '--threads', THREADS)
    expect(spawned.code, spawned.stdout + spawned.stderr).toBe(0)
    expect(spawned.stdout).toContain('ada')
  } finally {
    weave.child.kill('SIGCONT')
    weave.child.kill('SIGTERM')
    await weave.ended
  }
}, SLOW)

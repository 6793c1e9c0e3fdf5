/**
 * A weave whose journal file is replaced or deleted between each of its opens of it and its taking
 * the owner lock gives up with JournalReplaced, which says what it saw the last time: the file it
 * opened and what the path led to once locked (another file, or none). Made deterministic with the
 * stop point `journal-opened-each` (src/crash-points.ts): the weave stops at each open, and the
 * test replaces the file, holding the owner lock as a restore or a takeover's rebuild does. Real
 * processes.
 */
import { readFileSync, renameSync, rmSync, statSync } from 'node:fs'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { expect, test } from 'vitest'
import { Journal } from '../src/journal.js'
import { JournalLock } from '../src/journal-owner.js'
import { raimentProcess, THREADS } from './support/raiment-process.js'
import { tempDir } from './support/tmp.js'
import { until } from './support/until.js'

/** Each weave is a Node process loading TypeScript through tsx. */
const SLOW = 60_000
/** How many times a weave opens a file replaced under it (src/journal-open.ts OPEN_TRIES). */
const OPENS = 5

/** The state letter of a process in /proc (Linux): T while it is stopped. */
function stateOf(pid: number): string {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3)
}

/** A file's identity as the weave names it: `device:inode`. */
function idOf(file: string): string {
  const s = statSync(file, { bigint: true })
  return `${s.dev}:${s.ino}`
}

/** A journal of weave w, in rollback mode (as a weave that closed leaves it) or WAL mode (as one that died does). */
function fresh(file: string, mode: string): void {
  new Journal(file, { weaveId: 'w', durability: 'memory' }).close()
  if (mode === 'wal') {
    const sqlite = new Database(file)
    sqlite.pragma('journal_mode = WAL')
    sqlite.close()
  }
}

test.each([['replaced', 'rollback'], ['deleted', 'rollback'], ['replaced', 'wal'], ['deleted', 'wal']])('a journal replaced at each open, the last time %s (%s mode): JournalReplaced names the file opened and what the path led to', async (last, mode) => {
  const dir = tempDir()
  const db = join(dir, 'w.db')
  fresh(db, mode)
  const weave = raimentProcess(dir, ['start', '--db', db, '--threads', THREADS], { env: { RAIMENT_STOP_AT: 'journal-opened-each' } })
  try {
    let opened = ''
    let found = ''
    for (let open = 1; open <= OPENS; open++) {
      await weave.until((out) => out.split('raiment: stopped at journal-opened-each').length - 1 >= open)
      const pid = weave.child.pid!
      await until('the weave to stop', () => stateOf(pid) === 'T')
      // The file this open found (the weave holds it open, so a new file cannot take its inode).
      opened = idOf(db)
      const lock = JournalLock.take(db)
      if (open === OPENS && last === 'deleted') rmSync(db)
      else {
        const other = join(dir, `other-${open}.db`)
        fresh(other, mode)
        found = idOf(other)
        renameSync(other, db)
      }
      lock.release()
      weave.child.kill('SIGCONT')
    }
    const ended = await weave.ended
    expect(ended.code, ended.stderr).not.toBe(0)
    expect(ended.stderr).toContain('RAIMENT_JOURNAL_REPLACED')
    expect(ended.stderr).toContain(`each of the ${OPENS} times`)
    expect(ended.stderr).toContain(`it opened the file ${opened} (device:inode)`)
    if (last === 'replaced') expect(ended.stderr).toContain(`the path led to another file, ${found}`)
    else expect(ended.stderr).toContain('the path led to no file (deleted)')
    // A deleted file in WAL mode cannot be read: the check failing on it is the error's cause.
    if (last === 'deleted' && mode === 'wal') expect(ended.stderr).toMatch(/led to no file \(deleted\), where checking the file opened failed: .* is not a Raiment journal \(disk I\/O error\)[^.]/)
  } finally {
    weave.child.kill('SIGCONT')
    weave.child.kill('SIGTERM')
    await weave.ended
  }
}, SLOW)

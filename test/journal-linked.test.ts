/**
 * A journal file with two names (a hard link) is refused to every writer. The owner lock is the
 * sidecar `<name>-lock` and SQLite's WAL is `<name>-wal`, so through a second name a second weave
 * took a lock and a WAL of its own and ran the journal beside the first (both opened). Now
 * Weave.open, `raiment start` and the CLI's writing commands refuse the file with
 * RAIMENT_JOURNAL_LINKED, leaving it untouched, whichever name they are given; reading commands
 * still read it. A rebuild of a replicated weave's own journal keeps the old file as a copy, not
 * as a second name, so a failure before its last rename leaves nothing the next attempt refuses.
 * Real SQLite files in temporary directories; `raiment start` as real processes.
 */
import { existsSync, linkSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, test } from 'vitest'
import { JournalLinked, thread, Weave, type AnyThreadType } from 'raiment'
import { Journal } from '../src/journal.js'
import { swapInRebuilt } from '../src/replication/host-files.js'
import { cliRun } from './support/cli-in-process.js'
import { raimentProcess, THREADS, type Running } from './support/raiment-process.js'
import { tempDir } from './support/tmp.js'

const types = {
  echo: thread({ uses: [], async does(p: unknown) { return p } }) as AnyThreadType,
  waits: thread({ uses: ['mailbox'], async does() { return await this.mailbox.receive() } }) as AnyThreadType,
}
const weaveAt = (db: string) => Weave.open({ db, threads: types, ioLibs: false, dumps: false })

/** Two directories of a fresh temporary one, `a` and `b`, and the journal name `w.db` in each. */
function twoPlaces(): { a: string; b: string } {
  const dir = tempDir()
  mkdirSync(join(dir, 'a'))
  mkdirSync(join(dir, 'b'))
  return { a: join(dir, 'a', 'w.db'), b: join(dir, 'b', 'w.db') }
}

/** A journal at `db` with a thread done and one running (waiting for a message), closed. */
async function journalWithThreads(db: string): Promise<{ running: string }> {
  const w = await weaveAt(db)
  await w.join(w.spawn('echo', { n: 1 }))
  const running = w.spawn('waits')
  await w.committed()
  await w.close()
  return { running }
}

describe('a journal file with two names', () => {
  test('Weave.open through the second name of a running weave\'s journal is refused with RAIMENT_JOURNAL_LINKED; the first runs on', async () => {
    const { a, b } = twoPlaces()
    const first = await weaveAt(a)
    await first.join(first.spawn('echo', 1))
    linkSync(a, b)
    const err = (await weaveAt(b).catch((e: unknown) => e)) as JournalLinked
    expect(err).toBeInstanceOf(JournalLinked)
    expect(err.code).toBe('RAIMENT_JOURNAL_LINKED')
    expect(err.links).toBe(2)
    expect(err.message).toContain(`${b} has 2 hard links`)
    expect(err.message).toMatch(/Remove the other names.*copy the file \(cp\) rather than link it/)
    // Nothing made beside the second name: no lock, no WAL.
    expect(readdirSync(join(b, '..'))).toEqual(['w.db'])
    // The first one's name is refused too (the file has two names, whichever is given)…
    expect(await weaveAt(a).catch((e: unknown) => (e as JournalLinked).code)).toBe('RAIMENT_JOURNAL_LINKED')
    // …and the first weave runs on.
    expect(await first.join(first.spawn('echo', 2))).toMatchObject({ status: 'done', result: 2 })
    await first.close()
  })

  test('every CLI command that writes refuses it, by either name, and leaves it as it was; reading commands read it', async () => {
    const { a, b } = twoPlaces()
    const { running } = await journalWithThreads(a)
    linkSync(a, b)
    const before = readFileSync(a)
    const writes = (db: string): string[][] => [
      ['kill', running, '--db', db],
      ['cancel', running, '--db', db],
      ['send', running, '{"hi":1}', '--db', db],
      ['spawn', 'greet', '{"name":"ada"}', '--db', db, '--threads', THREADS],
      ['dead-letters', '--drop', 'all', '--db', db],
      ['schedule', 'add', 'nightly', 'greet', '{"name":"ada"}', '--cron', '0 3 * * *', '--db', db, '--threads', THREADS],
      ['migrate', running, '--to', 'elsewhere', '--db', db],
    ]
    for (const argv of [...writes(b), ...writes(a)]) {
      const { code, printed } = await cliRun(argv)
      expect(code, argv.join(' ')).not.toBe(0)
      expect(printed.join(''), argv.join(' ')).toContain('RAIMENT_JOURNAL_LINKED')
    }
    expect(readFileSync(a).equals(before)).toBe(true)
    expect(readdirSync(join(a, '..'))).toEqual(['w.db', 'w.db-lock'])
    expect(readdirSync(join(b, '..'))).toEqual(['w.db'])
    const ps = await cliRun(['ps', '--db', b])
    expect(ps.code).toBe(0)
    expect(ps.printed.join('')).toContain(running)
    // A read-only Journal opens it; a writable one (an owner, or beside one) does not.
    new Journal(b, { readonly: true }).close()
    expect(() => new Journal(b, { own: false })).toThrow(JournalLinked)
  })

  test('raiment start through a second name of the journal of a running raiment start exits with RAIMENT_JOURNAL_LINKED; the first runs on', async () => {
    const { a, b } = twoPlaces()
    const cwd = join(a, '..', '..')
    const first = raimentProcess(cwd, ['start', '--db', a, '--threads', THREADS])
    let second: Running | null = null
    try {
      await first.until((out) => out.includes(`on ${a} (pid`))
      linkSync(a, b)
      second = raimentProcess(cwd, ['start', '--db', b, '--threads', THREADS])
      const ended = await second.ended
      expect(ended.code, ended.stdout + ended.stderr).not.toBe(0)
      expect(ended.stderr).toContain('RAIMENT_JOURNAL_LINKED')
      expect(existsSync(`${b}-wal`) || existsSync(`${b}-lock`)).toBe(false)
      expect(first.child.exitCode).toBe(null)
    } finally {
      // Both ended whatever happened (the second runs on when it is let in).
      for (const p of [second, first]) {
        if (p !== null && p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL')
        await p?.ended
      }
    }
  }, 60_000)

  test('a rebuilt journal swapped in keeps the old file as a copy: stopped before its last rename, it leaves no file with two names, and goes through again', async () => {
    const dir = tempDir()
    const db = join(dir, 'w.db')
    await journalWithThreads(db)
    const old = readFileSync(db)
    const fresh = join(dir, 'w.db.rebuilding')
    await journalWithThreads(fresh)
    const rebuilt = readFileSync(fresh)
    // A rebuilt file that is not there: the swap stops at its rename, as a crash there would.
    expect(() => swapInRebuilt(db, join(dir, 'gone.db'), join(dir, 'w.db.epoch-1'))).toThrow(/ENOENT/)
    expect(statSync(db).nlink).toBe(1)
    expect(readFileSync(db).equals(old)).toBe(true)
    // The next attempt (another aside name, as freeName gives) goes through.
    swapInRebuilt(db, fresh, join(dir, 'w.db.epoch-1.2'))
    expect(readFileSync(db).equals(rebuilt)).toBe(true)
    expect(readFileSync(join(dir, 'w.db.epoch-1.2')).equals(old)).toBe(true)
    expect(statSync(db).nlink).toBe(1)
    expect(statSync(join(dir, 'w.db.epoch-1.2')).nlink).toBe(1)
  })
})

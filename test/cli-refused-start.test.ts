/**
 * A start refused before its weave runs leaves no journal behind when there was none: the refusal
 * says to rebuild the file from the stream (`raiment restore --db FILE`), and restore refuses a
 * file that exists (in a slot of `start --weaves N`, which recovers by itself, it says nothing is
 * to be done). Real processes, on the broker. A `spawn --wait` refused before its thread is
 * recorded cleans up as a start does.
 */
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, test } from 'vitest'
import { Weave } from 'raiment'
import { undoFreshJournal } from '../src/cli/common.js'
import { encodeValue } from '../src/encoding.js'
import { Journal } from '../src/journal.js'
import { secretKeyFile } from '../src/secrets/keyring.js'
import { AMQP_URL, brokerUp, CI, freshNamespace, brokerTests } from './support/broker.js'
import { raiment, raimentProcess, THREADS } from './support/raiment-process.js'
import { removeReplNamespace } from './support/repl-cluster.js'
import { tempDir } from './support/tmp.js'

/** Each weave is a Node process loading TypeScript through tsx. */
const SLOW = 120_000

/**
 * The journal's files a start creates beside `db`, but the sidecar of its owner lock: that one is
 * never deleted (src/journal-owner.ts), and stays an empty file.
 */
const files = (db: string): string[] => {
  if (existsSync(`${db}-lock`)) expect(statSync(`${db}-lock`).size).toBe(0)
  return [db, `${db}-wal`, `${db}-shm`, `${db}-secret-key`].filter((f) => existsSync(f))
}

describe.skipIf(!brokerUp && !CI)('a refused start', () => {
  const cleanups = brokerTests()

  test('leaves no new journal: refused because the stream holds another file, then restored from it', async () => {
    const dir = tempDir()
    const ns = freshNamespace()
    cleanups.push(() => removeReplNamespace(AMQP_URL, ns, ['d']))
    const db = join(dir, 'd.db')
    const args = ['start', '--replicate', '--amqp', AMQP_URL, '--namespace', ns, '--id', 'd', '--heartbeat', '100', '--threads', THREADS]
    const first = raimentProcess(dir, [...args, '--db', db])
    await first.until((out) => out.includes(`joined namespace '${ns}'`))
    first.child.kill('SIGTERM')
    expect((await first.ended).code).toBe(0)
    // Its disk lost: started again on a new file, which the stream would replace.
    const again = await raiment(dir, ...args, '--db', db.replace('d.db', 'd2.db'))
    expect(again.code).not.toBe(0)
    expect(again.stderr).toMatch(/^raiment: RAIMENT_STREAM_AHEAD: .*raiment restore --from d --db FILE/m)
    // Not "use --id": a journal keeps its id, so that was refused too (a user trial).
    expect(again.stderr).toContain('cannot run under another --id')
    expect(again.stderr).not.toContain('use --id')
    expect(files(join(dir, 'd2.db'))).toEqual([])
    // In a slot of `start --weaves N`, which starts it again until it is taken over and handed
    // back: nothing to do, and no restore to run.
    const slot = await raimentProcess(dir, [...args, '--db', db.replace('d.db', 'd3.db')], { env: { RAIMENT_WEAVES_CHILD: '1' } }).ended
    expect(slot.code).not.toBe(0)
    expect(slot.stderr).toMatch(/^raiment: RAIMENT_STREAM_AHEAD: .*Nothing to do: this slot of 'raiment start --weaves' starts it again until another weave/m)
    expect(files(join(dir, 'd3.db'))).toEqual([])
    // What the line says to do works on that very file.
    const restored = await raiment(dir, 'restore', '--from', 'd', '--db', join(dir, 'd2.db'), '--amqp', AMQP_URL, '--namespace', ns)
    expect(restored.code, restored.stdout + restored.stderr).toBe(0)
    expect(existsSync(join(dir, 'd2.db'))).toBe(true)
  }, SLOW)

  test('leaves no new journal when the broker refuses the login', async () => {
    const dir = tempDir()
    const db = join(dir, 'w.db')
    const wrong = AMQP_URL.replace(/\/\/([^:@/]+):([^@/]+)@/, '//$1:wrong-password@')
    for (const extra of [[], ['--replicate']]) {
      const run = await raiment(dir, 'start', '--amqp', wrong, '--namespace', freshNamespace(), '--db', db, '--threads', THREADS, ...extra)
      expect(run.code).not.toBe(0)
      expect(run.stderr).toMatch(/^raiment: RAIMENT_BROKER_LOGIN_REFUSED: /m)
      expect(files(db), extra.join(' ')).toEqual([])
    }
  }, SLOW)
})

describe.skipIf(!brokerUp && !CI)('a refused start and a weave that starts meanwhile', () => {
  brokerTests()

  // Stopped (RAIMENT_STOP_AT=undo-checked) once it has looked at what it may remove: a weave
  // starts on the path then. Its journal and its lock's sidecar were deleted under it, and the
  // next start created and locked new ones: two weaves ran the journal.
  test.each([[[]], [['--replicate']]])('never leaves two weaves on the journal (start %j)', async (extra: string[]) => {
    const dir = tempDir()
    const db = join(dir, 'w.db')
    const wrong = AMQP_URL.replace(/\/\/([^:@/]+):([^@/]+)@/, '//$1:wrong-password@')
    const refused = raimentProcess(dir, ['start', '--amqp', wrong, '--namespace', freshNamespace(), '--db', db, '--threads', THREADS, ...extra], { env: { RAIMENT_STOP_AT: 'undo-checked' } })
    const weaves: Array<ReturnType<typeof raimentProcess>> = []
    try {
      await refused.until((out) => out.includes('raiment: stopped at undo-checked'))
      const runs = async (): Promise<{ files: { db: number; lock: number } } | null> => {
        const w = raimentProcess(dir, ['start', '--db', db, '--threads', THREADS])
        weaves.push(w)
        const up = await w.until((out) => /^weave \S+ on /m.test(out)).then(() => true, () => false)
        if (!up) expect(w.stderr).toMatch(/^raiment: RAIMENT_JOURNAL_OWNED: /m)
        return up ? { files: { db: statSync(db).ino, lock: statSync(`${db}-lock`).ino } } : null
      }
      const first = await runs()
      refused.child.kill('SIGCONT')
      expect((await refused.ended).code).not.toBe(0)
      const second = await runs()
      expect(first !== null && second !== null, 'two weaves run the journal').toBe(false)
      const running = first ?? second
      expect(running, 'one of them runs').not.toBe(null)
      expect({ db: statSync(db).ino, lock: statSync(`${db}-lock`).ino }).toEqual(running!.files)
    } finally {
      refused.child.kill('SIGCONT')
      for (const w of weaves) w.child.kill('SIGTERM')
      await Promise.all([refused.ended, ...weaves.map((w) => w.ended)])
    }
  }, SLOW)
})

describe('what a refused start removes', () => {
  test('only a journal that holds nothing and that no weave runs on (another start may have made it meanwhile)', async () => {
    const dir = tempDir()
    const db = join(dir, 'w.db')
    // Two starts on a new path: each looked before either made the file.
    const undoA = undoFreshJournal(db)
    const undoB = undoFreshJournal(db)
    const weave = await Weave.open({ db, threads: {}, ioLibs: false, dumps: false, durability: 'memory' })
    // B is refused (the journal's second owner): its undo leaves A's journal alone.
    undoB()
    expect(existsSync(db)).toBe(true)
    await weave.close()
    // Holding a thread (a `raiment spawn` with no weave running), no weave on it: left alone too.
    const j = new Journal(db, { durability: 'memory' })
    j.insertThread(j.nextThreadId(), 'x', encodeValue(null), null, 'pending')
    j.close()
    undoB()
    expect(existsSync(db)).toBe(true)
    // Empty, and no weave on it: removed, with what was made beside it.
    rmSync(db)
    for (const f of files(db)) rmSync(f)
    const undoC = undoFreshJournal(db)
    await (await Weave.open({ db, threads: {}, ioLibs: false, dumps: false, durability: 'memory' })).close()
    undoC()
    expect(files(db)).toEqual([])
    undoA()
  })

  test('never a secret key while there is no journal: one there then is a weave\'s that started meanwhile (a start makes none before its journal)', () => {
    const dir = tempDir()
    const db = join(dir, 'w.db')
    const undo = undoFreshJournal(db)
    // Another start made its key after this one looked (the race: it made the journal too, after
    // this one found none; in-process, the key alone reaches the same branch).
    writeFileSync(secretKeyFile(db), 'key of the weave that runs\n')
    undo()
    expect(readFileSync(secretKeyFile(db), 'utf8')).toBe('key of the weave that runs\n')
  })

  test('a refused `raiment spawn --wait` (a secret key too short) leaves no journal, as a refused start does', async () => {
    const dir = tempDir()
    const env = { RAIMENT_SECRET_KEY: 'short' }
    for (const command of [['start'], ['spawn', 'greet', '{"name":"ada"}', '--wait']]) {
      const db = join(dir, `${command[0]}.db`)
      const run = await raimentProcess(dir, [...command, '--db', db, '--threads', THREADS], { env }).ended
      expect(run.code, run.stdout + run.stderr).toBe(1)
      expect(run.stderr).toMatch(/^raiment: RAIMENT_SECRET_KEY_UNUSABLE: /m)
      expect(files(db), command[0]).toEqual([])
    }
  }, SLOW)
})

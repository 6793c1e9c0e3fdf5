/**
 * `raiment dead-letters --resend N [--to X]` and `--drop N… | all` (src/cli/dead-letters.ts,
 * src/dead-letters.ts): a dead letter sent again reaches its new recipient once, from its sender,
 * and leaves the dead letters in the same step; with a weave running the weave does it (a control
 * request), with none the CLI does. A number that is not a dead letter changes nothing. Real
 * journals; in-process weaves, and the CLI as a process for its lines and exit codes.
 */
import Database from 'better-sqlite3'
import { join } from 'node:path'
import { describe, expect, test } from 'vitest'
import { thread, Weave } from 'raiment'
import { deadLetters } from '../src/cli/dead-letters.js'
import { deadLetters as uiDeadLetters, Journals } from '../src/ui/data.js'
import { deadLettersPage } from '../src/ui/pages.js'
import { SCHEMA_VERSION } from '../src/journal.js'
import { raiment } from './support/raiment-process.js'
import { tempDir } from './support/tmp.js'

/** Registers as 'keeper' and returns the first message it takes. */
const keeper = thread({
  uses: ['mailbox', 'registry'],
  async does() {
    await this.registry.register('keeper')
    return this.mailbox.receive()
  },
})

/** Sends `{ order: p.order }` to 'nobody' (no such name: a dead letter), then waits. */
const sender = thread({
  uses: ['mailbox'],
  async does(p: { order: number }) {
    await this.mailbox.send('nobody', { order: p.order })
    return this.mailbox.receive({ match: 'never' })
  },
})

const open = (db: string): Promise<Weave> => Weave.open({ db, threads: { keeper, sender }, ioLibs: false, dumps: false, durability: 'memory', passivateAfter: false })

interface Row {
  n: number
  sender: string | null
  recipient: string
}

function rows(db: string): Row[] {
  const raw = new Database(db, { readonly: true })
  try {
    return raw.prepare('SELECT n, sender, recipient FROM dead_letters ORDER BY n').all() as Row[]
  } finally {
    raw.close()
  }
}

/** A journal with a keeper running and three dead letters from three sender threads; the weave still open. */
async function threeDeadLetters(): Promise<{ db: string; weave: Weave; keeperId: string; senders: string[] }> {
  const db = join(tempDir(), 'raiment.db')
  const weave = await open(db)
  const keeperId = weave.spawn('keeper')
  const senders = [1, 2, 3].map((order) => weave.spawn('sender', { order }))
  while (rows(db).length < 3) await weave.committed()
  return { db, weave, keeperId, senders }
}

const quiet = { limit: '20' }

describe('with a weave running, the weave sends again or drops', () => {
  test('--resend N --to a name: the thread takes it from its sender, once; the dead letter is gone, and N again is refused', async () => {
    const { db, weave, keeperId, senders } = await threeDeadLetters()
    try {
      const [first] = rows(db)
      expect(await deadLetters({ db, ...quiet, resend: [String(first!.n)], to: 'keeper' })).toBe(0)
      expect(await weave.join(keeperId)).toMatchObject({ status: 'done', result: { order: 1 } })
      expect(rows(db).map((r) => r.n)).not.toContain(first!.n)
      const raw = new Database(db, { readonly: true })
      expect(raw.prepare('SELECT count(*) FROM inbox').pluck().get()).toBe(0)
      raw.close()
      await expect(deadLetters({ db, ...quiet, resend: [String(first!.n)], to: 'keeper' })).rejects.toMatchObject({ code: 'RAIMENT_NO_DEAD_LETTER' })
      expect(rows(db)).toHaveLength(2)
      expect(senders).toHaveLength(3)
    } finally {
      await weave.close()
    }
  })

  test('--resend N to its recipient still missing: a dead letter again, under a new N, from the same sender (exit 1)', async () => {
    const { db, weave, senders } = await threeDeadLetters()
    try {
      const before = rows(db)
      expect(await deadLetters({ db, ...quiet, resend: [String(before[0]!.n)] })).toBe(1)
      const after = rows(db)
      expect(after).toHaveLength(3)
      expect(after.map((r) => r.n)).not.toContain(before[0]!.n)
      expect(after.at(-1)).toMatchObject({ recipient: 'nobody', sender: before[0]!.sender })
      expect(senders).toContain(before[0]!.sender)
    } finally {
      await weave.close()
    }
  })

  test('two --resend of one dead letter at once: it is sent once, the other request finds it gone', async () => {
    const { db, weave, keeperId } = await threeDeadLetters()
    try {
      const n = String(rows(db)[0]!.n)
      const both = await Promise.allSettled([deadLetters({ db, ...quiet, resend: [n], to: keeperId }), deadLetters({ db, ...quiet, resend: [n], to: keeperId })])
      expect(both.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected'])
      expect(both.find((r) => r.status === 'rejected')).toMatchObject({ reason: { code: 'RAIMENT_NO_DEAD_LETTER' } })
      expect(await weave.join(keeperId)).toMatchObject({ status: 'done', result: { order: 1 } })
      const raw = new Database(db, { readonly: true })
      expect(raw.prepare('SELECT count(*) FROM inbox').pluck().get()).toBe(0)
      raw.close()
    } finally {
      await weave.close()
    }
  })

  test('a number is never given again: after the newest is dropped, the next dead letter takes a new one', async () => {
    const { db, weave } = await threeDeadLetters()
    try {
      const newest = rows(db).at(-1)!.n
      expect(await deadLetters({ db, ...quiet, drop: [String(newest)] })).toBe(0)
      weave.send('nobody', 'later')
      await weave.committed()
      expect(rows(db).at(-1)!.n).toBeGreaterThan(newest)
    } finally {
      await weave.close()
    }
  })

  test('--resend all: each is sent again, oldest first, in a request of its own; those dead again are counted (exit 1)', async () => {
    const { db, weave, keeperId } = await threeDeadLetters()
    try {
      const before = rows(db)
      // The keeper takes the oldest and ends: the two after it find it ended.
      expect(await deadLetters({ db, ...quiet, resend: ['all'], to: 'keeper' })).toBe(1)
      expect(await weave.join(keeperId)).toMatchObject({ status: 'done', result: { order: 1 } })
      const after = rows(db)
      expect(after).toHaveLength(2)
      expect(after.every((r) => r.n > before.at(-1)!.n && r.recipient === 'keeper')).toBe(true)
      expect(after.map((r) => r.sender)).toEqual(before.slice(1).map((r) => r.sender))
      // Several by number, one of them not a dead letter: refused, nothing sent.
      await expect(deadLetters({ db, ...quiet, resend: [String(after[0]!.n), '999'] })).rejects.toMatchObject({ code: 'RAIMENT_NO_DEAD_LETTER' })
      expect(rows(db)).toEqual(after)
    } finally {
      await weave.close()
    }
  })

  test('two --resend all at once: each dead letter is sent once, and the one that finds it gone goes on to the next', async () => {
    const { db, weave, keeperId } = await threeDeadLetters()
    try {
      const before = rows(db)
      const both = await Promise.allSettled([deadLetters({ db, ...quiet, resend: ['all'], to: keeperId }), deadLetters({ db, ...quiet, resend: ['all'], to: keeperId })])
      expect(both.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled'])
      expect(await weave.join(keeperId)).toMatchObject({ status: 'done', result: { order: 1 } })
      // The two after the first found the keeper ended: dead letters again, once each.
      const after = rows(db)
      expect(after).toHaveLength(2)
      expect(after.map((r) => r.sender)).toEqual(before.slice(1).map((r) => r.sender))
    } finally {
      await weave.close()
    }
  })

  test('--drop of two, then of one not there (nothing changed), then all', async () => {
    const { db, weave } = await threeDeadLetters()
    try {
      const [a, b, c] = rows(db)
      expect(await deadLetters({ db, ...quiet, drop: [String(a!.n), String(b!.n)] })).toBe(0)
      expect(rows(db).map((r) => r.n)).toEqual([c!.n])
      await expect(deadLetters({ db, ...quiet, drop: [String(c!.n), String(a!.n)] })).rejects.toMatchObject({ code: 'RAIMENT_NO_DEAD_LETTER' })
      expect(rows(db).map((r) => r.n)).toEqual([c!.n])
      expect(await deadLetters({ db, ...quiet, drop: ['all'] })).toBe(0)
      expect(rows(db)).toEqual([])
    } finally {
      await weave.close()
    }
  })
})

test('with no weave running, the CLI sends it again into the inbox (from its sender), and the next weave delivers it', async () => {
  const { db, weave, keeperId } = await threeDeadLetters()
  await weave.close()
  const [first, second] = rows(db)
  expect(await deadLetters({ db, ...quiet, resend: [String(second!.n)], to: keeperId })).toBe(0)
  expect(await deadLetters({ db, ...quiet, drop: [String(first!.n)] })).toBe(0)
  expect(rows(db)).toHaveLength(1)
  const raw = new Database(db, { readonly: true })
  expect(raw.prepare('SELECT sender FROM inbox WHERE thread = ?').pluck().all(keeperId)).toEqual([second!.sender])
  raw.close()
  const again = await open(db)
  try {
    expect(await again.join(keeperId)).toMatchObject({ status: 'done', result: { order: 2 } })
  } finally {
    await again.close()
  }
})

test('the CLI: the listing numbers them; bad input is one line with its code, and changes nothing', async () => {
  const { db, weave } = await threeDeadLetters()
  await weave.close()
  const dir = join(db, '..')
  const listed = await raiment(dir, 'dead-letters')
  expect(listed.code, listed.stderr).toBe(0)
  expect(listed.stdout.split('\n')[0]).toMatch(/^N\s+AT\s+SENDER\s+RECIPIENT\s+REASON\s+MESSAGE/)
  for (const [args, code] of [
    [['--drop', 'x'], 'RAIMENT_INVALID_ARGUMENT'],
    [['--resend', '1', '--drop', '2'], 'RAIMENT_INVALID_ARGUMENT'],
    [['--to', 'keeper'], 'RAIMENT_INVALID_ARGUMENT'],
    [['--resend', '999'], 'RAIMENT_NO_DEAD_LETTER'],
  ] as const) {
    const r = await raiment(dir, 'dead-letters', ...args)
    expect(r.code, r.stderr).not.toBe(0)
    expect(r.stderr.trimEnd().split('\n')).toHaveLength(1)
    expect(r.stderr).toMatch(new RegExp(`^raiment: ${code}: `))
  }
  expect(rows(db)).toHaveLength(3)
  // The UI's page numbers them too, and says how to send one again.
  const page = String(deadLettersPage(uiDeadLetters(new Journals([db]), 200), 200))
  for (const r of rows(db)) expect(page).toContain(`<td class="num">${r.n}</td>`)
  expect(page).toContain('raiment dead-letters --resend N')
  const dropped = await raiment(dir, 'dead-letters', '--drop', 'all')
  expect(dropped.stdout.trim()).toBe('dropped 3 dead letters')
}, 60_000)

test('--json lists every dead letter unless --limit says; the table, the last 20', async () => {
  const db = join(tempDir(), 'raiment.db')
  const weave = await open(db)
  for (let i = 0; i < 25; i++) weave.send('nobody', i)
  await weave.close()
  const dir = join(db, '..')
  const json = await raiment(dir, 'dead-letters', '--json')
  expect((JSON.parse(json.stdout) as unknown[]).length).toBe(25)
  expect(json.stderr).toBe('')
  const limited = await raiment(dir, 'dead-letters', '--json', '--limit', '5')
  expect((JSON.parse(limited.stdout) as unknown[]).length).toBe(5)
  const table = await raiment(dir, 'dead-letters')
  expect(table.stdout.trim().split('\n')).toHaveLength(21)
  expect(table.stderr).toContain('the last 20 of 25 dead letters')
}, 60_000)

test('a journal whose dead letters were numbered the old way keeps them, numbered for good from now on', async () => {
  const { db, weave } = await threeDeadLetters()
  await weave.close()
  // As an older Raiment left it: no AUTOINCREMENT, and no later tables (send_keys, successions), three schema versions back.
  const raw = new Database(db)
  raw.exec(`CREATE TABLE old (n INTEGER PRIMARY KEY, sender TEXT, recipient TEXT NOT NULL, body TEXT NOT NULL, reason TEXT NOT NULL, at INTEGER NOT NULL);
    INSERT INTO old SELECT * FROM dead_letters; DROP TABLE dead_letters; ALTER TABLE old RENAME TO dead_letters; DROP TABLE send_keys; DROP TABLE successions;`)
  raw.pragma(`user_version = ${SCHEMA_VERSION - 3}`)
  raw.close()
  const before = rows(db)
  const again = await open(db)
  try {
    expect(rows(db)).toEqual(before)
    await deadLetters({ db, ...quiet, drop: [String(before.at(-1)!.n)] })
    again.send('nobody', 'later')
    await again.committed()
    expect(rows(db).at(-1)!.n).toBeGreaterThan(before.at(-1)!.n)
  } finally {
    await again.close()
  }
})

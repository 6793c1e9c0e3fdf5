/**
 * `raiment show ID` of a running thread held in memory says what it waits for now, asked of the
 * weave running on the journal (control request 'waits'): a receive with its pattern and timeout,
 * a sleep, a join, a library call. A user trial: an order thread stuck in a receive whose pattern
 * matched none of its messages showed only `running`. With no weave, or one that does not answer,
 * `show` prints what it printed before, at once or within its short wait; a thread that is not
 * running is not asked about. Real SQLite journals in temp dirs, a real weave in this process.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { afterEach, expect, it } from 'vitest'
import { thread, Weave } from 'raiment'
import { JournalLock } from '../src/journal-owner.js'
import { parseWaits } from '../src/cli/show-waits.js'
import { askWeave } from '../src/cli/ask-weave.js'
import { openExisting } from '../src/cli/common.js'
import { cliOut } from './support/cli-in-process.js'
import { stepLib } from './support/step-lib.js'
import { tempDir } from './support/tmp.js'
import { until } from './support/until.js'

declare module 'raiment' {
  interface Libraries {
    sw: {
      step(name: string): Promise<string>
      /** Never answers: holds a thread in a library call until its weave closes. */
      gate(): Promise<never>
    }
  }
}

const order = thread({
  uses: ['mailbox'],
  async does() {
    return this.mailbox.receive({ match: { kind: 'paid' }, timeout: 3_600_000 })
  },
})

const nap = thread({
  uses: ['clock'],
  async does() {
    await this.clock.sleep(3_600_000)
  },
})

const stuck = thread({
  uses: ['sw'],
  async does() {
    await this.sw.gate()
  },
})

const parent = thread({
  uses: ['threads'],
  async does() {
    return this.threads.join(await this.threads.spawn('stuck'))
  },
})

const quick = thread({
  uses: [],
  async does() {
    return 1
  },
})

const open: Weave[] = []
afterEach(async () => {
  for (const w of open.splice(0)) await w.close()
})

async function weaveIn(db: string): Promise<Weave> {
  const weave = await Weave.open({ db, threads: { order, nap, stuck, parent, quick }, libraries: { sw: stepLib().lib }, ioLibs: false, dumps: false, durability: 'memory', passivateAfter: false })
  open.push(weave)
  return weave
}

/** Waits until thread `id` has a record of a call to `call` (the one its wait follows): the wait starts as its outcome is released. */
async function recorded(weave: Weave, id: string, call: string): Promise<void> {
  const has = weave.journal.db.prepare("SELECT 1 FROM journal WHERE thread = ? AND key LIKE ? || ':%'")
  await until(`${id}'s ${call}`, () => has.get(id, call) !== undefined)
}

type Shown = { thread: { status: string }; mailbox: number; waiting: Record<string, unknown> | null }

/** `show --json`, read. */
async function shownJson(db: string, id: string): Promise<Shown> {
  return JSON.parse(await cliOut(['show', id, '--db', db, '--json'])) as Shown
}

const ISO = '\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z'

it('a thread in a receive with a pattern and a timeout: show says which message it waits for, until when, since when', async () => {
  const db = join(tempDir(), 'w.db')
  const weave = await weaveIn(db)
  const id = weave.spawn('order')
  weave.send(id, { kind: 'noop' })
  await recorded(weave, id, 'mailbox.now')
  const text = await cliOut(['show', id, '--db', db])
  expect(text).toMatch(new RegExp(`^${id}  order  running, waiting for a message matching \\{"kind":"paid"\\}, until ${ISO} \\(since ${ISO}\\)  created`))
  expect(text).toContain('mailbox: 1 message waiting, not received yet')
  const json = await shownJson(db, id)
  expect(json.waiting).toMatchObject({ mailbox: true, match: { kind: 'paid' }, joins: null, calls: [] })
  // The deadline is its mailbox.now's answer plus the timeout; the take started a moment after.
  const left = Date.parse(json.waiting!['until'] as string) - Date.parse(json.waiting!['since'] as string)
  expect(left).toBeLessThanOrEqual(3_600_000)
  expect(left).toBeGreaterThan(3_590_000)
}, 30_000)

it('a thread in a sleep: show says until when it sleeps', async () => {
  const db = join(tempDir(), 'w.db')
  const weave = await weaveIn(db)
  const id = weave.spawn('nap')
  await recorded(weave, id, 'clock.now')
  expect(await cliOut(['show', id, '--db', db])).toMatch(new RegExp(`^${id}  nap  running, sleeping until ${ISO} \\(since ${ISO}\\)  created`))
  expect((await shownJson(db, id)).waiting).toMatchObject({ mailbox: false, joins: null, calls: [] })
}, 30_000)

it('a thread joining another: show names the thread it waits for; that one, in a library call, says which and since when', async () => {
  const db = join(tempDir(), 'w.db')
  const weave = await weaveIn(db)
  const id = weave.spawn('parent')
  await recorded(weave, id, 'threads.spawn')
  const child = weave.journal.threads({ type: 'stuck' })[0]!.id
  expect(await cliOut(['show', id, '--db', db])).toMatch(new RegExp(`^${id}  parent  running, waiting for the end of ${child} \\(since ${ISO}\\)  created`))
  expect((await shownJson(db, id)).waiting).toMatchObject({ mailbox: false, joins: child, until: null, calls: [] })
  await until(`${child} in its gate`, () => weave.journal.thread(child)?.status === 'running')
  const inCall = await shownJson(db, child)
  expect(inCall.waiting).toMatchObject({ calls: [{ call: 'sw.gate', since: expect.stringMatching(new RegExp(ISO)) as unknown }] })
  expect(await cliOut(['show', child, '--db', db])).toMatch(new RegExp(`^${child}  stuck  running, in a call to sw.gate since ${ISO}  created`))
}, 30_000)

it('no weave running: show prints the status as before, and asks nothing (the journal is left byte for byte)', async () => {
  const db = join(tempDir(), 'w.db')
  const weave = await weaveIn(db)
  const id = weave.spawn('order')
  await recorded(weave, id, 'mailbox.now')
  await weave.close()
  open.length = 0
  // Nothing asked, so nothing written: the journal's files are as they were, byte for byte.
  const files = (): string[] => readdirSync(dirname(db)).sort().map((f) => `${f} ${readFileSync(join(dirname(db), f)).toString('base64')}`)
  const before = files()
  const text = await cliOut(['show', id, '--db', db])
  expect(text).toMatch(new RegExp(`^${id}  order  running  created`))
  expect((await shownJson(db, id)).waiting).toBeNull()
  expect(files()).toEqual(before)
}, 30_000)

it('a weave that does not answer (its lock held, nothing polling): show prints the status as before within its short wait, its question withdrawn', async () => {
  const db = join(tempDir(), 'w.db')
  const weave = await weaveIn(db)
  const id = weave.spawn('order')
  await recorded(weave, id, 'mailbox.now')
  await weave.close()
  open.length = 0
  const lock = JournalLock.take(db)
  try {
    const text = await cliOut(['show', id, '--db', db])
    expect(text).toMatch(new RegExp(`^${id}  order  running  created`))
    expect((await shownJson(db, id)).waiting).toBeNull()
  } finally {
    lock.release()
  }
  const again = await weaveIn(db)
  expect(again.journal.db.prepare("SELECT count(*) FROM control WHERE kind = 'waits'").pluck().get()).toBe(0)
}, 30_000)

it('a thread that ended: show asks the running weave nothing', async () => {
  const db = join(tempDir(), 'w.db')
  const weave = await weaveIn(db)
  const id = weave.spawn('quick')
  await weave.join(id)
  const json = await shownJson(db, id)
  expect(json.thread.status).toBe('done')
  expect(json.waiting).toBeNull()
  expect(weave.journal.db.prepare("SELECT count(*) FROM control WHERE kind = 'waits'").pluck().get()).toBe(0)
}, 30_000)

it("an older weave's answer to a kind it does not know is read as nothing to say", async () => {
  const db = join(tempDir(), 'w.db')
  const weave = await weaveIn(db)
  const id = weave.spawn('order')
  // A weave of before 'waits' answers it as it answers any kind it does not know.
  const asker = openExisting(db)
  try {
    const reply = await askWeave(asker, 'waits-of-a-later-raiment', id, null, true)
    expect(reply).toBe("unknown request 'waits-of-a-later-raiment'")
    expect(parseWaits(reply!)).toBeNull()
  } finally {
    asker.close()
  }
  expect(parseWaits('null')).toBeNull()
}, 30_000)

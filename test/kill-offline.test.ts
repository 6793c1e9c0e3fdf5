/**
 * `raiment kill` with no weave running records the kill at once (the thread never runs again),
 * and the next weave tells its parent and monitors and dead-letters its inbox, as a kill by a
 * running weave does (before, the parent was never told, so a supervisor never restarted it, and
 * its inbox stayed). Once: a weave opened again tells nobody twice. Real SQLite files, weaves
 * opened and closed in turn, the CLI's kill.
 */
import { join } from 'node:path'
import { expect, it } from 'vitest'
import { thread, TIMED_OUT, Weave } from 'raiment'
import { killThread } from '../src/cli/weave-commands.js'
import { tempDir } from './support/tmp.js'

const stubborn = thread({
  uses: ['mailbox'],
  async does() {
    return await this.mailbox.receive({ match: { never: true } })
  },
})

const parent = thread({
  uses: ['threads', 'mailbox'],
  async does() {
    await this.threads.spawn('stubborn')
    return await this.mailbox.receive()
  },
})

const watcher = thread({
  uses: ['threads', 'mailbox'],
  async does(p: { of: string }) {
    await this.threads.monitor(p.of)
    return await this.mailbox.receive()
  },
})

/** Takes its first message, and a second if one comes within 300 ms. */
const twice = thread({
  uses: ['mailbox'],
  async does() {
    const first = await this.mailbox.receive()
    const second = await this.mailbox.receive({ timeout: 300 })
    return [first, second === TIMED_OUT ? 'none' : second]
  },
})

const open = (file: string, pollMs = 10): Promise<Weave> =>
  Weave.open({ db: file, durability: 'memory', threads: { stubborn, parent, watcher, twice }, ioLibs: false, dumps: false, passivateAfter: false, pollMs })

const deadLetters = (w: Weave, id: string): unknown[] => w.journal.db.prepare('SELECT body FROM dead_letters WHERE recipient = ?').pluck().all(id)

it('a thread killed while no weave ran: its parent and monitor are told once, its inbox goes to the dead letters', async () => {
  const file = join(tempDir('raiment-kill-offline-'), 'w.db')
  const w1 = await open(file)
  const started: string[] = []
  const both = new Promise<void>((res) => w1.on('thread-start', (e) => started.push(e.id) === 2 && res()))
  const p = w1.spawn('parent')
  await both
  const child = started.find((id) => id !== p)!
  const m = w1.spawn('watcher', { of: child })
  w1.send(child, { x: 1 })
  await w1.committed()
  await w1.close()

  expect(await killThread(file, child)).toMatchObject({ killed: true })

  const w2 = await open(file)
  try {
    expect(await w2.join(p)).toMatchObject({ status: 'done', result: { exit: child, status: 'killed' } })
    expect(await w2.join(m)).toMatchObject({ status: 'done', result: { exit: child, status: 'killed' } })
    expect(deadLetters(w2, child)).toHaveLength(1)
  } finally {
    await w2.close()
  }
  const w3 = await open(file)
  try {
    await w3.committed()
    expect(w3.journal.db.prepare('SELECT count(*) FROM control WHERE done = 0').pluck().get()).toBe(0)
    expect(deadLetters(w3, child)).toHaveLength(1)
    expect(w3.journal.db.prepare('SELECT count(*) FROM dead_letters').pluck().get()).toBe(1)
  } finally {
    await w3.close()
  }
})

it('a recorded thread killed here while not running here is ended at once: a second kill and a message in that step find it ended', async () => {
  const w = await open(join(tempDir('raiment-kill-offline-'), 'w.db'), 60_000)
  try {
    const p = w.spawn('twice')
    // Recorded as the CLI records a spawn, not yet picked up (this weave polls once a minute).
    const c = w.journal.nextThreadId()
    w.journal.insertThread(c, 'stubborn', 'J{}', p, 'pending')
    await w.committed()
    expect(w.kill(c)).toBe(true)
    expect(w.kill(c)).toBe(false)
    expect(w.send(c, { late: true })).toMatchObject({ delivered: false })
    // One exit message, then nothing within the timeout.
    expect(await w.join(p)).toMatchObject({ status: 'done', result: [{ exit: c, status: 'killed' }, 'none'] })
    expect(deadLetters(w, c)).toHaveLength(1)
  } finally {
    await w.close()
  }
})

/**
 * A message a waiting receive took at once (no inbox row), whose thread stopped or was let go
 * before the take was recorded (the weft drops the outcome of a call answered after that): the
 * message goes back into the inbox under its number (src/inboxes.ts `#giveBack`). Killed, the
 * thread's inbox goes to the dead letters, this message with it; closed, the weave that opens the
 * journal next gives it to the resumed receive. (Before, it was nowhere: a `raiment send` and a
 * `raiment kill` answered in one poll told the sender "delivered" and lost it.) The same for a
 * message a receive took at once from the inbox, its thread killed by another thread before that
 * take was recorded (before, its row was deleted and it was nowhere). And a receive the thread
 * left pending when its function ended (not awaited): a message arriving in the step of the end
 * goes to the dead letters with the rest of its inbox (before, the leftover receive took it and
 * its outcome was dropped); one arriving as it continues as new reaches the new run (before,
 * its take was recorded in the record the switch dropped).
 * Real SQLite files, weaves opened and closed in turn.
 */
import { join } from 'node:path'
import { expect, it } from 'vitest'
import { callContext, thread, Weave } from 'raiment'
import { tempDir } from './support/tmp.js'
import { receiveOne } from './support/receive-one.js'

const listener = receiveOne

/**
 * Receives after one call: a message sent meanwhile is in its inbox, and taken at once. (The
 * call is not journal-only, so its outcome waits for its commit, as the killer's does.)
 */
const taker = thread({
  uses: ['threads', 'mailbox'],
  async does() {
    await this.threads.self()
    return await this.mailbox.receive()
  },
})

/** Kills `of` after one call: released in the same round as the taker's, it kills it right after its receive is made. */
const killer = thread({
  uses: ['threads'],
  async does(p: { of: string }) {
    await this.threads.self()
    return await this.threads.kill(p.of)
  },
})

/** Leaves a receive pending (not awaited) and ends after one more call. */
const leaver = thread({
  uses: ['threads', 'mailbox'],
  async does() {
    this.mailbox.receive().catch(() => {})
    await this.threads.self()
    return 'ended'
  },
})

/** Sends `to` a message after one call: released in the same round as the leaver's, in the step of its end. */
const sender = thread({
  uses: ['threads', 'mailbox'],
  async does(p: { to: string }) {
    await this.threads.self()
    return await this.mailbox.send(p.to, 'late')
  },
})

/** Round 0 leaves a receive pending, sends itself a message and continues as new; round 1 receives (a timeout fails it). */
const continuer = thread({
  uses: ['mailbox', 'threads'],
  async does(p: { round: number }) {
    if (p.round === 1) return await this.mailbox.receive({ timeout: 5_000 })
    this.mailbox.receive().catch(() => {})
    const me = await this.threads.self()
    // Not awaited: the leftover receive takes it in this step, and the function never sees it.
    this.mailbox.send(me, 'hi').catch(() => {})
    return this.threads.continueAsNew({ round: 1 })
  },
})

/** Spies on the abort hooks its calls register (each call answers at once). */
const hooked: string[] = []
const hooks = {
  async now(): Promise<number> {
    callContext().onAbort(() => hooked.push('aborted'))
    return Date.now()
  },
}

declare module 'raiment' {
  interface Libraries {
    hooks: typeof hooks
  }
}

/** Makes a call it does not await, and continues as new before its outcome is released (round 1 ends). */
const hookedContinuer = thread({
  uses: ['hooks', 'threads'],
  async does(p: { round: number }) {
    if (p.round === 1) return 'new run'
    this.hooks.now().catch(() => {})
    // Its outcome recorded (a few microtasks), not yet released (that waits for the commit).
    for (let i = 0; i < 5; i++) await Promise.resolve()
    return this.threads.continueAsNew({ round: 1 })
  },
})

const open = (file: string): Promise<Weave> =>
  Weave.open({ db: file, durability: 'memory', threads: { listener, taker, killer, leaver, sender, continuer, hookedContinuer }, libraries: { hooks }, ioLibs: false, dumps: false, passivateAfter: false })

/** A listener whose receive waits on its inbox. */
async function waiting(w: Weave): Promise<string> {
  const started = new Promise<void>((res) => w.once('thread-start', () => res()))
  const id = w.spawn('listener')
  await started
  await w.committed()
  return id
}

it('killed in the step that sent it: the message is a dead letter, not lost', async () => {
  const w = await open(join(tempDir('raiment-take-'), 'w.db'))
  try {
    const id = await waiting(w)
    expect(w.send(id, { x: 1 })).toEqual({ delivered: true, to: id })
    expect(w.kill(id)).toBe(true)
    expect(await w.join(id)).toMatchObject({ status: 'killed' })
    await w.committed()
    expect(w.journal.db.prepare('SELECT body FROM dead_letters WHERE recipient = ?').pluck().all(id)).toHaveLength(1)
    expect(w.journal.db.prepare('SELECT count(*) FROM inbox').pluck().get()).toBe(0)
  } finally {
    await w.close()
  }
})

it('closed in the step that sent it: the next weave gives it to the resumed receive', async () => {
  const file = join(tempDir('raiment-take-'), 'w.db')
  const w1 = await open(file)
  const id = await waiting(w1)
  expect(w1.send(id, { x: 2 })).toEqual({ delivered: true, to: id })
  await w1.close()
  const w2 = await open(file)
  try {
    expect(await w2.join(id)).toMatchObject({ status: 'done', result: { x: 2 } })
  } finally {
    await w2.close()
  }
})

it('a message a receive took at once from the inbox, its thread killed before the take was recorded, is a dead letter', async () => {
  const w = await open(join(tempDir('raiment-take-'), 'w.db'))
  try {
    const a = w.spawn('taker')
    w.send(a, { x: 3 })
    const b = w.spawn('killer', { of: a })
    expect(await w.join(b)).toMatchObject({ status: 'done', result: true })
    expect(await w.join(a)).toMatchObject({ status: 'killed' })
    await w.committed()
    // Killed before its take was recorded: the record holds no receive.
    expect(w.journal.db.prepare("SELECT count(*) FROM journal WHERE thread = ? AND key LIKE 'mailbox.take%'").pluck().get(a)).toBe(0)
    expect(w.journal.db.prepare('SELECT body FROM dead_letters WHERE recipient = ?').pluck().all(a)).toHaveLength(1)
    expect(w.journal.db.prepare('SELECT count(*) FROM inbox').pluck().get()).toBe(0)
  } finally {
    await w.close()
  }
})

it('a message a receive left pending at the end takes in the step of that end is a dead letter', async () => {
  const w = await open(join(tempDir('raiment-take-'), 'w.db'))
  try {
    const a = w.spawn('leaver')
    const b = w.spawn('sender', { to: a })
    expect(await w.join(a)).toMatchObject({ status: 'done', result: 'ended' })
    expect(await w.join(b)).toMatchObject({ status: 'done', result: { delivered: true } })
    await w.committed()
    expect(w.journal.db.prepare('SELECT body FROM dead_letters WHERE recipient = ?').pluck().all(a)).toHaveLength(1)
  } finally {
    await w.close()
  }
})

it('a message a receive left pending took as its thread continued as new reaches the new run', async () => {
  const w = await open(join(tempDir('raiment-take-'), 'w.db'))
  try {
    const id = w.spawn('continuer', { round: 0 })
    expect(await w.join(id)).toMatchObject({ status: 'done', result: 'hi' })
  } finally {
    await w.close()
  }
})

it("a library's abort hook does not run once its call has ended, the thread continuing as new", async () => {
  const w = await open(join(tempDir('raiment-take-'), 'w.db'))
  try {
    const id = w.spawn('hookedContinuer', { round: 0 })
    expect(await w.join(id)).toMatchObject({ status: 'done', result: 'new run' })
    expect(hooked).toEqual([])
  } finally {
    await w.close()
  }
})

/**
 * Early outcomes (src/weft-pending.ts): the outcome of a journal-only call (a mailbox take, a
 * send, a clock read) reaches its thread before its commit, so a thread that takes a message and
 * replies commits both at once; until that outcome is durable, the thread's calls of other
 * libraries wait. Real SQLite files.
 */
import { join } from 'node:path'
import { afterEach, expect, it } from 'vitest'
import { callContext, thread, TIMED_OUT, Weave } from 'raiment'
import { record, replay } from 'raiment/testing'
import { Journal } from '../src/journal.js'
import { describeRun, runChild, supportScript } from './support/child.js'
import { ping, pong } from './support/ping-pong.js'
import { tempDir } from './support/tmp.js'

let weave: Weave | null = null
afterEach(async () => {
  await weave?.close()
  weave = null
})

/** Whether the journal held its thread's take when `effect.probe` ran (the first answer is the one checked). */
const seen: boolean[] = []
let db: Weave['journal']['db'] | null = null
const effect = {
  async probe(thread: string): Promise<number> {
    // The batch is one synchronous transaction: a row any code can read here is committed.
    const takes = db!.prepare("SELECT count(*) FROM journal WHERE thread = ? AND key LIKE 'mailbox.take:%'").pluck().get(thread) as number
    seen.push(takes > 0)
    return takes
  },
}

declare module 'raiment' {
  interface Libraries {
    effect: typeof effect
    notify: typeof notify
    closer: typeof closer
  }
}

/** Takes one message, then calls a library that is not journal-only. */
const actor = thread({
  uses: ['mailbox', 'effect'],
  async does() {
    const m = await this.mailbox.receive<{ self: string }>()
    return await this.effect.probe(m.self)
  },
})

/** One of a ring: takes the token `laps` times, passing it on to `next` (the last lap's ends the ring). */
const member = thread({
  uses: ['mailbox'],
  async does(p: { laps: number }) {
    const next = await this.mailbox.receive<string>()
    for (let lap = 0; lap < p.laps; lap++) {
      const hop = await this.mailbox.receive<number>()
      await this.mailbox.send(next, hop + 1)
    }
  },
})

const open = async (durability: 'sync' | 'memory' | 'replicated' = 'sync'): Promise<Weave> => {
  weave = await Weave.open({ db: join(tempDir('raiment-early-'), 'w.db'), durability, threads: { ping, pong, actor, member }, libraries: { effect }, ioLibs: false, dumps: false })
  db = weave.journal.db
  return weave
}

it('threads that take messages and reply commit many of them at once: ping-pong in a few commits', async () => {
  const w = await open()
  const n = 200
  const to = w.spawn('pong', { n })
  const from = w.spawn('ping', { to, n })
  await w.committed()
  const epoch0 = w.journal.epoch
  expect(await w.join(from)).toMatchObject({ status: 'done', result: Array.from({ length: n }, (_, i) => i) })
  // Each send and take reaches its thread before its commit, up to 16 a thread a commit (its
  // send and its take: 8 round trips). Before, each message took two commits (the send's, the take's).
  const commits = w.journal.epoch - epoch0
  expect(commits).toBeGreaterThanOrEqual(n / 8)
  expect(commits).toBeLessThanOrEqual(n / 4)
})

it("a call of a library that is not journal-only waits until the thread's early take is durable", async () => {
  const w = await open()
  seen.length = 0
  const ids = [w.spawn('actor'), w.spawn('actor'), w.spawn('actor')]
  await w.committed()
  // All three wake in one turn, their takes in one batch: each probe must see its take committed.
  for (const id of ids) w.send(id, { self: id })
  for (const id of ids) expect(await w.join(id)).toMatchObject({ status: 'done', result: 1 })
  expect(seen).toEqual([true, true, true])
})

it('a resumed thread replays what it did on early outcomes to the same state, and goes on', async () => {
  const file = join(tempDir('raiment-early-'), 'w.db')
  const n = 30
  const first = await Weave.open({ db: file, threads: { ping, pong }, ioLibs: false, dumps: false })
  const to = first.spawn('pong', { n: 2 * n })
  const from = first.spawn('ping', { to, n })
  expect(await first.join(from)).toMatchObject({ status: 'done' })
  await first.close()
  // Started again: the pong replays its record (takes and replies recorded a batch at a time) and waits for the rest.
  weave = await Weave.open({ db: file, threads: { ping, pong }, ioLibs: false, dumps: false })
  const again = weave.spawn('ping', { to, n })
  expect(await weave.join(again)).toMatchObject({ status: 'done', result: Array.from({ length: n }, (_, i) => i) })
  expect(await weave.join(to)).toMatchObject({ status: 'done' })
})

it('a batch carries at most 1,024 early outcomes: a token passed round a ring gives way to the commit', async () => {
  const w = await open('memory')
  const size = 2_000
  const laps = 2
  const ids = Array.from({ length: size }, () => w.spawn('member', { laps }))
  ids.forEach((id, i) => w.send(id, ids[(i + 1) % size]))
  await w.committed()
  const epoch0 = w.journal.epoch
  w.send(ids[0]!, 0)
  for (const id of ids) expect(await w.join(id)).toMatchObject({ status: 'done' })
  // Each hop is a take and a send, two early outcomes: 512 hops a batch, where each thread's own
  // bound (16) would let the token go round the ring 8 times in one turn of the event loop.
  expect(w.journal.epoch - epoch0).toBeGreaterThanOrEqual((size * laps) / 512)
})

/**
 * A branch that only awaits (no call) runs beside journal-only calls: an early outcome goes once
 * the thread's microtasks have drained, as a replayed one does, so the log reads the same live
 * and replayed (released in the middle of the branch, it read otherwise, and the replay diverged).
 */
const mixer = thread({
  uses: ['clock', 'mailbox'],
  async does() {
    const log: string[] = []
    for (let round = 0; round < 3; round++) {
      const branch = (async () => {
        for (let i = 0; i < 4; i++) {
          await Promise.resolve()
          log.push(`b${i}`)
        }
      })()
      await this.clock.now()
      log.push('now')
      await branch
      await this.mailbox.send('nobody', log.join(','))
    }
    return log.join(',')
  },
})

it('an early outcome reaches its thread after its microtasks drain: the replay of the record reads the same', async () => {
  const live = await record(mixer, undefined, { name: 'mixer', ioLibs: false })
  expect(live.end.status).toBe('done')
  const again = await replay(mixer, live.dump, { ioLibs: false })
  expect(again.result).toBe(live.result)
  expect(String(live.result).split(',').slice(0, 5)).toEqual(['b0', 'b1', 'b2', 'b3', 'now'])
})

/** Round 0 takes a first message, leaves a receive pending that takes a second one already there, and continues as new; round 1 receives. */
const switcher = thread({
  uses: ['mailbox', 'threads'],
  async does(p: { round: number }) {
    if (p.round === 1) return await this.mailbox.receive({ timeout: 5_000 })
    await this.mailbox.receive()
    this.mailbox.receive().catch(() => {})
    return this.threads.continueAsNew({ round: 1 })
  },
})

it('a receive left pending as its thread continues as new is not handed its message early: the new run gets it', async () => {
  weave = await Weave.open({ db: join(tempDir('raiment-early-'), 'w.db'), threads: { switcher }, ioLibs: false, dumps: false })
  const id = weave.spawn('switcher', { round: 0 })
  await weave.committed()
  weave.send(id, 'first')
  weave.send(id, 'second')
  const end = await weave.join(id)
  expect(end).toMatchObject({ status: 'done', result: 'second' })
  expect((end as { result: unknown }).result).not.toBe(TIMED_OUT)
})

/** Takes a message, starts a call it does not await (not journal-only), and ends. */
let fired: string[] = []
/** The status of the thread's row each time the hook ran (its end not queued yet: 'running'). */
let firedWhile: string[] = []
const notify = {
  async hook(what: string): Promise<void> {
    fired.push(what)
    const t = weave?.journal.thread(callContext().threadId)
    if (t !== undefined) firedWhile.push(t.status)
  },
}
const firer = thread({
  uses: ['mailbox', 'notify'],
  async does() {
    const m = await this.mailbox.receive<string>()
    this.notify.hook(m).catch(() => {})
    return 'ended'
  },
})

it('a call held behind an early take is still made though the thread has ended: it starts as the thread ends', async () => {
  fired = []
  firedWhile = []
  weave = await Weave.open({ db: join(tempDir('raiment-early-'), 'w.db'), threads: { firer }, libraries: { notify }, ioLibs: false, dumps: false })
  const id = weave.spawn('firer')
  await weave.committed()
  weave.send(id, 'hello')
  expect(await weave.join(id)).toMatchObject({ status: 'done', result: 'ended' })
  await weave.committed()
  expect(fired).toEqual(['hello'])
  // Before its end was queued, so that what it records joins the end's batch.
  expect(firedWhile).toEqual(['running'])
})

/** Takes a message, starts a call it does not await (not journal-only), and continues as new, `rounds` times. */
const refirer = thread({
  uses: ['mailbox', 'notify', 'threads'],
  async does(p: { round: number; rounds: number }) {
    const m = await this.mailbox.receive<string>()
    this.notify.hook(m).catch(() => {})
    if (p.round + 1 === p.rounds) return 'ended'
    return this.threads.continueAsNew({ round: p.round + 1, rounds: p.rounds })
  },
})

it('a call held behind an early take is still made though the thread has continued as new', async () => {
  fired = []
  weave = await Weave.open({ db: join(tempDir('raiment-early-'), 'w.db'), threads: { refirer }, libraries: { notify }, ioLibs: false, dumps: false })
  const id = weave.spawn('refirer', { round: 0, rounds: 3 })
  await weave.committed()
  for (const m of ['a', 'b', 'c']) weave.send(id, m)
  expect(await weave.join(id)).toMatchObject({ status: 'done', result: 'ended' })
  await weave.committed()
  expect(fired).toEqual(['a', 'b', 'c'])
})

/** Asks the weave to close (once), from inside a thread's call (journal-only, so its outcome may go early too). */
let closing: Promise<void> | null = null
/** Told the first close, as the thread starts it. */
let closed: (close: Promise<void>) => void = () => {}
const closer = {
  async close(): Promise<string> {
    if (closing === null) closed((closing = weave!.close()))
    return 'closing'
  },
}
const lastWords = thread({
  uses: ['mailbox', 'notify', 'closer'],
  async does() {
    const m = await this.mailbox.receive<string>()
    this.notify.hook(m).catch(() => {})
    return await this.closer.close()
  },
})

it('a call held behind an early take is made once when the weave closes as the thread ends, the take not yet committed', async () => {
  fired = []
  closing = null
  // Resolves once that close is through (it adopts the close).
  const firstClose = new Promise<void>((resolve) => (closed = resolve))
  const db = join(tempDir('raiment-early-'), 'w.db')
  const libraries = { notify, closer: { default: closer, journalOnly: ['close'] } }
  weave = await Weave.open({ db, threads: { lastWords }, libraries, ioLibs: false, dumps: false })
  const id = weave.spawn('lastWords')
  await weave.committed()
  weave.send(id, 'hello')
  // The thread closes the weave in a call; the close holds it there (no call of it is made
  // after), commits what it recorded, and lets it go; the next weave resumes it.
  await firstClose
  weave = await Weave.open({ db, threads: { lastWords }, libraries, ioLibs: false, dumps: false })
  expect(await weave.join(id)).toMatchObject({ status: 'done', result: 'closing' })
  await weave.close()
  // Made once in all, in whichever run.
  expect(fired).toEqual(['hello'])
})

/** Takes a message, fires the hook without awaiting it (held behind the take), starts a stop that waits for calls in flight, and returns. */
const lastWordsHeld = thread({
  uses: ['mailbox', 'notify'],
  async does() {
    const m = await this.mailbox.receive<string>()
    this.notify.hook(m).catch(() => {})
    void weave!.close({ wait: 1_000 })
    return 'held'
  },
})

it('a call held behind an early take is still made when the thread ends while a stop holds it', async () => {
  fired = []
  const db = join(tempDir('raiment-early-'), 'w.db')
  const libraries = { notify }
  weave = await Weave.open({ db, threads: { lastWordsHeld }, libraries, ioLibs: false, dumps: false })
  const id = weave.spawn('lastWordsHeld')
  await weave.committed()
  weave.send(id, 'hello')
  const end = new Promise<unknown>((resolve) => weave!.on('thread-end', resolve))
  expect(await end).toMatchObject({ status: 'done' })
  await weave.close()
  // Its end is committed with the take: no run will make the hook again, so this one made it.
  weave = await Weave.open({ db, threads: { lastWordsHeld }, libraries, ioLibs: false, dumps: false })
  expect(weave.resumed).toBe(0)
  expect(fired).toEqual(['hello'])
})

it('a spawn made and not awaited as a thread ends on an early outcome is recorded with the end: a SIGKILL after the take commits loses neither', async () => {
  const dir = tempDir('raiment-early-')
  const child = supportScript('early-end-child.ts')
  const killed = await runChild(child, [dir], { env: { RAIMENT_CRASH_AT: 'after-commit:1' } })
  expect(killed.signal, describeRun(killed)).toBe('SIGKILL')
  const r = await runChild(child, [dir])
  expect(r.lines, describeRun(r)).toContain('all-done')
  const journal = new Journal(join(dir, 'weave.db'), { readonly: true })
  try {
    expect(journal.threads().map((t) => [t.type, t.status])).toEqual([
      ['parent', 'done'],
      ['child', 'done'],
    ])
  } finally {
    journal.close()
  }
})

/** Takes a message, kills itself without awaiting the kill (held behind the take), and returns. */
const selfKiller = thread({
  uses: ['mailbox', 'threads'],
  async does() {
    const me = await this.threads.self()
    await this.mailbox.receive()
    this.threads.kill(me).catch(() => {})
    return 'returned'
  },
})
const watcher = thread({
  uses: ['mailbox', 'threads'],
  async does() {
    const id = await this.threads.spawn('selfKiller')
    await this.threads.monitor(id)
    await this.mailbox.send(id, 'go')
    const first = await this.mailbox.receive()
    const second = await this.mailbox.receive({ timeout: 300 })
    return [first, second === TIMED_OUT ? 'none' : second]
  },
})

it('a thread that kills itself in a call held behind an early take as it returns ends once, killed, as without the early take', async () => {
  weave = await Weave.open({ db: join(tempDir('raiment-early-'), 'w.db'), threads: { selfKiller, watcher }, dumps: false })
  const ends: string[] = []
  weave.on('thread-end', (e: { type: string; status: string }) => ends.push(`${e.type}:${e.status}`))
  const end = await weave.join(weave.spawn('watcher'))
  expect(end.status).toBe('done')
  const [first, second] = (end as { result: [{ status: string }, unknown] }).result
  expect(first).toMatchObject({ status: 'killed' })
  expect(second).toBe('none')
  expect(ends).toEqual(['selfKiller:killed', 'watcher:done'])
  const killed = weave.journal.threads().find((t) => t.type === 'selfKiller')!
  expect(killed.status).toBe('killed')
})

it('a take recorded that the thread never saw as it ended goes to the dead letters, not lost', async () => {
  const leaves = thread({
    uses: ['mailbox'],
    async does() {
      this.mailbox.receive().catch(() => {})
      for (let i = 0; i < 5; i++) await Promise.resolve()
      return 'ended'
    },
  })
  weave = await Weave.open({ db: join(tempDir('raiment-early-'), 'w.db'), durability: 'sync', threads: { leaves }, ioLibs: false, dumps: false })
  const id = weave.spawn('leaves')
  weave.send(id, 'hello')
  expect(await weave.join(id)).toMatchObject({ status: 'done', result: 'ended' })
  await weave.committed()
  const db = weave.journal.db
  const takes = db.prepare("SELECT count(*) FROM journal WHERE thread = ? AND key LIKE 'mailbox.take:%'").pluck().get(id) as number
  const dead = db.prepare('SELECT body FROM dead_letters WHERE recipient = ?').pluck().all(id)
  // Taken before the end was recorded, or not: either way the message is in the dead letters.
  expect({ takes: takes <= 1, dead: dead.length }).toEqual({ takes: true, dead: 1 })
})

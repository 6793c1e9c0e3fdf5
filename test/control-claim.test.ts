/**
 * The weave claims a control request (`done` 3) in the transaction that reads it, before acting on
 * it, so an asker that gives up (`raiment spawn`, `fork`, `schedule`, `reload` withdraw their
 * request at their deadline) is never told "nothing was done" for what the weave does. Before,
 * the weave read the request, acted, and answered in the next commit: a withdrawal between went
 * through, and the spawn or fork was recorded all the same. A request claimed by a weave that
 * stopped before answering (nothing of it committed) is withdrawn only while no weave owns the
 * journal, and is taken again by the next weave otherwise.
 */
import { join } from 'node:path'
import { expect, it, vi } from 'vitest'
import { thread, Weave } from 'raiment'
import { askWeave } from '../src/cli/ask-weave.js'
import { ControlTable, TOLD_KEPT_MS, withdraw } from '../src/control-table.js'
import { encodeValue } from '../src/encoding.js'
import { Journal } from '../src/journal.js'
import { tempDir } from './support/tmp.js'

const quick = thread({
  uses: ['clock'],
  async does() {
    return await this.clock.now()
  },
})

const ask = (asker: Journal, kind: string, thread: string | null, arg: string | null): number =>
  Number(asker.db.prepare('INSERT INTO control (kind, thread, arg) VALUES (?, ?, ?)').run(kind, thread, arg).lastInsertRowid)
const done = (asker: Journal, n: number): unknown => asker.db.prepare('SELECT done FROM control WHERE n = ?').pluck().get(n)

/** A new journal, as its weave has it (and its control table) and as an asker does. */
function opened(): { file: string; journal: Journal; asker: Journal; control: ControlTable } {
  const file = join(tempDir('raiment-claim-'), 'w.db')
  const journal = new Journal(file, { durability: 'memory' })
  return { file, journal, asker: new Journal(file, { own: false }), control: new ControlTable(journal) }
}

it('a request taken is not withdrawn while its weave runs; once that weave stopped, it is, and the next weave does not act on it', () => {
  const { file, journal, asker, control } = opened()
  try {
    const a = ask(asker, 'kill', 'x/1', null)
    expect(withdraw(asker, a)).toBe(true)
    const b = ask(asker, 'kill', 'x/2', null)
    expect(control.take().map((r) => [r.n, r.done])).toEqual([[b, 0]])
    expect(done(asker, b)).toBe(3)
    expect(withdraw(asker, b)).toBe(false)
    // Still the weave's to answer (a weave after a crash between claim and answer takes it again).
    expect(control.take().map((r) => [r.n, r.done])).toEqual([[b, 3]])
    journal.close()
    expect(withdraw(asker, b)).toBe(true)
    const next = new Journal(file, { durability: 'memory' })
    try {
      expect(new ControlTable(next).take()).toEqual([])
    } finally {
      next.close()
    }
  } finally {
    asker.close()
    journal.close()
  }
})

it('an asker giving up at the instant the weave acts on its spawn is not told it withdrew it: the spawn is answered', async () => {
  const file = join(tempDir('raiment-claim-'), 'w.db')
  const w = await Weave.open({ db: file, durability: 'memory', threads: { quick }, ioLibs: false, dumps: false, passivateAfter: false, pollMs: 10 })
  const asker = new Journal(file, { own: false })
  try {
    const id = asker.nextThreadId(1)
    const n = ask(asker, 'spawn', id, JSON.stringify({ type: 'quick', params: encodeValue(null) }))
    // The asker's deadline falls at the instant the weave spawns, before that spawn commits.
    const spawn = w.spawn.bind(w)
    const withdrawn = new Promise<boolean>((res) => {
      w.spawn = ((...args: Parameters<Weave['spawn']>) => {
        res(withdraw(asker, n))
        return spawn(...args)
      }) as Weave['spawn']
    })
    expect(await withdrawn).toBe(false)
    expect(await w.join(id)).toMatchObject({ status: 'done' })
    await w.committed()
    await w.committed()
    expect(done(asker, n)).toBe(1)
  } finally {
    asker.close()
    await w.close()
  }
})

it('an asker whose request the weave took and never answers gives up with RAIMENT_ANSWER_PENDING, not "nothing was done"', async () => {
  const file = join(tempDir('raiment-claim-'), 'w.db')
  const journal = new Journal(file, { durability: 'memory' })
  const asker = new Journal(file, { own: false })
  try {
    const asked = askWeave(asker, 'spawn', 'x/9', '{}', true, { claimedMs: 200 })
    // The weave takes it (a reload that never ends, a weave stuck after taking it).
    expect(new ControlTable(journal).take()).toHaveLength(1)
    await expect(asked).rejects.toMatchObject({ code: 'RAIMENT_ANSWER_PENDING', message: expect.stringContaining('it may still act on it') as unknown })
    expect(done(asker, Number(asker.db.prepare('SELECT max(n) FROM control').pluck().get()))).toBe(3)
  } finally {
    asker.close()
    journal.close()
  }
}, 30_000)

it('a told answer is deleted a minute after it was told (its asker has read it by then): the table does not keep every request', async () => {
  vi.useFakeTimers({ toFake: ['Date'] })
  const { file, journal, asker, control } = opened()
  try {
    const a = ask(asker, 'kill', 'x/1', null)
    control.take()
    control.reply(a, 'already ended')
    await journal.committed()
    await journal.committed()
    expect(done(asker, a)).toBe(1)
    // Not yet: its asker may still be reading it.
    vi.setSystemTime(Date.now() + TOLD_KEPT_MS - 1_000)
    const b = ask(asker, 'kill', 'x/2', null)
    expect(control.take().map((r) => r.n)).toEqual([b])
    expect(done(asker, a)).toBe(1)
    vi.setSystemTime(Date.now() + 1_000)
    control.take()
    expect(done(asker, a)).toBeUndefined()
    // A weave opening the journal gives the answers told before it as long from then.
    control.reply(b, 'already ended')
    await journal.committed()
    await journal.committed()
    journal.close()
    const next = new Journal(file, { durability: 'memory' })
    try {
      const again = new ControlTable(next)
      vi.setSystemTime(Date.now() + TOLD_KEPT_MS)
      const c = ask(asker, 'kill', 'x/3', null)
      again.take()
      // b, told before this weave opened, goes a minute after the open; c, the newest row, stays
      // (its number, a rowid, is not given again).
      expect(asker.db.prepare('SELECT n FROM control').pluck().all()).toEqual([c])
    } finally {
      next.close()
    }
  } finally {
    vi.useRealTimers()
    asker.close()
    journal.close()
  }
})

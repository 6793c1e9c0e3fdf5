/**
 * How `raiment ui` reads a journal (src/ui/data.ts): each read is one snapshot, even while the
 * weave commits and moves journal_tail into journal_main between two of its statements.
 */
import { describe, expect, it } from 'vitest'
import { existsSync, readdirSync, readFileSync, symlinkSync } from 'node:fs'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { encodeArgs, encodeValue } from '../src/encoding.js'
import { Journal } from '../src/journal.js'
import { thread, Weave } from 'raiment'
import { callIdOfRow } from '../src/call-context.js'
import { Journals, threadPage } from '../src/ui/data.js'
import { threadDetail } from '../src/ui/thread-data.js'
import { PausingJournal } from './support/pausing-journal.js'
import { tempDir } from './support/tmp.js'

/** A journal owned as a weave owns one (WAL mode), committing as a weave's group commit does. */
function owned(file: string): { owner: Journal; add: (seqs: number[]) => void } {
  const owner = new Journal(file, { durability: 'memory' })
  owner.insertThread('t/1', 'stepper', encodeValue({}), null, 'running')
  owner.flushNow()
  const add = (seqs: number[]): void => {
    for (const seq of seqs) owner.addEntry('t/1', seq, `jt.step:${encodeArgs([seq])}`, 0, 1, encodeValue(seq), Date.now(), 0, () => {})
    owner.flushNow()
  }
  return { owner, add }
}

const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, i) => from + i)


class PausingJournals extends Journals {
  between: (() => void) | null = null
  protected override open(i: number): Journal {
    const j = new PausingJournal(this.files[i]!, { readonly: true })
    j.between = () => this.between?.()
    return j
  }
}

declare module 'raiment' {
  interface Libraries {
    uiStep: { step(i: number): Promise<number>; hang(): Promise<never> }
  }
}

/** Steps, continues as new twice, then steps three times and waits for ever. */
const looper = thread({
  uses: ['uiStep', 'threads'],
  async does(p: { run: number }): Promise<never> {
    await this.uiStep.step(p.run)
    if (p.run < 2) return this.threads.continueAsNew({ run: p.run + 1 })
    for (let i = 0; i < 2; i++) await this.uiStep.step(i)
    return this.uiStep.hang()
  },
})

describe('a read of the UI', () => {
  it('is one snapshot: a commit of the weave between two of its statements is not in it', () => {
    const file = join(tempDir(), 'snap.db')
    const { owner, add } = owned(file)
    try {
      add(range(0, 3))
      const count = (j: Journal): number => j.db.prepare('SELECT count(*) FROM journal WHERE thread = ?').pluck().get('t/1') as number
      const seen = new Journals([file]).read(0, (j) => {
        const first = count(j)
        add(range(3, 11))
        return [first, count(j)]
      })
      expect(seen).toEqual([3, 3])
      expect(new Journals([file]).read(0, count)).toBe(11)
    } finally {
      owner.close()
    }
  })

  it("shows a running thread's page whole while the weave moves its tail into journal_main", () => {
    const file = join(tempDir(), 'tail.db')
    const { owner, add } = owned(file)
    try {
      // Three entries of one thread in a commit: into journal_tail.
      add(range(0, 3))
      expect(owner.db.prepare('SELECT count(*) FROM journal_tail').pluck().get()).toBe(3)
      let next = 3
      const js = new PausingJournals([file])
      // Each time the page reads the thread's row, the weave commits: two entries (into the tail)
      // when the tail holds none, else a batch of eight (straight into journal_main, the tail
      // moved there first). Before, the page read journal_main, then the row (a commit moved the
      // tail), then journal_tail: the newest calls were on neither, or none at all.
      js.between = () => {
        const inTail = owner.db.prepare('SELECT count(*) FROM journal_tail').pluck().get() as number
        const n = inTail > 0 ? 8 : 2
        add(range(next, next + n))
        next += n
      }
      const d = threadDetail(js, 't/1', 0)!
      js.between = null
      expect(d.calls.map((c) => c.seq)).toEqual(range(0, d.total))
      expect(d.extent).toBe(d.total)
      expect(d.total).toBeGreaterThan(0)
    } finally {
      owner.close()
    }
  })

  it("counts a running thread's calls in the threads list as its page does: one past its last seq", async () => {
    const file = join(tempDir(), 'count.db')
    const { owner, add } = owned(file)
    try {
      // A record with a gap (an entry a replay let go of): seqs 0, 1, 2, 4.
      add(range(0, 5))
      owner.dropEntry('t/1', 3)
      owner.flushNow()
      const js = new Journals([file])
      const listed = threadPage(js, {}, undefined, 50).rows.find((r) => r.id === 't/1')!
      expect(listed.calls).toBe(5)
      expect(threadDetail(js, 't/1', 0)!.total).toBe(5)
    } finally {
      owner.close()
    }
    // A thread that continued as new: its current run's calls (seq from 0 again).
    let hanging!: () => void
    const hung = new Promise<void>((resolve) => (hanging = resolve))
    const db = join(tempDir(), 'looper.db')
    const uiStep = {
      async step(i: number) {
        return i
      },
      hang(): Promise<never> {
        hanging()
        return new Promise<never>(() => {})
      },
    }
    const weave = await Weave.open({ db, durability: 'memory', threads: { looper }, libraries: { uiStep }, ioLibs: false, dumps: false, config: { logLevel: 'silent' } })
    try {
      const id = weave.spawn('looper', { run: 0 })
      await hung
      // Its last step's entry may still be queued (an early outcome): commit it, between two turns.
      await new Promise<void>((resolve) => setImmediate(resolve))
      weave.journal.flushNow()
      const js = new Journals([db])
      const listed = threadPage(js, {}, undefined, 50).rows.find((r) => r.id === id)!
      expect(listed.calls).toBe(3)
      expect(threadDetail(js, id, 0)!.total).toBe(3)
    } finally {
      await weave.close()
    }
  })

  it('keeps the copy in memory of a WAL-mode journal with no -wal until the file changes', () => {
    const dir = tempDir()
    const file = join(dir, 'wal.db')
    const { owner, add } = owned(file)
    add(range(0, 3))
    owner.close()
    // Left in WAL mode with no -wal (as a Raiment before owner locks left one): SQLite removes
    // the -wal at the last close, and the header still says WAL.
    const raw = new Database(file)
    raw.pragma('journal_mode = WAL')
    raw.close()
    expect([...readFileSync(file).subarray(18, 20)]).toEqual([2, 2])
    expect(existsSync(`${file}-wal`)).toBe(false)
    const files = readdirSync(dir).sort()
    const js = new Journals([file])
    const first = js.read(0, (j) => j)
    expect(first.db.memory).toBe(true)
    expect(js.read(0, (j) => j)).toBe(first)
    expect(js.read(0, (j) => j.entries('t/1').length)).toBe(3)
    // Another program writes to it: the next read copies it again, and the old copy goes.
    const writer = new Database(file)
    writer.prepare("INSERT INTO threads (id, type, params, parent, status, created) VALUES ('t/2', 'stepper', ?, NULL, 'running', 1)").run(encodeValue({}))
    writer.close()
    expect(existsSync(`${file}-wal`)).toBe(false)
    const second = js.read(0, (j) => j)
    expect(second).not.toBe(first)
    expect(first.db.open).toBe(false)
    expect(js.read(0, (j) => j.thread('t/2')?.status)).toBe('running')
    js.close()
    expect(second.db.open).toBe(false)
    expect(readdirSync(dir).sort()).toEqual(files)
  })
})

describe('the attempts of retried calls off the page', () => {
  it('are matched to their outcomes in the rest of the record, looking only at entries that can be theirs', () => {
    const file = join(tempDir('raiment-ui-'), 'r.db')
    const j = new Journal(file)
    const db = j.db
    const key = (i: number): string => `fetch.get:${encodeArgs([`https://example.com/${i}`])}`
    const t0 = 1_000_000_000_000
    db.transaction(() => {
      db.prepare("INSERT INTO threads (id, type, params, status, created) VALUES ('t1', 'poller', ?, 'running', 0)").run(encodeValue({}, 'params'))
      const ins = db.prepare('INSERT INTO journal_main (thread, seq, key, ord, ok, outcome, started, duration) VALUES (?, ?, ?, 0, 1, ?, ?, 1)')
      for (let i = 0; i < 30_000; i++) ins.run('t1', i, key(i), encodeValue(i, 'x'), t0 + i * 1000)
      const attempt = db.prepare("INSERT INTO retry_attempts (call, n, thread, name, error, started, ended, due) VALUES (?, 1, 't1', 'fetch.get', ?, ?, ?, ?)")
      const error = encodeValue({ name: 'Error', message: '503', fields: {} }, 'error')
      // Entries 5 and 28,000 (more calls of the method apart than a page looks at at once) were
      // retried, then answered; another call waits for its next attempt.
      for (const i of [5, 28_000]) attempt.run(callIdOfRow({ id: 't1' }, key(i), 0), error, t0 + i * 1000, t0 + i * 1000 + 1, t0 + i * 1000 + 500)
      attempt.run('t1:waiting', error, t0 + 29_999_000, t0 + 29_999_001, 9e12)
    })()
    j.close()
    const js = new Journals([file])
    try {
      // A page past both: their attempts are matched to them all the same; the waiting call is not.
      const d = threadDetail(js, 't1', 29_990)!
      expect(d.unanswered.map((u) => u.callId)).toEqual(['t1:waiting'])
      expect(threadDetail(js, 't1', 0)!.calls[5]!.attempts?.map((a) => a.n)).toEqual([1])
    } finally {
      js.close()
    }
  })
})

describe('a WAL-mode journal with no -wal, given by a symbolic link', () => {
  it("is read again once a writer commits: its -wal is looked for beside the link's target", () => {
    const dir = tempDir('raiment-ui-')
    const real = join(dir, 'real.db')
    new Journal(real).close()
    const d = new Database(real)
    d.pragma('journal_mode = WAL')
    d.close()
    const link = join(dir, 'link.db')
    symlinkSync(real, link)
    const js = new Journals([link])
    const meta = (): unknown => js.read(0, (j) => j.meta('x') ?? null)
    try {
      expect(meta()).toBeNull()
      const w = new Database(real)
      try {
        w.prepare("INSERT INTO meta (k, v) VALUES ('x', 'written')").run()
        expect(meta()).toBe('written')
      } finally {
        w.close()
      }
    } finally {
      js.close()
    }
  })
})

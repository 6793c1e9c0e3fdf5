/**
 * Fork: a new thread replays another's record up to an entry, with outcomes replaced, then runs
 * live. The original's record is untouched; the fork's live calls carry call ids of its own; a
 * SIGKILL during the forked run loses nothing (the fork resumes). Bad edits are refused, in one
 * line with a code from the command, before anything is written. raiment/testing's replay takes
 * the same edits.
 */
import Database from 'better-sqlite3'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { InvalidArgument, thread, Weave } from 'raiment'
import { replay } from 'raiment/testing'
import { makeDump } from '../src/dump.js'
import { describeRun, runChild, supportScript } from './support/child.js'
import { raiment } from './support/raiment-process.js'
import { tempDir } from './support/tmp.js'

const CHILD = supportScript('fork-child.ts')

/** A thread's row and entries, as SQLite holds them. */
function recordOf(db: string, id: string): unknown {
  const raw = new Database(db, { readonly: true })
  try {
    return { row: raw.prepare('SELECT * FROM threads WHERE id = ?').get(id), entries: raw.prepare('SELECT * FROM journal WHERE thread = ? ORDER BY seq').all(id) }
  } finally {
    raw.close()
  }
}

declare module 'raiment' {
  interface Libraries {
    inv: { count(item: string): Promise<number>; take(item: string, n: number): Promise<string> }
    forkProbe: { at(): Promise<number> }
  }
}

/** Counts while `forkProbe.at` runs: its answer comes in a later turn, after the count's entry is queued. */
const countAlongside = thread({
  uses: ['inv', 'forkProbe'],
  async does(p: { item: string }) {
    const [n, at] = await Promise.all([this.inv.count(p.item), this.forkProbe.at()])
    return { n, at }
  },
})

const takeAll = thread({
  uses: ['inv'],
  async does(p: { item: string }) {
    const n = await this.inv.count(p.item)
    const a = await this.inv.take(p.item, n)
    return { n, a }
  },
})

function inv() {
  const ids: string[] = []
  return {
    ids,
    lib: {
      async count() {
        return 2
      },
      async take(item: string, n: number) {
        return `${item} x${n}`
      },
    },
  }
}

describe('fork', () => {
  it('weave.fork: replays up to --at with --set applied, then live; the original untouched', async () => {
    const db = join(tempDir(), 'f.db')
    const { lib } = inv()
    const weave = await Weave.open({ db, threads: { takeAll }, libraries: { inv: lib }, ioLibs: false, durability: 'memory', dumps: false })
    try {
      const orig = weave.spawn('takeAll', { item: 'hat' })
      expect(await weave.join(orig)).toMatchObject({ status: 'done', result: { n: 2, a: 'hat x2' } })
      const before = recordOf(db, orig)
      const f = weave.fork(orig, { at: 1, set: { 0: 7 } })
      expect(await weave.join(f)).toMatchObject({ status: 'done', result: { n: 7, a: 'hat x7' } })
      // The whole record, unedited: the fork replays all of it and ends as the original did.
      const whole = weave.fork(orig)
      expect(await weave.join(whole)).toMatchObject({ status: 'done', result: { n: 2, a: 'hat x2' } })
      await weave.committed()
      expect(recordOf(db, orig)).toEqual(before)
      expect(makeDump(weave.journal, f).entries.map((e) => [e.seq, e.call, e.value])).toEqual([[0, 'inv.count', 7], [1, 'inv.take', 'hat x7']])

      // Bad edits: refused before anything is written.
      const threads = weave.journal.threads().length
      expect(() => weave.fork(orig, { set: { 5: 1 } })).toThrow(/has no entry seq 5; its entries are seq 0 to 1/)
      expect(() => weave.fork(orig, { at: 1, set: { 1: 1 } })).toThrow(/^set 1: entry seq 1 of .* is not replayed .*; set only entries before at$/)
      expect(() => weave.fork(orig, { at: 9 })).toThrow(InvalidArgument)
      expect(() => weave.fork(orig, { set: { 0: () => 1 } })).toThrow(/cannot be recorded/)
      expect(weave.journal.threads().length).toBe(threads)
    } finally {
      await weave.close()
    }
  })

  it("a fork asking for its own id (threads.self(), recorded) is told its own, not the original's; a --set of it still wins", async () => {
    const whoAmI = thread({
      uses: ['threads', 'inv'],
      async does() {
        const me = await this.threads.self()
        return { me, n: await this.inv.count('x') }
      },
    })
    const db = join(tempDir(), 'f.db')
    const weave = await Weave.open({ db, threads: { whoAmI }, libraries: { inv: inv().lib }, ioLibs: false, durability: 'memory', dumps: false })
    try {
      const orig = weave.spawn('whoAmI')
      expect(await weave.join(orig)).toMatchObject({ status: 'done', result: { me: orig, n: 2 } })
      const before = recordOf(db, orig)
      const f = weave.fork(orig)
      expect(await weave.join(f)).toMatchObject({ status: 'done', result: { me: f, n: 2 } })
      const g = weave.fork(orig, { set: { 0: 'someone' } })
      expect(await weave.join(g)).toMatchObject({ status: 'done', result: { me: 'someone' } })
      await weave.committed()
      expect(recordOf(db, orig)).toEqual(before)
    } finally {
      await weave.close()
    }
  })

  it('an --at that cuts a receive with a predicate between its peeks and its take is refused, naming where the receive starts', async () => {
    const choosy = thread({
      uses: ['mailbox'],
      async does() {
        return this.mailbox.receive({ match: (m: unknown) => m === 'b' })
      },
    })
    const db = join(tempDir(), 'f.db')
    const weave = await Weave.open({ db, threads: { choosy }, ioLibs: false, durability: 'memory', dumps: false })
    try {
      const orig = weave.spawn('choosy')
      weave.send(orig, 'a')
      weave.send(orig, 'b')
      expect(await weave.join(orig)).toMatchObject({ status: 'done', result: 'b' })
      const calls = makeDump(weave.journal, orig).entries.map((e) => [e.seq, e.call])
      expect(calls).toEqual([[0, 'mailbox.peek'], [1, 'mailbox.peek'], [2, 'mailbox.takeNumber']])
      const threads = weave.journal.threads().length
      expect(() => weave.fork(orig, { at: 2 })).toThrow(/^at 2 cuts a receive of \S+ in two: entry seq 2 takes the message its receive chose by peeking at seq 0; give at 0 \(the receive made again, live\) or at 3 \(after it\)$/)
      expect(weave.journal.threads().length).toBe(threads)
      // At its start, the receive is made again, live, from the fork's own mailbox.
      const f = weave.fork(orig, { at: 0 })
      weave.send(f, 'b')
      expect(await weave.join(f)).toMatchObject({ status: 'done', result: 'b' })

      // A record that ends past a peek that found a message, not taken yet: by default the fork
      // makes the receive again from its first peek; an --at there is refused.
      const open = weave.spawn('choosy')
      weave.send(open, 'a')
      await expect.poll(() => weave.journal.entriesNow(open).length).toBe(1)
      expect(() => weave.fork(open, { at: 1 })).toThrow(/^at 1 cuts a receive of \S+ in two: its peek at seq 0 found a message it had not taken yet; give at 0/)
      const g = weave.fork(open)
      await weave.committed()
      expect(weave.journal.entriesNow(g)).toHaveLength(0)
      weave.send(g, 'b')
      expect(await weave.join(g)).toMatchObject({ status: 'done', result: 'b' })
    } finally {
      await weave.close()
    }
  })

  it('weave.fork reads entries queued for the next commit without flushing them: a fork from any context never splits a step', async () => {
    const db = join(tempDir(), 'q.db')
    let weave: Weave | null = null
    let seen: { fork: string; committed: number } | null = null
    const probe = {
      // In a turn before the group commit's: the count's entry is queued by then, not committed.
      at: () =>
        new Promise<number>((resolve) =>
          setImmediate(() => {
            if (seen === null) {
              const id = weave!.journal.db.prepare("SELECT id FROM threads WHERE type = 'countAlongside'").pluck().get() as string
              const fork = weave!.fork(id)
              const raw = new Database(db, { readonly: true })
              seen = { fork, committed: raw.prepare('SELECT count(*) FROM journal WHERE thread = ?').pluck().get(id) as number }
              raw.close()
            }
            resolve(1)
          }),
        ),
    }
    weave = await Weave.open({ db, threads: { countAlongside }, libraries: { inv: inv().lib, forkProbe: probe }, ioLibs: false, durability: 'memory', dumps: false })
    try {
      const orig = weave.spawn('countAlongside', { item: 'hat' })
      expect(await weave.join(orig)).toMatchObject({ status: 'done', result: { n: 2, at: 1 } })
      expect(seen).not.toBeNull()
      // Nothing of the original was committed by the fork; its record held the queued count.
      expect(seen!.committed).toBe(0)
      expect(await weave.join(seen!.fork)).toMatchObject({ status: 'done', result: { n: 2, at: 1 } })
      expect(makeDump(weave.journal, seen!.fork).entries.map((e) => e.call)).toEqual(['inv.count', 'forkProbe.at'])
    } finally {
      await weave.close()
    }
  })

  it("raiment/testing's replay takes the same edits", async () => {
    const { dump } = await (await import('raiment/testing')).record(takeAll, { item: 'hat' }, { libraries: { inv: inv().lib }, ioLibs: false, name: 'takeAll' })
    const run = await replay(takeAll, dump, { ioLibs: false, set: { 0: 3 }, strict: false })
    // What if count had answered 3: the thread asks to take 3, which the record does not hold.
    expect(run.divergence?.detail).toMatchObject({ kind: 'unexpected', index: 1, made: { key: 'inv.take:["hat",3]' } })
    const cut = await replay(takeAll, dump, { ioLibs: false, at: 1, strict: false })
    expect(cut.divergence?.detail).toMatchObject({ kind: 'beyond', index: 1 })
    await expect(replay(takeAll, dump, { ioLibs: false, set: { 4: 1 } })).rejects.toThrow(InvalidArgument)
  })

  it('a SIGKILL during the forked run: the fork resumes, with its own call ids; the original untouched', async () => {
    const dir = tempDir()
    const db = join(dir, 'weave.db')
    const first = await runChild(CHILD, [dir, 'record'])
    const orig = first.lines.find((l) => l.startsWith('original '))?.slice('original '.length)
    expect(orig, describeRun(first)).toBeDefined()
    expect(first.lines).toContain('end failed "out of stock: hat"')
    const before = recordOf(db, orig!)

    const forked = await runChild(CHILD, [dir, 'fork', orig!], { killWhen: (_l, lines) => lines.filter((l) => l.startsWith('ship ')).length === 3 })
    expect(forked.killed, describeRun(forked)).toBe(true)
    const forkId = forked.lines.find((l) => l.startsWith('fork '))!.slice('fork '.length)
    const shipped = forked.lines.filter((l) => l.startsWith('ship ')).map((l) => l.slice(5))
    expect(shipped.every((c) => c.startsWith(forkId + '@'))).toBe(true)

    const resumed = await runChild(CHILD, [dir, 'resume', forkId])
    expect(resumed.lines, describeRun(resumed)).toContain('resumed 1')
    expect(resumed.lines).toContain(`end done ${JSON.stringify({ stock: 10, parts: [0, 1, 2, 3, 4].map((i) => `shipped hat ${i}`) })}`)
    const again = resumed.lines.filter((l) => l.startsWith('ship ')).map((l) => l.slice(5))
    // The shipment in flight at the kill runs again with the same call id; the two before it are not made again.
    expect(again[0]).toBe(shipped[2])
    expect(again).toHaveLength(3)
    expect(recordOf(db, orig!)).toEqual(before)
  })

  it('the command: a --set of an entry that does not exist, or not JSON: one line with its code, nothing written', async () => {
    const dir = tempDir()
    await runChild(CHILD, [dir, 'record'])
    const db = join(dir, 'weave.db')
    const bytes = readFileSync(db)
    const id = new Database(db, { readonly: true }).prepare('SELECT id FROM threads').pluck().get() as string
    for (const [args, line] of [
      [['--set', '9=1'], /^raiment: RAIMENT_INVALID_ARGUMENT: --set 9: the record of .* has no entry seq 9; its entries are seq 0 to 0$/],
      [['--at', '5'], /^raiment: RAIMENT_INVALID_ARGUMENT: --at 5 is not an entry of the record of .* nor its end \(1\); its entries are seq 0 to 0$/],
      [['--set', '0={oops'], /^raiment: RAIMENT_INVALID_ARGUMENT: --set 0=…: the value is not valid JSON/],
    ] as const) {
      const out = await raiment(dir, 'fork', id, '--db', db, ...args)
      expect(out.code).toBe(1)
      expect(out.stderr.trim().split('\n')).toEqual([expect.stringMatching(line)])
    }
    expect(readFileSync(db).equals(bytes)).toBe(true)
  })
})

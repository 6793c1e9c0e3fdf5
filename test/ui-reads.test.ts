/**
 * How `raiment ui` reads a journal (src/ui/data.ts): each read is one snapshot, even while the
 * weave commits and moves journal_tail into journal_main between two of its statements.
 */
import { describe, expect, it } from 'vitest'
import { join } from 'node:path'
import { encodeArgs, encodeValue } from '../src/encoding.js'
import { Journal, type ThreadRow } from '../src/journal.js'
import { Journals } from '../src/ui/data.js'
import { threadDetail } from '../src/ui/thread-data.js'
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

/** A read-only journal that runs `between` each time a thread's row is read. */
class PausingJournal extends Journal {
  between: (() => void) | null = null
  override thread(id: string): ThreadRow | undefined {
    const row = super.thread(id)
    this.between?.()
    return row
  }
}

class PausingJournals extends Journals {
  between: (() => void) | null = null
  protected override open(i: number): Journal {
    const j = new PausingJournal(this.files[i]!, { readonly: true })
    j.between = () => this.between?.()
    return j
  }
}

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
})

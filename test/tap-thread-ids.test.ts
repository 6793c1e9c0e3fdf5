/**
 * A thread id the CLI reserves (its own `nextThreadId(1)`, in its own process, with no tap) for a
 * spawn it asks the running weave for reaches the weave's tap when the weave takes the request
 * (src/journal.ts `reservedThreadId`): the journal stream's counter passes it, so a journal rebuilt
 * from the stream (a takeover) never hands that number out again, which would collide with the
 * spawned thread's row. A real journal file, a second connection as the CLI's.
 */
import { join } from 'node:path'
import { expect, it } from 'vitest'
import { Journal, type JournalTap, type Write } from '../src/journal.js'
import { tempDir } from './support/tmp.js'

it('the counter a CLI spawn moved reaches the tap, and never goes back', () => {
  const file = join(tempDir('raiment-tap-ids-'), 'w.db')
  const weave = new Journal(file, { durability: 'memory' })
  const cli = new Journal(file, { own: false })
  try {
    const writes: Write[] = []
    const tap: JournalTap = { write: (_rseq, w) => void writes.push(...w), release: (run) => run() }
    weave.setTap(tap)
    const own = weave.nextThreadId()
    const counter = (): string[] => writes.filter(([sql, p]) => sql.includes('meta') && p[0] === 'next_thread').map(([, p]) => p[1] as string)
    const before = counter()
    const asked = cli.nextThreadId(1)
    const n = Number(asked.split('/')[1])
    expect(counter()).toEqual(before)
    weave.reservedThreadId(asked)
    expect(Number(counter().at(-1))).toBe(Number(weave.meta('next_thread')))
    expect(Number(weave.meta('next_thread'))).toBeGreaterThan(n)
    // An id below the counter leaves it where it is.
    weave.reservedThreadId(own)
    expect(Number(counter().at(-1))).toBeGreaterThan(n)
  } finally {
    cli.close()
    weave.close()
  }
})

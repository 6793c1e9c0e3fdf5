/**
 * Marks of the group commit (src/group-commit.ts `addMark`), which the outbox relay publishes by:
 * a value read after each commit reaches `released` only once the tap lets that batch go, in
 * commit order, and never while it holds it (under `replicated`, a batch the stream has not
 * confirmed; fenced, never). With a tap that holds batches and lets them go at random points, the
 * last outbox row handed over is always that of the last batch released, never of one held.
 * Also: `committed()` waits for the batches held before it, even with nothing queued; a control
 * answer is told to its asker only once its batch is released, and an asker still waiting at its
 * deadline takes an answer given and not yet told.
 * A real journal file; the tap is the test's (the replicator is tested against a broker elsewhere).
 *
 * Reproduce a failure with FC_SEED=<seed>.
 */
import fc from 'fast-check'
import { join } from 'node:path'
import { expect, it } from 'vitest'
import { askWeave } from '../src/cli/ask-weave.js'
import { ControlTable, withdraw } from '../src/control-table.js'
import { Journal, type Durability } from '../src/journal.js'
import { HoldingTap } from './support/holding-tap.js'
import { tempDir } from './support/tmp.js'

const seed = process.env['FC_SEED'] !== undefined ? Number(process.env['FC_SEED']) : Date.now() % 2 ** 31
console.log(`commit-marks: fast-check seed ${seed} (FC_SEED=${seed} to reproduce)`)

it('property: a mark is handed over once its batch is released, in order, never while held', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.oneof(fc.record({ rows: fc.integer({ min: 0, max: 3 }) }), fc.record({ letGo: fc.integer({ min: 0, max: 3 }) })), { maxLength: 30 }),
      async (steps) => {
        const journal = new Journal(join(tempDir('raiment-marks-'), 'w.db'), { durability: 'memory' })
        try {
          const insert = journal.db.prepare('INSERT INTO outbox (msg_id, dest, body, at) VALUES (?, ?, ?, ?)')
          const last = journal.db.prepare('SELECT coalesce(max(n), 0) FROM outbox').pluck()
          const tap = new HoldingTap()
          journal.setTap(tap)
          const got: number[] = []
          journal.addMark(() => last.get() as number, (n) => got.push(n))
          // The initial mark waits behind nothing: none is held yet.
          tap.letGo(tap.held.length)
          expect(got).toEqual([0])
          /** The last row of each batch committed, in commit order; and how many are released. */
          const committed: number[] = []
          let released = 0
          let rows = 0
          for (const step of steps) {
            if ('rows' in step) {
              if (step.rows === 0) continue
              for (let i = 0; i < step.rows; i++) journal.queue(insert, [`m${++rows}`, 'w2', '{}', 0])
              journal.flushNow()
              committed.push(rows)
            } else {
              const n = Math.min(step.letGo, tap.held.length)
              tap.letGo(n)
              released += n
            }
            // What was handed over is exactly the marks of the batches released, in order.
            expect(got).toEqual([0, ...committed.slice(0, released)])
          }
          // committed() with nothing queued waits for every batch held before it.
          let done = false
          const all = journal.committed().then(() => (done = true))
          await new Promise((res) => setImmediate(res))
          expect(done).toBe(false)
          tap.letGo(tap.held.length)
          await all
          expect(got).toEqual([0, ...committed])
        } finally {
          journal.close()
        }
      },
    ),
    { seed, numRuns: 60 },
  )
})

/** A weave's journal with a tap that holds its batches, and an asker's connection (the CLI's) beside it. */
async function withAsker(fn: (journal: Journal, asker: Journal, tap: HoldingTap) => void | Promise<void>, durability: Durability = 'memory'): Promise<void> {
  const file = join(tempDir('raiment-marks-'), 'w.db')
  const journal = new Journal(file, { durability })
  const asker = new Journal(file, { own: false })
  try {
    const tap = new HoldingTap()
    journal.setTap(tap)
    await fn(journal, asker, tap)
  } finally {
    asker.close()
    journal.close()
  }
}

it('a control answer is given (done 2) in the batch of what it answers, and told (done 1) once that batch is released', async () => {
  await withAsker((journal, asker, tap) => {
    const control = new ControlTable(journal)
    const ask = (): number => Number(asker.db.prepare("INSERT INTO control (kind, thread) VALUES ('kill', 'x/1')").run().lastInsertRowid)
    const done = (n: number): unknown => asker.db.prepare('SELECT done FROM control WHERE n = ?').pluck().get(n)
    const n = ask()
    expect(control.take().map((r) => r.n)).toEqual([n])
    control.reply(n, 'killed')
    journal.flushNow()
    // Committed here, held by the tap: the asker waits on (and can no longer withdraw it).
    expect(done(n)).toBe(2)
    expect(control.take()).toEqual([])
    expect(withdraw(asker, n)).toBe(false)
    tap.letGo(tap.held.length)
    journal.flushNow()
    expect(done(n)).toBe(1)
    // One a weave gave before it stopped: told at the next start, once what it found is released.
    const m = ask()
    control.reply(m, 'killed')
    journal.flushNow()
    control.release(control.answered())
    journal.flushNow()
    expect(done(m)).toBe(1)
  })
})

it('committed() asked for as the journal closes resolves (nothing more commits)', async () => {
  const journal = new Journal(join(tempDir('raiment-marks-'), 'w.db'), { durability: 'memory' })
  const asked: { late?: Promise<void> } = {}
  journal.queue(journal.db.prepare('SELECT 1'), [], () => {
    asked.late = journal.committed()
  })
  journal.close()
  expect(asked.late).toBeInstanceOf(Promise)
  await asked.late
})

it('an asker whose answer is given (done 2) but not told by its deadline takes that answer, without spinning', async () => {
  await withAsker(async (journal, asker) => {
    const control = new ControlTable(journal)
    const asked = askWeave(asker, 'kill', 'x/1', null, true)
    const n = asker.db.prepare('SELECT max(n) FROM control').pluck().get() as number
    control.reply(n, 'killed')
    journal.flushNow()
    // The tap never lets the batch go (a weave that stopped, or a stream that did not confirm).
    let ticks = 0
    const timer = setInterval(() => ticks++, 100)
    try {
      expect(await asked).toBe('killed')
    } finally {
      clearInterval(timer)
    }
    // Its waiting let the event loop run.
    expect(ticks).toBeGreaterThan(10)
  })
}, 30_000)

it('under durability replicated, an answer given and not told by the deadline is not taken for done: it is not in the stream yet', async () => {
  await withAsker(async (journal, asker) => {
    const control = new ControlTable(journal)
    const asked = askWeave(asker, 'kill', 'x/1', null, true)
    const n = asker.db.prepare('SELECT max(n) FROM control').pluck().get() as number
    control.take()
    control.reply(n, 'killed')
    journal.flushNow()
    await expect(asked).rejects.toMatchObject({ code: 'RAIMENT_ANSWER_NOT_REPLICATED', message: expect.stringContaining('"killed"') as unknown })
  }, 'replicated')
}, 30_000)

/**
 * Starts made durable one after another (W3 of bench:compare): each start is one commit, and a
 * thread's step and end ride on the commits of the starts that follow it, never on commits of
 * their own; a thread's result reaches its joiners only once its end is committed; and a SIGKILL
 * at any line of such a run loses no start that was reported durable, nor any result reported.
 * Reproduce a failure with FC_SEED=<seed>.
 */
import Database from 'better-sqlite3'
import fc from 'fast-check'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { Weave } from 'raiment'
import { decodeValue } from '../src/encoding.js'
import { describeRun, runChild, supportScript } from './support/child.js'
import { oneStep, stepsLibrary } from './support/starts-plan.js'
import { tempDir } from './support/tmp.js'

const seed = process.env['FC_SEED'] !== undefined ? Number(process.env['FC_SEED']) : Date.now() % 2 ** 31
const RUNS = 4
const COUNT = 60
console.log(`spawn-commits: fast-check seed ${seed}, ${RUNS} runs (FC_SEED=${seed} to reproduce)`)

const open = (dir: string): Promise<Weave> =>
  Weave.open({ db: join(dir, 'weave.db'), durability: 'sync', threads: { oneStep }, libraries: { steps: stepsLibrary }, ioLibs: false, dumps: false })

describe('starts made durable one after another', () => {
  it('take one commit per thread, and a result reaches its joiner only once the end is committed', async () => {
    const dir = tempDir()
    const weave = await open(dir)
    // A second connection sees only what is committed.
    const other = new Database(join(dir, 'weave.db'), { readonly: true })
    const status = other.prepare('SELECT status, outcome FROM threads WHERE id = ?')
    try {
      const n = 200
      const epoch0 = weave.journal.epoch
      const joins: Promise<void>[] = []
      for (let k = 0; k < n; k++) {
        const id = weave.spawn('oneStep', { k })
        await weave.committed()
        expect(status.get(id)).toMatchObject({ status: 'running' })
        joins.push(
          weave.join(id).then((end) => {
            expect(end).toMatchObject({ status: 'done', result: k })
            const row = status.get(id) as { status: string; outcome: string }
            expect(row.status).toBe('done')
            expect(decodeValue(row.outcome)).toBe(k)
          }),
        )
      }
      await Promise.all(joins)
      // One commit per start; the last thread's step and end, and the first's start, a few more.
      expect(weave.journal.epoch - epoch0).toBeLessThanOrEqual(n + 3)
    } finally {
      other.close()
      await weave.close()
    }
  })

  it(`lose nothing reported durable when the weave is SIGKILLed at any line (${RUNS} runs, seed ${seed})`, async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 2 * COUNT }), async (killAt) => {
        const dir = tempDir()
        const run = await runChild(supportScript('starts-child.ts'), [dir, String(COUNT)], { killWhen: (_l, lines) => lines.length >= killAt })
        if (!run.killed) expect(run.lines.at(-1), describeRun(run)).toBe('all-done')
        else expect(run.signal, describeRun(run)).toBe('SIGKILL')
        const started = new Map<string, number>()
        const joined = new Map<string, number>()
        for (const line of run.lines) {
          const [what, id, a, b] = line.split(' ')
          if (what === 'started') started.set(id!, Number(a))
          if (what === 'joined') {
            expect(a).toBe('done')
            joined.set(id!, Number(b))
          }
        }
        // What the child was told: a join of a start it had reported.
        for (const [id, k] of joined) expect(started.get(id)).toBe(k)
        // Before resuming: every start reported durable is recorded, every result reported is.
        const db = new Database(join(dir, 'weave.db'))
        const rows = new Map((db.prepare('SELECT id, status, outcome FROM threads').all() as Array<{ id: string; status: string; outcome: string | null }>).map((r) => [r.id, r]))
        db.close()
        for (const id of started.keys()) expect(rows.has(id), `start of ${id} reported durable, not recorded`).toBe(true)
        for (const [id, k] of joined) {
          expect(rows.get(id)?.status, `result of ${id} reported, end not recorded`).toBe('done')
          expect(decodeValue(rows.get(id)!.outcome!)).toBe(k)
        }
        // Resumed, every recorded thread ends with its own result.
        const weave = await open(dir)
        try {
          for (const id of rows.keys()) {
            const end = await weave.join(id)
            expect(end.status).toBe('done')
            const k = (decodeValue((weave.journal.thread(id)!).params) as { k: number }).k
            expect(end).toMatchObject({ result: k })
          }
        } finally {
          await weave.close()
        }
      }),
      { numRuns: RUNS, seed },
    )
  }, 120_000)
})

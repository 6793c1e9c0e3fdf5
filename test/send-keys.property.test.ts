/**
 * A property of keyed sends (src/send-keys.ts): whatever the interleaving of keyed sends, their
 * retries (by id or by name), unkeyed sends, commits and restarts of the weave, with sends made
 * through the weave (`weave.send`) while it runs and through `raiment send`'s path (this process
 * writing the journal, src/cli/messages.ts) while it does not, each receiver gets each key's
 * first send once, and everything it gets in the order first sent. fast-check generates the steps.
 *
 * Reproduce a failure with FC_SEED=<seed>.
 */
import { join } from 'node:path'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import type { Weave } from 'raiment'
import { sendMessage } from '../src/cli/messages.js'
import { openCollecting } from './support/send-key-plan.js'
import { tempDir } from './support/tmp.js'
import { until } from './support/until.js'

const RUNS = Number(process.env['FC_RUNS'] ?? 100)
const seed = process.env['FC_SEED'] !== undefined ? Number(process.env['FC_SEED']) : Date.now() % 2 ** 31
console.log(`send keys: fast-check seed ${seed}, ${RUNS} runs (FC_SEED=${seed} to reproduce)`)

/** A send to receiver `to` (0 or 1; 0 also by its name when `byName`) with key `key` (null: unkeyed). */
type Step = { send: { to: 0 | 1; byName: boolean; key: string | null } } | 'commit' | 'restart'

const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 8, arbitrary: fc.record({ send: fc.record({ to: fc.constantFrom<0 | 1>(0, 1), byName: fc.boolean(), key: fc.option(fc.constantFrom('k1', 'k2', 'k3', 'k4'), { freq: 6 }) }) }) },
  { weight: 1, arbitrary: fc.constantFrom<Step>('commit', 'restart') },
)

describe('keyed sends, any interleaving', () => {
  it(`each (receiver, key) once, in first-send order (${RUNS} runs, seed ${seed})`, async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 40 }), async (steps) => {
        const db = join(tempDir(), 'w.db')
        let weave: Weave | null = await openCollecting(db, { durability: 'batched' })
        const ids = [weave.spawn('collect', { name: 'n0' }), weave.spawn('collect')] as const
        const w0 = weave
        await until('the name n0', () => w0.journal.db.prepare("SELECT 1 FROM names WHERE name = 'n0'").get() !== undefined)
        const expected: unknown[][] = [[], []]
        const firsts = new Set<string>()
        for (const [i, s] of steps.entries()) {
          if (s === 'commit') {
            await weave?.committed()
            continue
          }
          if (s === 'restart') {
            // Closed: the next sends go through raiment send's path until the next restart opens it again.
            if (weave === null) weave = await openCollecting(db, { durability: 'batched' })
            else weave = (await weave.close(), null)
            continue
          }
          const { to, byName, key } = s.send
          const address = to === 0 && byName ? 'n0' : ids[to]
          const message = { i }
          const result = weave !== null ? weave.send(address, message, key === null ? {} : { key }) : (await sendMessage(db, address, message, 5_000, key ?? undefined)).result
          const first = key === null || !firsts.has(`${to}\n${key}`)
          if (key !== null) firsts.add(`${to}\n${key}`)
          if (first) expected[to]!.push(message)
          expect(result).toEqual(first ? { delivered: true, to: ids[to] } : { delivered: true, to: ids[to], duplicate: true })
        }
        weave ??= await openCollecting(db, { durability: 'batched' })
        try {
          for (const id of ids) weave.send(id, { stop: true })
          const got = await Promise.all(ids.map(async (id) => ((await weave.join(id)) as { result: unknown[] }).result))
          expect(got).toEqual(expected)
        } finally {
          await weave.close()
        }
      }),
      { numRuns: RUNS, seed },
    )
  }, 300_000)
})

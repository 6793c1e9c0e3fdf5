/**
 * The names of src/thread-registry.ts, kept compact (one map of holders, a reverse index of a
 * string per thread with one name, the released names as the difference of the unreleased ones):
 * after any sequence of gives, registers, unregisters, hand-overs and ends, in batches committed
 * and released by a tap at random points,
 * - `holder` is the last holder given (ahead of the commits), and `namesOf` its exact reverse;
 * - `names()` (what the heartbeat announces) is the names as of the last batch released, never
 *   of one committed and held;
 * - the names table is the names as of the last batch committed;
 * - a registry opened on the journal afterwards holds the same names.
 * A real journal file; the tap is the test's (as in commit-marks.property.test.ts).
 *
 * Reproduce a failure with FC_SEED=<seed>.
 */
import fc from 'fast-check'
import { join } from 'node:path'
import { expect, it } from 'vitest'
import { Journal } from '../src/journal.js'
import { NameTaken } from '../src/message-shapes.js'
import { ThreadRegistry } from '../src/thread-registry.js'
import { HoldingTap } from './support/holding-tap.js'
import { tempDir } from './support/tmp.js'

const seed = process.env['FC_SEED'] !== undefined ? Number(process.env['FC_SEED']) : Date.now() % 2 ** 31
console.log(`thread-registry: fast-check seed ${seed} (FC_SEED=${seed} to reproduce)`)

const NAMES = ['a', 'b', 'c', 'd', '__proto__']
const THREADS = ['t1', 't2', 't3']
const name = fc.constantFrom(...NAMES)
const thread = fc.constantFrom(...THREADS)
const step = fc.oneof(
  fc.record({ op: fc.constant('give' as const), name, thread }),
  fc.record({ op: fc.constant('register' as const), name, thread }),
  fc.record({ op: fc.constant('unregister' as const), name, thread }),
  fc.record({ op: fc.constant('handOver' as const), thread, to: thread }),
  fc.record({ op: fc.constant('ended' as const), thread, keepNames: fc.boolean() }),
  fc.record({ op: fc.constant('alive' as const), thread, on: fc.boolean() }),
  // Often: a name changed in several batches, some released and some held.
  { arbitrary: fc.record({ op: fc.constant('flush' as const) }), weight: 3 },
  { arbitrary: fc.record({ op: fc.constant('letGo' as const), n: fc.integer({ min: 0, max: 2 }) }), weight: 3 },
)

const sorted = (m: Map<string, string>): Array<[string, string]> => [...m].sort(([x], [y]) => (x < y ? -1 : 1))

it('property: holders, their reverse, the names released and the names table agree with a model', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(step, { maxLength: 40 }), async (steps) => {
      const file = join(tempDir('raiment-registry-'), 'w.db')
      const journal = new Journal(file, { durability: 'memory' })
      try {
        const tap = new HoldingTap()
        journal.setTap(tap)
        const alive = new Set<string>(THREADS)
        const registry = new ThreadRegistry(journal, (id) => alive.has(id), () => {})
        const table = journal.db.prepare('SELECT name, thread FROM names')
        /** The model: each name's holder now; the holders at each batch committed; how many are released. */
        const model = new Map<string, string>()
        const batches: Array<Map<string, string>> = []
        let released = 0
        for (const s of steps) {
          switch (s.op) {
            case 'give':
              registry.give(s.name, s.thread)
              model.set(s.name, s.thread)
              break
            case 'register': {
              const owner = model.get(s.name)
              if (owner !== undefined && owner !== s.thread && alive.has(owner)) {
                expect(() => registry.register(s.name, s.thread)).toThrow(NameTaken)
              } else {
                registry.register(s.name, s.thread)
                model.set(s.name, s.thread)
              }
              break
            }
            case 'unregister':
              expect(registry.unregister(s.name, s.thread)).toBe(model.get(s.name) === s.thread)
              if (model.get(s.name) === s.thread) model.delete(s.name)
              break
            case 'handOver': {
              const moved = [...model].filter(([, t]) => t === s.thread).map(([n]) => n)
              expect(registry.handOver(s.thread, s.to).sort()).toEqual(moved.sort())
              for (const n of moved) model.set(n, s.to)
              break
            }
            case 'ended':
              registry.ended(s.thread, s.keepNames)
              if (!s.keepNames) for (const [n, t] of [...model]) if (t === s.thread) model.delete(n)
              break
            case 'alive':
              if (s.on) alive.add(s.thread)
              else alive.delete(s.thread)
              break
            case 'flush': {
              const before = tap.held.length + released
              journal.flushNow()
              if (tap.held.length + released > before) batches.push(new Map(model))
              expect(sorted(new Map(table.raw().all() as Array<[string, string]>))).toEqual(sorted(batches.at(-1) ?? new Map()))
              break
            }
            case 'letGo': {
              const n = Math.min(s.n, tap.held.length)
              tap.letGo(n)
              released += n
              break
            }
          }
          for (const n of NAMES) expect(registry.holder(n)).toBe(model.get(n))
          for (const t of THREADS) {
            expect([...registry.namesOf(t)].sort()).toEqual([...model].filter(([, h]) => h === t).map(([n]) => n).sort())
          }
          const announced = registry.names()
          expect(Object.getPrototypeOf(announced)).toBe(Object.prototype)
          expect(sorted(new Map(Object.entries(announced)))).toEqual(sorted(released === 0 ? new Map() : batches[released - 1]!))
        }
        journal.flushNow()
        tap.letGo(tap.held.length)
        expect(sorted(new Map(Object.entries(registry.names())))).toEqual(sorted(model))
        const reopened = new ThreadRegistry(journal, () => true, () => {})
        for (const n of NAMES) expect(reopened.holder(n)).toBe(model.get(n))
        expect(sorted(new Map(Object.entries(reopened.names())))).toEqual(sorted(model))
      } finally {
        journal.close()
      }
    }),
    { seed, numRuns: 200 },
  )
})

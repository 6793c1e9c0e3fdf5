/**
 * The consistent-hash ring that places `spawn(..., { on: { key } })`: placement depends only on
 * the set of live weaves (not the order they were seen), a joining weave takes about 1/n of the
 * keys and only from the others, and a leaving weave hands on only its own keys.
 *
 * Reproduce a failure with FC_SEED=<seed>.
 */
import { fc, test } from '@fast-check/vitest'
import { expect } from 'vitest'
import { Ring } from '../src/amqp/ring.js'

const seed = process.env['FC_SEED'] !== undefined ? Number(process.env['FC_SEED']) : Date.now() % 2 ** 31
console.log(`amqp-ring: fast-check seed ${seed} (FC_SEED=${seed} to reproduce)`)
const params = { seed, numRuns: 30 }

const weaveIds = fc.uniqueArray(fc.stringMatching(/^[a-z0-9-]{1,12}$/), { minLength: 1, maxLength: 8 })
const KEYS = Array.from({ length: 2_000 }, (_, i) => `key-${i}`)

function placement(ring: Ring): string[] {
  return KEYS.map((k) => ring.owner(k)!)
}

test.prop([weaveIds, fc.nat()], params)('placement depends only on the set of live weaves', (ids, shift) => {
  const rotated = [...ids.slice(shift % ids.length), ...ids.slice(0, shift % ids.length)].reverse()
  expect(placement(new Ring(rotated))).toEqual(placement(new Ring(ids)))
  expect(placement(new Ring(ids)).every((owner) => ids.includes(owner))).toBe(true)
})

test.prop([weaveIds, fc.stringMatching(/^[A-Z]{1,6}$/)], params)('a joining weave takes about 1/n of the keys, all from others', (ids, joiner) => {
  const before = placement(new Ring(ids))
  const after = placement(new Ring([...ids, joiner]))
  const moved = KEYS.filter((_, i) => before[i] !== after[i]).length
  expect(KEYS.filter((_, i) => before[i] !== after[i] && after[i] !== joiner)).toEqual([])
  const share = 1 / (ids.length + 1)
  expect(moved / KEYS.length).toBeLessThan(share * 1.6 + 0.02)
})

test.prop([weaveIds.filter((ids) => ids.length >= 2), fc.nat()], params)('a leaving weave hands on only its own keys', (ids, pick) => {
  const leaver = ids[pick % ids.length]!
  const before = placement(new Ring(ids))
  const after = placement(new Ring(ids.filter((id) => id !== leaver)))
  const wrong = KEYS.filter((_, i) => (before[i] !== leaver ? after[i] !== before[i] : after[i] === leaver))
  expect(wrong).toEqual([])
})

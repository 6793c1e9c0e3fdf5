/**
 * The record body codec (src/replication/codec.ts): any writes SQLite takes come back exactly
 * (strings with any code units, lone surrogates included; every number, -0, NaN and ±Infinity
 * included; bigints; Buffers; null), a body of the older JSON format still decodes, and a body
 * cut short or of an unknown format is refused rather than misread.
 *
 * Reproduce a failure with FC_SEED=<seed> (printed below).
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import type { Write } from '../src/journal.js'
import { decodeWrites, encodeWrites } from '../src/replication/codec.js'

const seed = process.env['FC_SEED'] !== undefined ? Number(process.env['FC_SEED']) : Date.now() % 2 ** 31
console.log(`replication-codec: fast-check seed ${seed} (FC_SEED=${seed} to reproduce)`)

const param = fc.oneof(
  fc.constant(null),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ maxLength: 8 }),
  fc.integer(),
  fc.double(),
  fc.constantFrom(0, -0, 2 ** 31, -(2 ** 31), 2 ** 31 - 1, Number.MAX_SAFE_INTEGER, 1796397114726, NaN, Infinity, -Infinity),
  fc.bigInt({ min: -(2n ** 70n), max: 2n ** 70n }),
  fc.uint8Array({ maxLength: 20 }).map((a) => Buffer.from(a)),
)
const sql = fc.constantFrom('INSERT INTO a (x) VALUES (?)', 'UPDATE threads SET status = ? WHERE id = ?', 'DELETE FROM "ü" WHERE k = ?')
const writes = fc.array(fc.tuple(sql, fc.array(param, { maxLength: 9 })), { maxLength: 30 }) as fc.Arbitrary<Write[]>

/** What a write's parameters are, comparably (-0 and NaN as themselves; Buffers by their bytes). */
const same = (ws: readonly Write[]): unknown =>
  ws.map(([s, ps]) => [s, ps.map((v) => (Object.is(v, -0) ? '-0' : typeof v === 'number' && Number.isNaN(v) ? 'NaN' : Buffer.isBuffer(v) ? ['buffer', [...v]] : v))])

describe('record bodies', () => {
  it('decode to the writes they encode', () => {
    fc.assert(
      fc.property(writes, (ws) => {
        const back = decodeWrites(encodeWrites(ws))
        expect(same(back)).toEqual(same(ws))
        for (let i = 0; i < ws.length; i++) for (let j = 0; j < ws[i]![1].length; j++) expect(typeof back[i]![1][j]).toBe(typeof ws[i]![1][j])
      }),
      { seed, numRuns: 300 },
    )
  })

  it('are refused when cut short, and when of a format this version does not know', () => {
    fc.assert(
      fc.property(writes.filter((ws) => ws.length > 0), fc.nat(), (ws, at) => {
        const body = encodeWrites(ws)
        expect(() => decodeWrites(body.subarray(0, at % body.length))).toThrow()
      }),
      { seed, numRuns: 200 },
    )
    expect(() => decodeWrites(Buffer.from([9, 0, 0, 0]))).toThrow(/format 9/)
  })

  it('of the JSON format (streams written before the binary one) still decode', () => {
    const old = Buffer.from(JSON.stringify([['INSERT INTO a (x, y, z) VALUES (?, ?, ?)'], [[0, ['j/1', { $: 'n', v: '12345678901234567890' }, null]], [0, [1.5, { $: 'f', v: '-Infinity' }, { $: 'b', v: 'AQID' }]]]]))
    expect(same(decodeWrites(old))).toEqual(
      same([
        ['INSERT INTO a (x, y, z) VALUES (?, ?, ?)', ['j/1', 12345678901234567890n, null]],
        ['INSERT INTO a (x, y, z) VALUES (?, ?, ?)', [1.5, -Infinity, Buffer.from([1, 2, 3])]],
      ]),
    )
  })

  it('hold each distinct string once', () => {
    const key = 'noop.step:[494]'
    const ws: Write[] = Array.from({ length: 100 }, (_, i) => ['INSERT INTO journal_main (thread, key) VALUES (?, ?)', [`w/${i}`, key]])
    const body = encodeWrites(ws)
    expect(body.toString('latin1').split(key).length - 1).toBe(1)
    expect(body.length).toBeLessThan(JSON.stringify(ws).length / 3)
  })
})

/**
 * A value nested too deeply for the journal (superjson reads and writes by recursion) is refused
 * with UnrecordableValue (RAIMENT_UNRECORDABLE) saying so and what to do, and nothing is recorded;
 * never a RangeError without a code. Up to MAX_DEPTH levels it comes back as it went in.
 */
import { join } from 'node:path'
import { expect, test } from 'vitest'
import { thread, UnrecordableValue, Weave } from 'raiment'
import { decodeValue, encodeArgs, encodeValue, MAX_DEPTH } from '../src/encoding.js'
import { tempDir } from './support/tmp.js'

declare module 'raiment' {
  interface Libraries {
    deepApi: { get(): Promise<unknown> }
  }
}

/** `leaf` inside `depth` arrays. */
function nested(depth: number, leaf: unknown): unknown {
  let x = leaf
  for (let i = 0; i < depth; i++) x = [x]
  return x
}

function refusedDeep(f: () => unknown): UnrecordableValue {
  let err: unknown
  try {
    f()
  } catch (e) {
    err = e
  }
  expect(err).toBeInstanceOf(UnrecordableValue)
  const e = err as UnrecordableValue
  expect(e.code).toBe('RAIMENT_UNRECORDABLE')
  expect(e.message).toMatch(/is nested more than 1,000 levels deep .*Record it flatter/)
  expect(e.message.length).toBeLessThan(400)
  return e
}

test('spawn with params nested 5,000 and 20,000 deep is refused with UnrecordableValue, and nothing is recorded', async () => {
  const t = thread({ uses: [], async does(p: unknown) { return p } })
  const weave = await Weave.open({ db: join(tempDir('raiment-deep-'), 'w.db'), threads: { t }, ioLibs: false })
  try {
    for (const params of [{ v: nested(5000, new Date(0)) }, { v: nested(20_000, 1) }, { v: nested(5000, 1n) }]) {
      expect(refusedDeep(() => weave.spawn('t', params)).path).toMatch(/^params\.v\[0\]/)
    }
    expect(weave.journal.db.prepare('SELECT count(*) FROM threads').pluck().get()).toBe(0)
  } finally {
    await weave.close()
  }
})

test("a call's outcome nested too deeply fails the call with UnrecordableValue; the thread can go on", async () => {
  const t = thread({
    uses: ['deepApi'],
    async does() {
      try {
        await this.deepApi.get()
        return 'recorded'
      } catch (e) {
        return (e as UnrecordableValue).code
      }
    },
  })
  const weave = await Weave.open({ db: join(tempDir('raiment-deep-'), 'w.db'), threads: { t }, libraries: { deepApi: { get: async () => nested(20_000, new Map()) } }, ioLibs: false })
  try {
    const end = await weave.join(weave.spawn('t'))
    expect(end).toMatchObject({ status: 'done', result: 'RAIMENT_UNRECORDABLE' })
  } finally {
    await weave.close()
  }
})

test('as a value and as call arguments: refused past MAX_DEPTH, as it went in up to it', () => {
  expect(MAX_DEPTH).toBe(1000)
  refusedDeep(() => encodeValue(nested(MAX_DEPTH + 1, new Date(0)), 'the result'))
  refusedDeep(() => encodeArgs([nested(20_000, 1)]))
  refusedDeep(() => encodeArgs([nested(MAX_DEPTH + 1, new Date(0))]))
  const ok = nested(MAX_DEPTH, new Date(0))
  expect(decodeValue(encodeValue(ok))).toStrictEqual(ok)
})

/**
 * `patch.patched` past the end of the record of a thread that ended (src/replay-markers.ts): the
 * record's code ended without the marker, so it answers false (the old path), as it does where
 * the record still has calls after it: in a dump's replay (`raiment replay` makes the same) and
 * in `raiment check --ended`. The record of a thread that had not ended keeps the marker for its
 * new code: the replay stops there (unfinished), as it does at any call past such a record.
 */
import { expect, test } from 'vitest'
import { thread } from 'raiment'
import { record, replay } from 'raiment/testing'
import { checkThread } from '../src/check/replay-check.js'
import { dumpEntries, type Dump } from '../src/dump.js'
import { encodeValue } from '../src/encoding.js'
import { encodeError } from '../src/error-records.js'
import { replayParts } from '../src/libraries.js'

const v1 = thread({
  uses: ['log', 'patch'],
  async does(p: { n: number }) {
    await this.log.info('charging', { n: p.n })
    if (p.n < 0) throw Object.assign(new Error('negative'), { code: 'E_NEGATIVE' })
    return { charged: p.n }
  },
})

/** v1 with a change behind a marker, its last step. */
const v2 = thread({
  uses: ['log', 'patch'],
  async does(p: { n: number }) {
    await this.log.info('charging', { n: p.n })
    const cents = await this.patch.patched('report-cents')
    if (p.n < 0) throw Object.assign(new Error('negative'), { code: 'E_NEGATIVE' })
    return cents ? { charged: p.n, cents: p.n * 100 } : { charged: p.n }
  },
})

test('a marker as the last step answers false on the replay of a record that ended, done or failed', async () => {
  const done = await record(v1, { n: 7 }, { name: 'charge' })
  const run = await replay(v2, done.dump)
  expect(run.status).toBe('done')
  expect(run.result).toEqual({ charged: 7 })
  expect(run.calls.map((c) => c.call)).toEqual(['log.info', 'patch.patched'])

  const failed = await record(v1, { n: -1 }, { name: 'charge' })
  expect(failed.dump.thread.status).toBe('failed')
  const again = await replay(v2, failed.dump)
  expect(again.status).toBe('failed')
  expect(again.error).toMatchObject({ message: 'negative', code: 'E_NEGATIVE' })

  // Recorded by the new code, the marker is in the record: true.
  const fresh = await record(v2, { n: 7 }, { name: 'charge' })
  expect(fresh.result).toEqual({ charged: 7, cents: 700 })
  expect((await replay(v2, fresh.dump)).result).toEqual({ charged: 7, cents: 700 })
})

test('past the record of a thread that had not ended, the marker is where the replay stops', async () => {
  const { dump } = await record(v1, { n: 7 }, { name: 'charge' })
  const running: Dump = { ...dump, thread: { ...dump.thread, status: 'running', ended: null } }
  delete running.thread.result
  const run = await replay(v2, running)
  expect(run.status).toBe('unfinished')
  expect(run.next).toMatch(/^patch\.patched\("report-cents"\)/)
})

test('raiment check --ended: a done or failed record replays to its end under the new code, the marker on the old path', async () => {
  const parts = await replayParts('io-libs')
  for (const n of [7, -1]) {
    const { dump } = await record(v1, { n }, { name: 'charge' })
    const t = {
      id: dump.thread.id,
      type: 'charge',
      status: dump.thread.status,
      params: encodeValue(dump.thread.params),
      outcome: dump.thread.status === 'done' ? encodeValue(dump.thread.result) : encodeError(Object.assign(new Error('negative'), { code: 'E_NEGATIVE' })),
      entries: () => dumpEntries(dump),
    }
    const { verdict, markers } = await checkThread(v2, t, parts)
    expect(verdict).toMatchObject({ verdict: 'compatible', then: n > 0 ? 'done' : 'failed' })
    expect(markers).toEqual([{ change: 'report-cents', old: true }])
  }
})

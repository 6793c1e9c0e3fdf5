/**
 * Envelopes that come ahead of the one before them from their sender (src/amqp/resequence.ts), on
 * a real broker: weave b in this process takes rows a sender publishes by hand, with the headers a
 * relay gives them, in the order a broker that refused some publishes would deliver them.
 *
 * - Property: rows 1..N, cut into batches that arrive in any order and some twice, reach b's
 *   thread each once and in row order, and nothing stays parked.
 * - Unmarked (the row before it was confirmed when it was sent): taken at once from a sender not
 *   heard from before (a fresh journal), parked from one known (a redelivery).
 * - A row that never comes: those behind it wait `parking.ms`, then are taken, in order, with a line.
 * - A restart: what was parked is kept, and taken in order once the missing row comes.
 * - A row the broker returned (no such weave yet) is not the one before the next for that weave:
 *   once the weave joins, what is sent to it is taken at once.
 */
import amqp, { type ConfirmChannel } from 'amqplib'
import fc from 'fast-check'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { Weave } from 'raiment'
import { parking } from '../src/amqp/resequence.js'
import { Topology } from '../src/amqp/topology.js'
import { AMQP_URL, brokerUp, brokerTests, CI, freshNamespace, removeNamespace } from './support/broker.js'
import { linkedWeave } from './support/linked-weave.js'
import { resultOf as result, sink, source } from './support/streams.js'
import { tempDir } from './support/tmp.js'
import { until } from './support/until.js'

const types = { sink, source }

/**
 * Publishes rows of sender `src`, all for b's thread `to`, as a relay would: each `group` as one
 * AMQP message, with `pend` (the row before it not confirmed when it was sent) unless `confirmed`
 * says that row was.
 */
async function publishRows(ns: string, src: string, to: string, groups: number[][], confirmed: (g: number[]) => boolean = () => false): Promise<void> {
  const t = new Topology(ns)
  const conn = await amqp.connect(AMQP_URL, { noDelay: true })
  try {
    const ch: ConfirmChannel = await conn.createConfirmChannel()
    const env = (sn: number): string => JSON.stringify({ k: 'msg', from: null, to, body: `J${JSON.stringify({ i: sn - 1 })}` })
    const prev = (sn: number): number | null => (sn === 1 ? null : sn - 1)
    for (const g of groups) {
      const ids = g.map((sn) => `${src}-m${sn}`)
      const pend = confirmed(g) ? {} : { pend: 1 }
      if (g.length === 1) ch.publish(t.exchange, 'b', Buffer.from(env(g[0]!)), { persistent: true, messageId: ids[0]!, headers: { src, sn: g[0], prev: prev(g[0]!), ...pend } })
      else {
        const body = `{"k":"batch","ids":${JSON.stringify(ids)},"items":[${g.map(env).join(',')}]}`
        ch.publish(t.exchange, 'b', Buffer.from(body), { persistent: true, messageId: `batch:${ids[0]}`, headers: { src, sn: g, prev: g.map(prev), ...pend } })
      }
    }
    await ch.waitForConfirms()
  } finally {
    await conn.close()
  }
}

function parked(w: Weave): number {
  return w.journal.db.prepare('SELECT count(*) FROM parked').pluck().get() as number
}

/** Rows 1..n cut into consecutive batches (as a relay packs them), in an order a broker may deliver them, some twice. */
const schedules = fc
  .integer({ min: 2, max: 14 })
  .chain((n) =>
    fc.record({
      n: fc.constant(n),
      cuts: fc.uniqueArray(fc.integer({ min: 2, max: n }), { maxLength: n - 1 }),
      order: fc.array(fc.nat(), { minLength: n, maxLength: n }),
      again: fc.array(fc.nat(), { maxLength: 3 }),
      sure: fc.array(fc.boolean(), { minLength: n + 3, maxLength: n + 3 }),
    }),
  )
  .map(({ n, cuts, order, again, sure }) => {
    const starts = [1, ...cuts.sort((x, y) => x - y)]
    const batches = starts.map((s, i) => Array.from({ length: (starts[i + 1] ?? n + 1) - s }, (_, k) => s + k))
    // Shuffled by the keys drawn (a stable sort keeps equal keys in row order).
    const groups = batches.map((b, i) => ({ b, key: order[i]! })).sort((x, y) => x.key - y.key).map((x) => x.b)
    for (const a of again) groups.splice(a % (groups.length + 1), 0, [...batches[a % batches.length]!])
    // A group sent after the row before it was confirmed says so (no `pend`): it cannot come
    // ahead of that row, so only groups that come after it may (drawn).
    const seen = new Set<number>()
    const confirmed = new Set<number[]>()
    groups.forEach((g, i) => {
      if (g[0] === 1 || (seen.has(g[0]! - 1) && sure[i]!)) confirmed.add(g)
      for (const sn of g) seen.add(sn)
    })
    return { n, groups, confirmed: (g: number[]): boolean => confirmed.has(g) }
  })

describe.skipIf(!brokerUp && !CI)('envelopes ahead of the one before them from their sender', () => {
  const cleanups = brokerTests()
  const ms = parking.ms
  /** A fresh namespace, removed after the test, and its directory; `ids` as its weaves. */
  const namespace = (ids: string[]): { dir: string; ns: string } => {
    const ns = freshNamespace()
    cleanups.push(() => removeNamespace(ns, ids))
    return { dir: tempDir(), ns }
  }
  /** Weave b of a fresh namespace (its link logging to `log`), with a sink thread for `n` messages, committed. */
  const sinkOnB = async (n: number, log?: (line: string) => void): Promise<{ ns: string; b: Weave; to: string }> => {
    const { dir, ns } = namespace(['b'])
    const { weave: b } = await linkedWeave({ dir, ns, id: 'b', ...(log !== undefined ? { link: { log } } : {}), weave: { threads: types } }, cleanups)
    const to = b.spawn('sink', { n })
    await b.committed()
    return { ns, b, to }
  }
  beforeEach(() => {
    parking.ms = ms
  })
  afterEach(() => {
    parking.ms = ms
  })

  it('property: any order of delivery, with copies, gives each row once and in row order', async () => {
    const { dir, ns } = namespace(['b'])
    const { weave: b } = await linkedWeave({ dir, ns, id: 'b', weave: { threads: types } }, cleanups)
    let run = 0
    await fc.assert(
      fc.asyncProperty(schedules, async ({ n, groups, confirmed }) => {
        const to = b.spawn('sink', { n })
        await b.committed()
        await publishRows(ns, `x${++run}#0011223344556677`, to, groups, confirmed)
        expect(result(await b.join(to))).toEqual(Array.from({ length: n }, (_, i) => i))
        await until('no envelope parked', () => parked(b) === 0)
      }),
      { numRuns: 25 },
    )
  }, 120_000)

  it('takes at once a message whose predecessor was confirmed before it was sent, though this weave never had it (a fresh journal)', async () => {
    const { ns, b, to } = await sinkOnB(2)
    // Rows 1-4 went to an earlier journal of weave b; 5 and 6 come after them.
    await publishRows(ns, 'w#0123456789abcdef', to, [[5, 6]], () => true)
    expect(result(await b.join(to))).toEqual([4, 5])
    expect(parked(b)).toBe(0)
  }, 30_000)

  it('parks an unmarked message that comes ahead of its predecessor from a sender it knows (a redelivery)', async () => {
    const { ns, b, to } = await sinkOnB(3)
    const src = 'v#0123456789abcdef'
    // Row 2 was delivered to a connection of b's that died unseen; the broker gives it back later.
    await publishRows(ns, src, to, [[1], [3]], () => true)
    await until('row 3 parked', () => parked(b) === 1)
    await publishRows(ns, src, to, [[2]], () => true)
    expect(result(await b.join(to))).toEqual([0, 1, 2])
  }, 30_000)

  it('takes what waits for a row that never comes after parking.ms, in order, and says so', async () => {
    parking.ms = 300
    const lines: string[] = []
    const { ns, b, to } = await sinkOnB(3, (l) => lines.push(l))
    const src = 'y#8899aabbccddeeff'
    // Row 1 never comes; 4 comes first, so it is due first: the rows parked before it go first all the same.
    await publishRows(ns, src, to, [[4]])
    await until('one envelope parked', () => parked(b) === 1)
    await publishRows(ns, src, to, [[2, 3]])
    await until('three envelopes parked', () => parked(b) === 3)
    expect(result(await b.join(to))).toEqual([1, 2, 3])
    expect(lines.filter((l) => l.includes(`messages from ${src} waited 0.3 s`))).toHaveLength(1)
    await until('no envelope parked', () => parked(b) === 0)
  }, 60_000)

  it('keeps what is parked across a restart, and takes it in order once the missing row comes', async () => {
    const { dir, ns } = namespace(['b'])
    const open = (): ReturnType<typeof linkedWeave> => linkedWeave({ dir, ns, id: 'b', weave: { threads: types } }, cleanups)
    let b = await open()
    const to = b.weave.spawn('sink', { n: 4 })
    await b.weave.committed()
    const src = 'z#0123456789abcdef'
    await publishRows(ns, src, to, [[3, 4], [2]])
    await until('three envelopes parked', () => parked(b.weave) === 3)
    await b.close()
    b = await open()
    // A copy of a row parked changes nothing; then the missing row.
    await publishRows(ns, src, to, [[4], [1]])
    expect(result(await b.weave.join(to))).toEqual([0, 1, 2, 3])
    await until('no envelope parked', () => parked(b.weave) === 0)
  }, 60_000)

  it('does not make the next message for a weave wait for one the broker returned before it joined', async () => {
    const { dir, ns } = namespace(['a', 'd'])
    const { weave: a } = await linkedWeave({ dir, ns, id: 'a', weave: { threads: types } }, cleanups)
    // No weave d has joined: the broker returns the message, and a dead-letters it.
    result(await a.join(a.spawn('source', { to: 'd/none', n: 1, inFlight: 1 })))
    await until('the returned message dead-lettered', () => (a.journal.db.prepare('SELECT count(*) FROM dead_letters').pluck().get() as number) === 1)
    const { weave: d } = await linkedWeave({ dir, ns, id: 'd', weave: { threads: types } }, cleanups)
    const to = d.spawn('sink', { n: 1 })
    await d.committed()
    result(await a.join(a.spawn('source', { to, n: 1, inFlight: 1 })))
    // Taken well within parking.ms (90 s): it followed no row d never had.
    expect(result(await d.join(to))).toEqual([0])
    expect(parked(d)).toBe(0)
  }, 30_000)
})

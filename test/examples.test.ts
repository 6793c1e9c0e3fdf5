/**
 * The example threads of `threads/` (the ones the demo runs), each run to its end in a weave on
 * a temporary journal, and checked against what it promises: ping-pong by name, a worker pool
 * that loses and duplicates no job while its workers crash, and an order saga whose
 * compensations leave the shop's database as it was.
 */
import { describe, expect, it } from 'vitest'
import Database from 'better-sqlite3'
import { existsSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Weave, type ThreadEnd } from 'raiment'
import { replay } from 'raiment/testing'
import { makeDump } from '../src/dump.js'
import { loadThreadTypeNamed } from '../src/thread-types.js'
import { tempDir } from './support/tmp.js'

const THREADS = fileURLToPath(new URL('../threads', import.meta.url))

async function open(dir = tempDir(), extra: { alwaysReplay?: boolean } = {}): Promise<Weave> {
  return Weave.open({ db: join(dir, 'w.db'), threads: THREADS, ioLibs: false, durability: 'memory', dumps: false, config: { logLevel: 'silent' }, ...extra })
}

function result(end: ThreadEnd): unknown {
  expect(end.status, end.status === 'failed' ? end.error.message : '').toBe('done')
  return (end as Extract<ThreadEnd, { status: 'done' }>).result
}

/** Replays thread `id` from its journal alone (no library is called) and returns its result. */
async function replayed(weave: Weave, id: string): Promise<unknown> {
  const type = await loadThreadTypeNamed(THREADS, weave.journal.thread(id)!.type)
  const run = await replay(type, makeDump(weave.journal, id))
  expect(run.error, run.error?.message).toBeUndefined()
  return run.result
}

describe('ping-pong', () => {
  it('plays N rounds with a partner it reaches by name, frees the name, and replays from its record', async () => {
    const weave = await open()
    const id = weave.spawn('ping-pong', { rounds: 12 })
    const end = await weave.join(id)
    expect(result(end)).toEqual({ rounds: 12, pongs: 12, partner: { served: 12 } })
    const [partner] = weave.journal.threads({ type: 'ping-pong/pong' })
    expect(partner).toMatchObject({ parent: id, status: 'done' })
    expect(weave.messages.whereis('pong')).toBeNull()
    expect(await replayed(weave, id)).toEqual({ rounds: 12, pongs: 12, partner: { served: 12 } })
    await weave.close()
  })

  it('two games at once, under two names, do not cross', async () => {
    const weave = await open()
    const a = weave.spawn('ping-pong', { rounds: 5, name: 'left' })
    const b = weave.spawn('ping-pong', { rounds: 8, name: 'right' })
    const [ea, eb] = await Promise.all([weave.join(a), weave.join(b)])
    expect(result(ea)).toEqual({ rounds: 5, pongs: 5, partner: { served: 5 } })
    expect(result(eb)).toEqual({ rounds: 8, pongs: 8, partner: { served: 8 } })
    await weave.close()
  })

  it('a partner that cannot take its name ends the game with a clear error, not a thread waiting for ever', async () => {
    const weave = await open()
    const holder = weave.spawn('listener', { name: 'pong' })
    while (weave.messages.whereis('pong') === null) await weave.committed().then(() => new Promise((r) => setImmediate(r)))
    const end = await weave.join(weave.spawn('ping-pong', { rounds: 3 }))
    expect(end.status).toBe('failed')
    expect((end as Extract<ThreadEnd, { status: 'failed' }>).error.message).toMatch(
      /the partner 'pong' \(\S+\) ended while this thread waited for it to be ready: failed: the name 'pong' belongs to thread/,
    )
    weave.send('pong', 'bye')
    expect(result(await weave.join(holder))).toEqual({ received: 'bye' })
    await weave.close()
  })
})

describe('worker-pool', () => {
  it('does every job exactly once while every third job crashes its worker, which the supervisor restarts', async () => {
    const weave = await open()
    const id = weave.spawn('worker-pool', { jobs: 20, workers: 3, failEvery: 3, jobMs: 5 })
    const jobs = Array.from({ length: 20 }, (_, i) => i + 1)
    const expected = { jobs: 20, done: jobs, sum: jobs.reduce((s, n) => s + n * n, 0), crashes: 6, restarts: 6 }
    expect(result(await weave.join(id))).toEqual(expected)

    // The journal agrees: one supervisor under the pool, 3 + 6 workers under it, 6 of which
    // failed with WorkerCrashed, one on each multiple of 3; the 3 last ones were told to stop.
    await weave.committed()
    const [sup] = weave.journal.threads({ type: 'raiment/supervisor' })
    expect(sup).toMatchObject({ parent: id, status: 'done' })
    const workers = weave.journal.threads({ type: 'worker-pool/worker' })
    expect(workers).toHaveLength(9)
    expect(workers.every((w) => w.parent === sup!.id)).toBe(true)
    const crashed = workers.filter((w) => w.status === 'failed').map((w) => weave.join(w.id))
    const errors = (await Promise.all(crashed)).map((e) => (e as Extract<ThreadEnd, { status: 'failed' }>).error)
    expect(errors.map((e) => e.name)).toEqual(Array(6).fill('WorkerCrashed'))
    expect(errors.map((e) => (e as Error & { job: number }).job).sort((x, y) => x - y)).toEqual([3, 6, 9, 12, 15, 18])
    expect(workers.filter((w) => w.status === 'done')).toHaveLength(3)
    expect(weave.running).toBe(0)

    expect(await replayed(weave, id)).toEqual(expected)
    await weave.close()
  })

  it('with one worker that crashes on every job once, still loses no job', async () => {
    const weave = await open()
    const id = weave.spawn('worker-pool', { jobs: 6, workers: 1, failEvery: 1, jobMs: 0 })
    expect(result(await weave.join(id))).toMatchObject({ done: [1, 2, 3, 4, 5, 6], crashes: 6, restarts: 6 })
    await weave.close()
  })

  it('killing the pool ends its supervisor and its workers too', async () => {
    const weave = await open()
    const id = weave.spawn('worker-pool', { jobs: 1_000, workers: 2, failEvery: 1_000, jobMs: 1_000 })
    // Wait until both workers have started.
    const started: string[] = []
    await new Promise<void>((resolve) =>
      weave.on('thread-start', ({ type }) => {
        started.push(type)
        if (started.filter((t) => t === 'worker-pool/worker').length === 2) resolve()
      }),
    )
    weave.kill(id)
    expect(await weave.join(id)).toMatchObject({ status: 'killed' })
    const [sup] = weave.journal.threads({ type: 'raiment/supervisor' })
    expect(await weave.join(sup!.id)).toMatchObject({ status: 'failed', error: { code: 'RAIMENT_LINKED_EXIT' } })
    // A worker is killed by its supervisor, unless it noticed first that the dispatcher was gone
    // (its request for work was dead-lettered) and stopped.
    for (const w of weave.journal.threads({ type: 'worker-pool/worker' })) expect(['killed', 'done']).toContain((await weave.join(w.id)).status)
    expect(weave.running).toBe(0)
    await weave.close()
  })
})

describe('order-saga', () => {
  const open0 = { stock: { lamp: 10, desk: 3 }, funds: { ada: 10_000, grace: 50_000 } }

  interface Shop {
    stock: Record<string, number>
    balances: Record<string, number>
    payments: Array<{ order_id: string; cents: number }>
    shipments: string[]
  }

  function shop(file: string): Shop {
    const db = new Database(file, { readonly: true })
    try {
      const pairs = (sql: string) => Object.fromEntries((db.prepare(sql).raw(true).all() as Array<[string, number]>).map(([k, v]) => [k, v]))
      return {
        stock: pairs('SELECT item, qty FROM stock ORDER BY item'),
        balances: pairs('SELECT customer, balance FROM accounts ORDER BY customer'),
        payments: db.prepare('SELECT order_id, cents FROM payments ORDER BY n').all() as Shop['payments'],
        shipments: (db.prepare('SELECT order_id FROM shipments ORDER BY order_id').all() as Array<{ order_id: string }>).map((r) => r.order_id),
      }
    } finally {
      db.close()
    }
  }

  async function order(weave: Weave, params: Record<string, unknown>): Promise<{ id: string; result: unknown }> {
    const id = weave.spawn('order-saga', { open: open0, customer: 'ada', item: 'lamp', qty: 2, cents: 4_000, ...params })
    return { id, result: result(await weave.join(id)) }
  }

  it('a saga that succeeds reserves, charges and ships', async () => {
    const dir = tempDir()
    const db = join(dir, 'shop.db')
    const weave = await open(dir)
    const { id, result: r } = await order(weave, { db, order: 'A-1' })
    expect(r).toEqual({ order: 'A-1', status: 'completed', steps: ['reserve', 'charge', 'ship'] })
    expect(shop(db)).toEqual({
      stock: { desk: 3, lamp: 8 },
      balances: { ada: 6_000, grace: 50_000 },
      payments: [{ order_id: 'A-1', cents: 4_000 }],
      shipments: ['A-1'],
    })
    // The record alone replays it: the shop's database is not needed.
    rmSync(db)
    expect(await replayed(weave, id)).toEqual(r)
    expect(existsSync(db)).toBe(false)
    await weave.close()
  })

  it.each([
    ['reserve', [], 'StepFailed: the warehouse is offline'],
    ['charge', ['release'], 'StepFailed: the bank declined the card'],
    ['ship', ['refund', 'release'], 'StepFailed: the carrier refused the parcel'],
  ])('a saga that fails at %s undoes the steps before it, and leaves stock and payments as they were', async (failAt, undone, reason) => {
    const dir = tempDir()
    const db = join(dir, 'shop.db')
    const weave = await open(dir)
    await order(weave, { db, order: 'A-1' })
    const before = shop(db)
    const { id, result: r } = await order(weave, { db, order: 'A-2', failAt })
    expect(r).toEqual({ order: 'A-2', status: 'compensated', failedAt: failAt, reason, undone })
    const after = shop(db)
    expect(after.stock).toEqual(before.stock)
    expect(after.balances).toEqual(before.balances)
    expect(after.shipments).toEqual(before.shipments)
    // The ledger keeps the charge and its refund, which cancel out.
    const a2 = after.payments.filter((p) => p.order_id === 'A-2').map((p) => p.cents)
    expect(a2).toEqual(failAt === 'ship' ? [4_000, -4_000] : [])
    expect(after.payments.filter((p) => p.order_id !== 'A-2')).toEqual(before.payments)
    expect(await replayed(weave, id)).toEqual(r)
    await weave.close()
  })

  it('fails on its own when the stock or the balance is too low, or the order has shipped, and compensates', async () => {
    const dir = tempDir()
    const db = join(dir, 'shop.db')
    const weave = await open(dir)
    const initial = (await order(weave, { db, order: 'A-0', qty: 1, cents: 0 })).result
    expect(initial).toMatchObject({ status: 'completed' })
    const before = shop(db)
    const [tooMany, tooPoor, twice] = await Promise.all([
      order(weave, { db, order: 'B-1', item: 'desk', qty: 4 }),
      order(weave, { db, order: 'B-2', customer: 'ada', cents: 1_000_000 }),
      order(weave, { db, order: 'A-0', qty: 1, cents: 10 }),
    ])
    expect(tooMany.result).toEqual({ order: 'B-1', status: 'compensated', failedAt: 'reserve', reason: 'StepFailed: 4 × desk wanted, 3 in stock', undone: [] })
    expect(tooPoor.result).toEqual({ order: 'B-2', status: 'compensated', failedAt: 'charge', reason: 'StepFailed: ada cannot pay 1000000 cents', undone: ['release'] })
    expect(twice.result).toEqual({ order: 'A-0', status: 'compensated', failedAt: 'ship', reason: 'StepFailed: order A-0 has shipped already', undone: ['refund', 'release'] })
    const after = shop(db)
    expect(after.stock).toEqual(before.stock)
    expect(after.balances).toEqual(before.balances)
    expect(after.shipments).toEqual(before.shipments)
    await weave.close()
  })
})

describe('in always-replay mode (each thread re-run from its record after every outcome)', () => {
  it('every example gives the same result', async () => {
    const dir = tempDir()
    const weave = await open(dir, { alwaysReplay: true })
    const runs = [
      weave.spawn('ping-pong', { rounds: 4 }),
      weave.spawn('worker-pool', { jobs: 6, workers: 2, failEvery: 3, jobMs: 1 }),
      weave.spawn('order-saga', { db: join(dir, 'shop.db'), order: 'A-1', customer: 'ada', item: 'lamp', qty: 1, cents: 5, failAt: 'ship', open: { stock: { lamp: 1 }, funds: { ada: 5 } } }),
    ]
    const ends = await Promise.all(runs.map((id) => weave.join(id)))
    expect(ends.map(result)).toEqual([
      { rounds: 4, pongs: 4, partner: { served: 4 } },
      { jobs: 6, done: [1, 2, 3, 4, 5, 6], sum: 91, crashes: 2, restarts: 2 },
      { order: 'A-1', status: 'compensated', failedAt: 'ship', reason: 'StepFailed: the carrier refused the parcel', undone: ['refund', 'release'] },
    ])
    await weave.close()
  })
})

/**
 * order-saga: reserve stock, charge the customer, ship; when a step fails, undo the steps already
 * done, newest first (refund the charge, release the stock), so the shop is left as it was.
 *
 * The shop is an SQLite database of the application (`db`, e.g. `demo-data/shop.db`), written
 * through the sqlite library: `stock` (item, qty), `accounts` (customer, balance), `payments` (a
 * ledger: +cents for a charge, −cents for a refund) and `shipments`. Every write is idempotent
 * (`{ idempotent: true }`): a step that was in flight when the weave died is done once, not
 * twice, when the saga resumes. `open` stocks items and funds accounts the shop does not have yet.
 *
 * A step fails on its own when the stock or the balance is too low (or the order has shipped
 * already); `failAt` makes a step fail on purpose (the warehouse, the bank or the carrier says
 * no). Either way the saga ends `done`, and its result says what happened.
 */
import { registerError, thread } from 'raiment'

const STEPS = ['reserve', 'charge', 'ship'] as const
type Step = (typeof STEPS)[number]

/** A step of the saga said no. Registered, so a replay rebuilds it as this class. */
export class StepFailed extends Error {
  readonly code: string
  readonly step: Step
  constructor(step: Step, code: string, message: string) {
    super(message)
    this.name = 'StepFailed'
    this.code = code
    this.step = step
  }
}
registerError(StepFailed)

const ON_PURPOSE: Record<Step, string> = {
  reserve: 'the warehouse is offline',
  charge: 'the bank declined the card',
  ship: 'the carrier refused the parcel',
}

export interface OrderParams {
  /** The shop's database file. */
  db: string
  order: string
  customer: string
  item: string
  qty: number
  cents: number
  /** Make this step fail on purpose. */
  failAt?: Step
  /** Opening stock and balances, for items and customers the shop does not have yet. */
  open?: { stock?: Record<string, number>; funds?: Record<string, number> }
}

export default thread({
  uses: ['log', 'sqlite'],
  async does(p: OrderParams) {
    const { db, order, customer, item, qty, cents, failAt } = p ?? {}
    if (typeof db !== 'string' || typeof order !== 'string' || typeof customer !== 'string' || typeof item !== 'string' ||
      !(Number.isInteger(qty) && qty > 0) || !(Number.isInteger(cents) && cents >= 0) || (failAt !== undefined && !STEPS.includes(failAt))) {
      throw new TypeError(
        `order-saga expects params { db, order, customer, item: string, qty: whole number > 0, cents: whole number >= 0, failAt?: ${STEPS.join('|')} }, got ${JSON.stringify(p)}`,
      )
    }
    const sql = this.sqlite
    const once = { idempotent: true }
    await sql.run(db, 'CREATE TABLE IF NOT EXISTS stock (item TEXT PRIMARY KEY, qty INTEGER NOT NULL)')
    await sql.run(db, 'CREATE TABLE IF NOT EXISTS accounts (customer TEXT PRIMARY KEY, balance INTEGER NOT NULL)')
    await sql.run(db, 'CREATE TABLE IF NOT EXISTS payments (n INTEGER PRIMARY KEY, order_id TEXT NOT NULL, customer TEXT NOT NULL, cents INTEGER NOT NULL)')
    await sql.run(db, 'CREATE TABLE IF NOT EXISTS shipments (order_id TEXT PRIMARY KEY, customer TEXT NOT NULL, item TEXT NOT NULL, qty INTEGER NOT NULL)')
    for (const [name, n] of Object.entries(p.open?.stock ?? {})) await sql.run(db, 'INSERT OR IGNORE INTO stock (item, qty) VALUES (?, ?)', [name, n])
    for (const [name, n] of Object.entries(p.open?.funds ?? {})) await sql.run(db, 'INSERT OR IGNORE INTO accounts (customer, balance) VALUES (?, ?)', [name, n])

    const steps: Record<Step, () => Promise<void>> = {
      reserve: async () => {
        const r = await sql.run(db, 'UPDATE stock SET qty = qty - ? WHERE item = ? AND qty >= ?', [qty, item, qty], once)
        if (r.changes === 0) {
          const [row] = await sql.query<{ qty: number }>(db, 'SELECT qty FROM stock WHERE item = ?', [item])
          throw new StepFailed('reserve', 'OUT_OF_STOCK', `${qty} × ${item} wanted, ${row?.qty ?? 0} in stock`)
        }
      },
      charge: async () => {
        const r = await sql.run(db, 'UPDATE accounts SET balance = balance - ? WHERE customer = ? AND balance >= ?', [cents, customer, cents], once)
        if (r.changes === 0) throw new StepFailed('charge', 'INSUFFICIENT_FUNDS', `${customer} cannot pay ${cents} cents`)
        await sql.run(db, 'INSERT INTO payments (order_id, customer, cents) VALUES (?, ?, ?)', [order, customer, cents], once)
      },
      ship: async () => {
        const r = await sql.run(db, 'INSERT OR IGNORE INTO shipments (order_id, customer, item, qty) VALUES (?, ?, ?, ?)', [order, customer, item, qty], once)
        if (r.changes === 0) throw new StepFailed('ship', 'ALREADY_SHIPPED', `order ${order} has shipped already`)
      },
    }
    const undo: Partial<Record<Step, { name: string; run: () => Promise<void> }>> = {
      reserve: {
        name: 'release',
        run: async () => void (await sql.run(db, 'UPDATE stock SET qty = qty + ? WHERE item = ?', [qty, item], once)),
      },
      charge: {
        name: 'refund',
        run: async () => {
          await sql.run(db, 'UPDATE accounts SET balance = balance + ? WHERE customer = ?', [cents, customer], once)
          await sql.run(db, 'INSERT INTO payments (order_id, customer, cents) VALUES (?, ?, ?)', [order, customer, -cents], once)
        },
      },
    }

    const done: Step[] = []
    let failed: { step: Step; error: Error } | null = null
    for (const step of STEPS) {
      try {
        if (failAt === step) throw new StepFailed(step, 'ON_PURPOSE', ON_PURPOSE[step])
        await steps[step]()
      } catch (e) {
        failed = { step, error: e as Error }
        break
      }
      done.push(step)
      await this.log.info(`order ${order}: ${step} done`)
    }
    if (failed === null) return { order, status: 'completed', steps: done }

    const reason = `${failed.error.name}: ${failed.error.message}`
    await this.log.warn(`order ${order}: ${failed.step} failed (${reason}); undoing ${done.length ? [...done].reverse().join(', ') : 'nothing'}`)
    const undone: string[] = []
    for (const step of [...done].reverse()) {
      const u = undo[step]
      if (u === undefined) continue
      try {
        await u.run()
      } catch (e) {
        // A compensation that fails leaves the shop half-undone: say exactly what is left to do.
        throw new Error(
          `order ${order}: ${failed.step} failed (${reason}), and then ${u.name} failed too (${(e as Error).message}); ` +
            `undone so far: ${undone.join(', ') || 'nothing'}; still to undo by hand: ${[...done].reverse().slice(undone.length).join(', ')}`,
          { cause: e },
        )
      }
      undone.push(u.name)
      await this.log.info(`order ${order}: ${u.name} done`)
    }
    return { order, status: 'compensated', failedAt: failed.step, reason, undone }
  },
})

/**
 * checkout: charges an order, and fails on purpose when the amount is over the card's limit.
 * A failed thread leaves a dump (dumps/<id>.json); `raiment replay` of that dump throws the same
 * PaymentDeclined again, from the record alone.
 */
import { registerError, thread } from 'raiment'

/** The card was declined. Registered, so a replay rebuilds it as this class. */
export class PaymentDeclined extends Error {
  readonly code = 'PAYMENT_DECLINED'
  readonly order: number
  constructor(order: number, cents: number, limit: number) {
    super(`order ${order}: card declined, ${cents} cents is over the limit of ${limit}`)
    this.name = 'PaymentDeclined'
    this.order = order
  }
}
registerError(PaymentDeclined)

export default thread({
  uses: ['clock', 'log', 'random'],
  async does(params: { order: number; cents: number; limit: number }) {
    const { order, cents, limit } = params
    await this.log.info(`checking out order ${order}`, { cents })
    const attempt = await this.random.uuid()
    await this.clock.sleep(1_000)
    await this.log.info(`charging ${cents} cents`, { order, attempt })
    await this.clock.sleep(500)
    if (cents > limit) {
      await this.log.warn('card declined', { order, attempt })
      throw new PaymentDeclined(order, cents, limit)
    }
    return { order, charged: cents }
  },
})

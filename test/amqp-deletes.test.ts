/**
 * The relay deletes confirmed outbox rows in batches (src/amqp/relay.ts, DELETE_AFTER_MS): two
 * weaves in this process, on a real broker, pass a message back and forth; the sender's deletes
 * go into at most one commit per DELETE_AFTER_MS (not one per confirm), the outbox empties with
 * no one waiting for it, and every message arrives once.
 */
import { describe, expect, it, vi } from 'vitest'
import { DELETE_AFTER_MS } from '../src/amqp/relay.js'
import { brokerUp, CI, brokerTests } from './support/broker.js'
import { ping, pong } from './support/ping-pong.js'
import { openWeaves } from './support/weaves.js'

describe.skipIf(!brokerUp && !CI)('outbox rows confirmed are deleted in batches', () => {
  const cleanups = brokerTests()

  it('a ping-pong commits its deletes at most once per DELETE_AFTER_MS, and the outbox empties unasked', async () => {
    const { w, links } = await openWeaves(cleanups, ['a', 'b'], { ping, pong })
    const a = w['a']!
    // Which of a's commits (journal epochs) hold a delete of outbox rows.
    const withDeletes = new Set<number>()
    const queue = a.journal.queue.bind(a.journal)
    a.journal.queue = (stmt, params, after) => {
      if (stmt.source.startsWith('DELETE FROM outbox')) withDeletes.add(a.journal.epoch)
      queue(stmt, params, after)
    }
    const N = 40
    const to = w['b']!.spawn('pong', { n: N })
    await w['b']!.committed()
    const t0 = performance.now()
    const back = (await a.join(a.spawn('ping', { to, n: N }))) as { status: string; result?: unknown }
    expect(back.status).toBe('done')
    expect(back.result).toEqual(Array.from({ length: N }, (_, k) => k))
    // Nobody waits on the outbox: the deletes still come, DELETE_AFTER_MS after a confirm.
    await vi.waitFor(() => expect(links['a']!.pending()).toBe(0), { timeout: 10_000, interval: 20 })
    const elapsed = performance.now() - t0
    // Batches begin at least DELETE_AFTER_MS apart (a commit per confirm would be about N).
    expect(withDeletes.size).toBeGreaterThan(0)
    expect(withDeletes.size).toBeLessThanOrEqual(Math.floor(elapsed / DELETE_AFTER_MS) + 1)
  }, 60_000)
})

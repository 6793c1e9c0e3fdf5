/**
 * Passivation changes nothing a thread can see: random conversations run once with
 * `passivateAfter: 0` (every thread leaves memory as soon as it only waits, and wakes by replay)
 * and once without passivation, and give the same results and the same messages in the same
 * order.
 *
 * A conversation: a conductor spawns actors and hands them a token that visits them in an order
 * fast-check chooses; the holder of the token acts (sends extra messages to actors it will visit
 * later, receives extras selectively — any, a pattern, a predicate — with a timeout, sleeps,
 * spawns a linked child that may fail, whose exit it traps), then passes the token on. Every
 * send happens while its sender holds the token, so what each inbox holds when its thread
 * receives follows from the conversation alone: a receive finds its match or times out
 * whatever the timing, and the runs must agree exactly. At its last visit an actor drains its
 * inbox; it then ends, and the conductor collects every actor's result from its exit message.
 *
 * Reproduce a failure with FC_SEED=<seed>.
 */
import fc from 'fast-check'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { Weave, type ThreadEnd } from 'raiment'
import { actor, child, conductor, conversationArb, receivedBy, type Conversation } from './support/passivation-conversation.js'
import { tempDir } from './support/tmp.js'

const seed = process.env['FC_SEED'] !== undefined ? Number(process.env['FC_SEED']) : Date.now() % 2 ** 31
const RUNS = Number(process.env['PASSIVATION_RUNS'] ?? 15)
console.log(`passivation: fast-check seed ${seed}, ${RUNS} runs (FC_SEED=${seed} to reproduce)`)

async function run(c: Conversation, passivateAfter: number | false): Promise<{ end: ThreadEnd; passivated: number; received: string[][] }> {
  const weave = await Weave.open({
    db: join(tempDir('raiment-passivation-prop-'), 'w.db'),
    durability: 'memory',
    threads: { conductor, actor, child },
    ioLibs: false,
    dumps: false,
    passivateAfter,
  })
  let passivated = 0
  weave.on('thread-passivated', () => passivated++)
  try {
    const id = weave.spawn('conductor', c)
    const end = await weave.join(id)
    await weave.committed()
    const db = weave.journal.db
    expect(db.prepare('SELECT count(*) AS n FROM inbox').get()).toEqual({ n: 0 })
    expect(db.prepare('SELECT count(*) AS n FROM dead_letters').get()).toEqual({ n: 0 })
    expect(db.prepare('SELECT count(*) AS n FROM passivated').get()).toEqual({ n: 0 })
    return { end, passivated, received: receivedBy(weave) }
  } finally {
    await weave.close()
  }
}

describe('passivation', () => {
  it(`random conversations give the same results and messages in the same order with passivateAfter 0 and without passivation (${RUNS} runs, seed ${seed})`, async () => {
    let passivations = 0
    let timedOut = 0
    let failedChildren = 0
    await fc.assert(
      fc.asyncProperty(conversationArb, async (c) => {
        const still = await run(c, false)
        const moving = await run(c, 0)
        expect(still.end.status, JSON.stringify(still.end)).toBe('done')
        expect(moving.end).toEqual(still.end)
        expect(moving.received).toEqual(still.received)
        expect(still.passivated).toBe(0)
        passivations += moving.passivated
        const text = JSON.stringify(still.end)
        timedOut += text.split('timed out').length - 1
        failedChildren += text.split('child failed').length - 1
      }),
      { numRuns: RUNS, seed },
    )
    console.log(`passivation: ${passivations} passivations in ${RUNS} conversations; ${timedOut} receives timed out, ${failedChildren} linked children failed`)
    expect(passivations).toBeGreaterThan(RUNS)
  }, 120_000)
})

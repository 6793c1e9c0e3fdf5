/**
 * The journal's rows of calls in flight (src/in-flight.ts), in one process on a real file: a call
 * still unanswered a turn after it started gets its row, and its outcome's batch deletes it; a
 * wait (a sleep) gets none; a thread killed, or continuing as new, with a call in flight leaves
 * none behind (the new run, resumed, must not be asked for the old run's call).
 */
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { thread, Weave, type AnyThreadType } from 'raiment'
import { tempDir } from './support/tmp.js'
import { until } from './support/until.js'
import { pendingSleeps } from '../io-libs/clock.js'

/** Calls that settle when the test says. */
let settle: ((v: string) => void) | null = null
let opened: (() => void) | null = null
const psp = { charge: (): Promise<string> => new Promise<string>((r) => (settle = r)) }
const gate = { open: (): Promise<void> => new Promise<void>((r) => (opened = r)) }
interface Uses {
  psp: typeof psp
  gate: typeof gate
  clock: { sleep(ms: number): Promise<void> }
  threads: { continueAsNew(p: unknown): Promise<never> }
}

const pay = thread({
  uses: ['psp' as 'clock', 'gate' as 'clock', 'clock', 'threads'],
  async does(p: { then: 'return' | 'renew' | 'sleep' | 'leave' }) {
    const t = this as unknown as Uses
    if (p.then === 'leave') {
      // Fire and forget: the charge is left in flight as the thread ends.
      void t.psp.charge()
      return 'left'
    }
    if (p.then === 'sleep') {
      await t.clock.sleep(3_600_000)
      return 'slept'
    }
    if (p.then === 'renew') {
      // The charge is abandoned in flight: the thread continues as new without it.
      void t.psp.charge()
      await t.gate.open()
      return t.threads.continueAsNew({ then: 'sleep' })
    }
    return t.psp.charge()
  },
})

function rows(weave: Weave): string[] {
  return weave.journal.db.prepare("SELECT k FROM meta WHERE k LIKE 'inflight:%' ORDER BY k").pluck().all() as string[]
}

async function open(): Promise<Weave> {
  return Weave.open({ db: join(tempDir(), 'w.db'), threads: { pay: pay as AnyThreadType }, libraries: { psp, gate }, ioLibs: false, dumps: false, durability: 'memory', passivateAfter: false })
}

describe('rows of calls in flight', () => {
  it('a call in flight has its row until its outcome; a sleep has none', async () => {
    const weave = await open()
    try {
      settle = null
      const id = weave.spawn('pay', { then: 'return' })
      await until('the charge in flight, its row written', () => settle !== null && rows(weave).length === 1)
      expect(rows(weave)).toEqual([`inflight:${id.length}:${id}:0:psp.charge:[]`])
      settle!('charged')
      expect(await weave.join(id)).toMatchObject({ status: 'done', result: 'charged' })
      await weave.committed()
      expect(rows(weave)).toEqual([])
      weave.spawn('pay', { then: 'sleep' })
      // Its sleep asked (its call started): the next batch would mark it, were a sleep marked.
      await until('the thread sleeping', () => pendingSleeps() > 0)
      await weave.committed()
      expect(rows(weave)).toEqual([])
    } finally {
      await weave.close()
    }
  })

  it('a thread that ends with a call it left in flight, or is killed in the turn a call started, leaves no row (a review)', async () => {
    const weave = await open()
    try {
      settle = null
      const left = weave.spawn('pay', { then: 'leave' })
      expect(await weave.join(left)).toMatchObject({ status: 'done', result: 'left' })
      const killed = weave.spawn('pay', { then: 'return' })
      await until('the charge asked', () => settle !== null)
      // In the turn the charge started (its row not yet written): killed.
      expect(weave.kill(killed)).toBe(true)
      await weave.committed()
      await weave.committed()
      expect(rows(weave)).toEqual([])
    } finally {
      await weave.close()
    }
  })

  it('a chosen thread id holding ":" has its rows, read back as its own (a review)', async () => {
    const weave = await open()
    try {
      settle = null
      const id = weave.spawn('pay', { then: 'return' }, { id: `${weave.journal.weaveId}/order:42` })
      const other = weave.spawn('pay', { then: 'sleep' }, { id: `${weave.journal.weaveId}/order` })
      await until('the row written', () => rows(weave).length === 1)
      expect(rows(weave)).toEqual([`inflight:${id.length}:${id}:0:psp.charge:[]`])
      // The other thread's end, whose id is a prefix of this one's, leaves this one's row.
      expect(weave.kill(other)).toBe(true)
      await weave.committed()
      expect(rows(weave)).toHaveLength(1)
      settle!('charged')
      expect(await weave.join(id)).toMatchObject({ status: 'done', result: 'charged' })
      await weave.committed()
      expect(rows(weave)).toEqual([])
    } finally {
      await weave.close()
    }
  })

  it('a thread killed with a call in flight leaves no row', async () => {
    const weave = await open()
    try {
      settle = null
      const id = weave.spawn('pay', { then: 'return' })
      await until('the row written', () => rows(weave).length === 1)
      expect(weave.kill(id)).toBe(true)
      await weave.committed()
      expect(rows(weave)).toEqual([])
    } finally {
      await weave.close()
    }
  })

  it('a thread that continues as new with a call in flight leaves no row for the new run', async () => {
    const weave = await open()
    try {
      settle = null
      opened = null
      const id = weave.spawn('pay', { then: 'renew' })
      await until('the charge and the gate in flight, their rows written', () => opened !== null && rows(weave).length === 2)
      opened!()
      await until('the new run', () => weave.journal.db.prepare('SELECT continued FROM threads WHERE id = ?').pluck().get(id) === 1)
      await weave.committed()
      expect(rows(weave)).toEqual([])
    } finally {
      settle?.('late')
      await weave.close()
    }
  })
})

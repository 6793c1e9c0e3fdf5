/**
 * `weave.cancel(id)`: a thread cancelled so that it can clean up (a user trial's saga, killed
 * between its withdraw and its deposit, could not refund: a kill makes no call after it). The call
 * the thread waits on (or else the next it makes) throws ThreadCancelled, recorded as that call's
 * outcome; its later calls run, so it compensates; its dump replays to the same end; a cancel not
 * yet applied when the weave stops is applied when it resumes the thread.
 */
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { callContext, thread, ThreadCancelled, UnknownThread, Weave, type AnyThreadType } from 'raiment'
import { replay } from 'raiment/testing'
import { makeDump } from '../src/dump.js'
import { pendingSleeps } from '../io-libs/clock.js'
import { tempDir } from './support/tmp.js'
import { cliRun } from './support/cli-in-process.js'
import { until } from './support/until.js'

/** What the bank was asked, in this process. */
const asked: string[] = []
const bank = {
  async withdraw(): Promise<string> { asked.push('withdraw'); return 'w' },
  async deposit(): Promise<string> { asked.push('deposit'); return 'd' },
  async refund(): Promise<string> { asked.push('refund'); return 'r' },
}
interface Bank { withdraw(): Promise<string>; deposit(): Promise<string>; refund(): Promise<string> }

/** Withdraws, waits (a message, or a sleep), deposits; cancelled in between, refunds. */
const transfer = thread({
  uses: ['bank' as 'clock', 'gate' as 'clock', 'mailbox', 'clock'],
  async does(p: { wait: 'receive' | 'sleep' | 'gate' }) {
    const t = this as unknown as { bank: Bank; gate: { open(): Promise<void> }; mailbox: { receive(): Promise<unknown> }; clock: { sleep(ms: number): Promise<void> } }
    await t.bank.withdraw()
    try {
      if (p.wait === 'receive') await t.mailbox.receive()
      else if (p.wait === 'sleep') await t.clock.sleep(3_600_000)
      else await t.gate.open()
      await t.bank.deposit()
      return 'done'
    } catch (e) {
      if (!(e instanceof ThreadCancelled)) throw e
      await t.bank.refund()
      return `refunded (${e.reason})`
    }
  },
})

function open(db: string, gate: () => Promise<void>, more: object = {}): Promise<Weave> {
  return Weave.open({ db, threads: { transfer: transfer as AnyThreadType }, libraries: { bank, gate: { open: gate } }, dumps: false, durability: 'memory', passivateAfter: false, ...more })
}

describe('cancel a thread so that it cleans up', () => {
  it('waiting in a sleep: the sleep throws ThreadCancelled, the thread refunds; its dump replays to the same end', async () => {
    asked.length = 0
    const weave = await open(join(tempDir(), 'w.db'), async () => {})
    try {
      const id = weave.spawn('transfer', { wait: 'sleep' })
      await until('the thread sleeping', () => pendingSleeps() > 0)
      expect(weave.cancel(id, 'the customer asked')).toBe(true)
      expect(await weave.join(id)).toMatchObject({ status: 'done', result: 'refunded (the customer asked)' })
      expect(asked).toEqual(['withdraw', 'refund'])
      const dump = makeDump(weave.journal, id)
      expect(dump.entries.find((e) => e.call === 'clock.sleepUntil')).toMatchObject({ ok: false })
      expect(await replay(transfer, dump, { libraries: { bank, gate: { open: async () => {} } } })).toMatchObject({ status: 'done', result: 'refunded (the customer asked)' })
      expect(weave.journal.db.prepare("SELECT count(*) FROM meta WHERE k LIKE 'cancel:%'").pluck().get()).toBe(0)
      // Ended: nothing to cancel; an id of no thread is an error.
      expect(weave.cancel(id)).toBe(false)
      expect(() => weave.cancel(`${weave.journal.weaveId}/999`)).toThrow(UnknownThread)
    } finally {
      await weave.close()
    }
  })

  it('cancelled twice while it sleeps: the second, before the first is recorded, is the same cancel (its refund runs)', async () => {
    asked.length = 0
    const weave = await open(join(tempDir(), 'w.db'), async () => {})
    try {
      const id = weave.spawn('transfer', { wait: 'sleep' })
      await until('the thread sleeping', () => pendingSleeps() > 0)
      expect(weave.cancel(id, 'once')).toBe(true)
      expect(weave.cancel(id, 'twice')).toBe(true)
      expect(await weave.join(id)).toMatchObject({ status: 'done', result: 'refunded (once)' })
      expect(asked).toEqual(['withdraw', 'refund'])
      await weave.committed()
      expect(weave.journal.db.prepare("SELECT count(*) FROM meta WHERE k LIKE 'cancel:%'").pluck().get()).toBe(0)
    } finally {
      await weave.close()
    }
  })

  it('passivated in a receive: woken, its receive throws ThreadCancelled', async () => {
    asked.length = 0
    const weave = await open(join(tempDir(), 'w.db'), async () => {}, { passivateAfter: 0 })
    try {
      const passivated = new Promise<void>((r) => weave.once('thread-passivated', () => r()))
      const id = weave.spawn('transfer', { wait: 'receive' })
      await passivated
      expect(weave.cancel(id)).toBe(true)
      expect(await weave.join(id)).toMatchObject({ status: 'done', result: 'refunded (cancelled)' })
      expect(asked).toEqual(['withdraw', 'refund'])
    } finally {
      await weave.close()
    }
  })

  it('in a call that cannot be aborted: the next call throws it; a weave that stops first applies it when it resumes the thread', async () => {
    asked.length = 0
    const db = join(tempDir(), 'w.db')
    let reached: () => void = () => {}
    const atGate = new Promise<void>((r) => (reached = r))
    const first = await open(db, () => (reached(), new Promise<void>(() => {})))
    const id = first.spawn('transfer', { wait: 'gate' })
    await atGate
    expect(first.cancel(id, 'stopped first')).toBe(true)
    await first.committed()
    await first.close()
    expect(asked).toEqual(['withdraw'])

    // Resumed, the gate (a call in flight at the stop) is the first call it makes live: it throws, and the thread refunds.
    const second = await open(db, async () => {})
    try {
      expect(await second.join(id)).toMatchObject({ status: 'done', result: 'refunded (stopped first)' })
      expect(asked).toEqual(['withdraw', 'refund'])
      expect(second.journal.db.prepare("SELECT count(*) FROM meta WHERE k LIKE 'cancel:%'").pluck().get()).toBe(0)
    } finally {
      await second.close()
    }
  })

  it('in a library call that takes an abort signal but is not a wait (a charge): the call ends as it does, the thread gets its result, and the next call throws, so the clean-up knows what to undo', async () => {
    // A user trial: the cancel aborted an in-flight charge the payment service had made; the
    // thread recorded ThreadCancelled for it, never got the charge id, and could not refund.
    const made: string[] = []
    let answer: () => void = () => {}
    const psp = {
      charge(): Promise<string> {
        const { signal } = callContext()
        made.push('charge')
        return new Promise<string>((resolve, reject) => {
          answer = () => resolve('ch_1')
          signal.addEventListener('abort', () => reject(signal.reason as Error))
        })
      },
      async refund(id: string): Promise<string> {
        made.push(`refund ${id}`)
        return 'r'
      },
    }
    const pay = thread({
      uses: ['psp' as 'clock', 'clock'],
      async does() {
        const t = this as unknown as { psp: typeof psp; clock: { now(): Promise<number> } }
        const charge = await t.psp.charge()
        try {
          await t.clock.now()
          return `kept ${charge}`
        } catch (e) {
          if (!(e instanceof ThreadCancelled)) throw e
          await t.psp.refund(charge)
          return `refunded ${charge}`
        }
      },
    })
    const weave = await Weave.open({ db: join(tempDir(), 'w.db'), threads: { pay: pay as AnyThreadType }, libraries: { psp }, dumps: false, durability: 'memory', passivateAfter: false })
    try {
      const id = weave.spawn('pay')
      await until('the charge asked', () => made.length === 1)
      expect(weave.cancel(id, 'changed my mind')).toBe(true)
      answer()
      expect(await weave.join(id)).toMatchObject({ status: 'done', result: 'refunded ch_1' })
      expect(made).toEqual(['charge', 'refund ch_1'])
    } finally {
      await weave.close()
    }
  })

  it('in a call that cannot be aborted and makes none after: the thread ends as it would, and the cancel goes with its end (also a kill)', async () => {
    asked.length = 0
    const gates: Array<() => void> = []
    let bothIn: () => void = () => {}
    const inGates = new Promise<void>((r) => (bothIn = r))
    const last = thread({
      uses: ['bank' as 'clock', 'gate' as 'clock'],
      async does() {
        const t = this as unknown as { bank: Bank; gate: { open(): Promise<void> } }
        await t.bank.withdraw()
        await t.gate.open()
        return 'through'
      },
    })
    const weave = await Weave.open({ db: join(tempDir(), 'w.db'), threads: { last }, libraries: { bank, gate: { open: () => new Promise<void>((r) => void (gates.push(r) === 2 && bothIn())) } }, dumps: false, durability: 'memory', passivateAfter: false })
    try {
      const a = weave.spawn('last', {})
      const b = weave.spawn('last', {})
      await inGates
      expect(weave.cancel(a)).toBe(true)
      expect(weave.cancel(b)).toBe(true)
      gates[0]!()
      expect(await weave.join(a)).toMatchObject({ status: 'done', result: 'through' })
      expect(weave.kill(b)).toBe(true)
      expect(await weave.join(b)).toMatchObject({ status: 'killed' })
      await weave.committed()
      expect(weave.journal.db.prepare("SELECT k FROM meta WHERE k LIKE 'cancel:%'").pluck().all()).toEqual([])
    } finally {
      await weave.close()
    }
  })

  it('in a call that cannot be aborted, then continued as new: the new run\'s first call throws it', async () => {
    asked.length = 0
    let reached: () => void = () => {}
    const atGate = new Promise<void>((r) => (reached = r))
    let through: () => void = () => {}
    const again = thread({
      uses: ['bank' as 'clock', 'gate' as 'clock', 'threads'],
      async does(p: { run: number }): Promise<unknown> {
        const t = this as unknown as { bank: Bank; gate: { open(): Promise<void> } }
        try {
          if (p.run === 0) {
            await t.gate.open()
            return this.threads.continueAsNew({ run: 1 })
          }
          await t.bank.deposit()
          return 'deposited'
        } catch (e) {
          if (!(e instanceof ThreadCancelled)) throw e
          await t.bank.refund()
          return `refunded in run ${p.run}`
        }
      },
    })
    const weave = await Weave.open({ db: join(tempDir(), 'w.db'), threads: { again }, libraries: { bank, gate: { open: () => new Promise<void>((r) => ((through = r), reached())) } }, dumps: false, durability: 'memory', passivateAfter: false })
    try {
      const id = weave.spawn('again', { run: 0 })
      await atGate
      expect(weave.cancel(id)).toBe(true)
      through()
      expect(await weave.join(id)).toMatchObject({ status: 'done', result: 'refunded in run 1' })
      expect(asked).toEqual(['refund'])
      await weave.committed()
      expect(weave.journal.db.prepare("SELECT count(*) FROM meta WHERE k LIKE 'cancel:%'").pluck().get()).toBe(0)
    } finally {
      await weave.close()
    }
  })

  it('raiment cancel: beside a running weave it asks it; with none it records the cancel for the next; a thread cancels another with threads.cancel', async () => {
    asked.length = 0
    const db = join(tempDir(), 'w.db')
    const canceller = thread({ uses: ['threads'], async does(p: { target: string }) { return this.threads.cancel(p.target, 'by a thread') } })
    const threads = { transfer: transfer as AnyThreadType, canceller }
    const openWith = (gate: () => Promise<void>) => Weave.open({ db, threads, libraries: { bank, gate: { open: gate } }, dumps: false, durability: 'memory', passivateAfter: false })
    let weave = await openWith(() => new Promise<void>(() => {}))
    const a = weave.spawn('transfer', { wait: 'sleep' })
    const b = weave.spawn('transfer', { wait: 'sleep' })
    const c = weave.spawn('transfer', { wait: 'gate' })
    await until('two threads sleeping', () => pendingSleeps() >= 2)
    const beside = await cliRun(['cancel', a, '--db', db, '--reason', 'from the CLI'])
    expect(beside.code, beside.printed.join('')).toBe(0)
    expect(beside.printed.join('')).toMatch(new RegExp(`^cancelled ${a}`))
    expect(await weave.join(a)).toMatchObject({ status: 'done', result: 'refunded (from the CLI)' })
    expect(await weave.join(weave.spawn('canceller', { target: b }))).toMatchObject({ status: 'done', result: true })
    expect(await weave.join(b)).toMatchObject({ status: 'done', result: 'refunded (by a thread)' })
    await weave.committed()
    await weave.close()

    // With no weave: recorded; the next weave applies it to the thread it resumes.
    const offline = await cliRun(['cancel', c, '--db', db])
    expect(offline.code, offline.printed.join('')).toBe(0)
    expect(offline.printed.join('')).toContain(`cancel of ${c} recorded`)
    weave = await openWith(async () => {})
    try {
      expect(await weave.join(c)).toMatchObject({ status: 'done', result: 'refunded (cancelled)' })
      const ended = await cliRun(['cancel', c, '--db', db])
      expect(ended.printed.join('')).toContain(`${c} had already ended (done)`)
    } finally {
      await weave.close()
    }
  })
})

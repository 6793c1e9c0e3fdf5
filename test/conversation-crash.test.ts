/**
 * Crash during a conversation, with real processes: a weave child (durability 'sync') runs a
 * conductor that spawns receivers (registered by name) and senders; each sender sends a numbered
 * sequence of messages to several receivers, by id or by name (one at a time, or in rounds of
 * concurrent sends to distinct receivers); receivers take them with plain, pattern, predicate and
 * timed receives. The test SIGKILLs the child after a number of progress lines that fast-check
 * chooses, restarts it until every thread has ended, and checks:
 *
 * - after every kill, in what is durable: every message whose send is recorded is in exactly one
 *   place, its receiver's inbox or its receiver's record of what it took, and no message is
 *   anywhere without its send recorded; for each (sender, receiver) pair, the receiver took a
 *   prefix of the sequence in order and the rest waits in its inbox in order; a dead letter is
 *   there exactly when its send is recorded;
 * - at the end: every message sent was received exactly once, in send order for each pair; every
 *   thread ended done; no inbox row or name is left, and the dead letters hold exactly the one
 *   message each sender sends, last, to a name nobody holds.
 *
 * The named crash points of the weft (RAIMENT_CRASH_AT) kill it in the middle of the
 * conversation exactly after a live call and before its record (the call runs again on restart,
 * its effect once), and after the record and before the thread sees it (replayed, not run again).
 *
 * Reproduce a failure with FC_SEED=<seed>.
 */
import fc from 'fast-check'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { callIdOfRow } from '../src/call-context.js'
import { decodeArgs, decodeValue } from '../src/encoding.js'
import { Journal, type ThreadRow } from '../src/journal.js'
import { splitKey } from '../src/weft.js'
import { describeRun, runChild, supportScript, type ChildRun } from './support/child.js'
import { count, expectedBySender, NOBODY, receiverName, type ConvMsg, type Plan, type Style } from './support/conversation-plan.js'
import { tempDir } from './support/tmp.js'

const CHILD = supportScript('conversation-child.ts')
const seed = process.env['FC_SEED'] !== undefined ? Number(process.env['FC_SEED']) : Date.now() % 2 ** 31
// 12 runs by default (1 to 3 kills each, besides the six named crash points): the file was the
// longest of the suite at 20 (135 s of a ~15-minute CI); CONVERSATION_RUNS=100 for a long soak.
const RUNS = Number(process.env['CONVERSATION_RUNS'] ?? 12)
console.log(`conversation: fast-check seed ${seed}, ${RUNS} runs (FC_SEED=${seed} to reproduce)`)

const style = fc.constantFrom<Style>('any', 'pattern', 'predicate', 'timed')

const planArb: fc.Arbitrary<Plan> = fc
  .tuple(fc.integer({ min: 2, max: 3 }), fc.integer({ min: 2, max: 3 }))
  .chain(([receivers, senders]) =>
    fc.record({
      senders: fc.array(fc.array(fc.record({ to: fc.integer({ min: 0, max: receivers - 1 }), byName: fc.boolean() }), { minLength: 2, maxLength: 8 }), { minLength: senders, maxLength: senders }),
      parallel: fc.array(fc.boolean(), { minLength: senders, maxLength: senders }),
      receivers: fc.array(fc.array(style, { minLength: 1, maxLength: 3 }), { minLength: receivers, maxLength: receivers }),
    }),
  )

/** Progress lines of a plan's uninterrupted run, roughly: two per live call. */
function progressLines(plan: Plan): number {
  const messages = plan.senders.flat().length
  return 2 * (3 * messages + 4 * (plan.senders.length + plan.receivers.length))
}

const isProgress = (line: string): boolean => line.startsWith('call ') || line.startsWith('done ')
const finished = (r: ChildRun): boolean => r.lines.includes('all-done')

function setUp(plan: Plan): string {
  const dir = tempDir('raiment-conversation-')
  writeFileSync(join(dir, 'plan.json'), JSON.stringify(plan))
  return dir
}

/** A run the test did not kill must end with every thread ended, and exit 0. */
function expectClean(r: ChildRun): void {
  if (!(r.code === 0 && finished(r))) throw new Error(`the weave child did not finish cleanly: ${describeRun(r)}`)
  const bad = r.lines.filter((l) => l.startsWith('error ') || / failed /.test(l) || l.endsWith(' failed'))
  if (bad.length > 0) throw new Error(`the weave child reported: ${bad.join(' | ')}`)
}

// ---- what is durable ----------------------------------------------------------------------------

const keyOf = (m: ConvMsg): string => `${m.s}:${m.k}:${m.r}`
const isConv = (v: unknown): v is ConvMsg => typeof v === 'object' && v !== null && 's' in v && 'k' in v && 'r' in v

interface Durable {
  threads: ThreadRow[]
  /** Call ids of every recorded outcome. */
  calls: Set<string>
  /** Recorded sends of conversation messages: message key → the send's call id. */
  sent: Map<string, string>
  /** Senders whose message to NOBODY is recorded (as not delivered). */
  byes: Set<number>
  /** Per receiver index: its thread id and the conversation messages it took, in order. */
  receivers: Map<number, { id: string; took: ConvMsg[] }>
  inbox: Array<{ n: number; thread: string; msgId: string; body: unknown }>
  dead: Array<{ sender: string; recipient: string; body: unknown; reason: string }>
  names: Array<{ name: string; thread: string }>
}

function readDurable(dir: string): Durable {
  const journal = new Journal(join(dir, 'weave.db'), { readonly: true })
  try {
    const threads = journal.threads()
    const calls = new Set<string>()
    const sent = new Map<string, string>()
    const byes = new Set<number>()
    const receivers = new Map<number, { id: string; took: ConvMsg[] }>()
    for (const t of threads) {
      const took: ConvMsg[] = []
      for (const [, key, ord, ok, outcome] of journal.entries(t.id)) {
        const callId = callIdOfRow(t, key, ord)
        calls.add(callId)
        if (ok !== 1) continue
        const { call, args } = splitKey(key)
        const value = decodeValue(outcome) as { delivered?: boolean; message?: unknown }
        if (call === 'mailbox.send') {
          const [to, msg] = decodeArgs(args) as [string, { s: number }]
          if (isConv(msg) && value.delivered === true) {
            expect(sent.has(keyOf(msg)), `message ${keyOf(msg)} is recorded as sent twice`).toBe(false)
            sent.set(keyOf(msg), callId)
          } else if (to === NOBODY && value.delivered === false) byes.add(msg.s)
        } else if ((call === 'mailbox.take' || call === 'mailbox.takeNumber') && isConv(value.message)) took.push(value.message)
      }
      if (t.type === 'receiver') {
        const { r } = decodeValue(t.params) as { r: number }
        expect(receivers.has(r), `receiver ${r} was spawned twice`).toBe(false)
        receivers.set(r, { id: t.id, took })
      }
    }
    const db = journal.db
    const inbox = (db.prepare('SELECT n, thread, msg_id AS msgId, body FROM inbox ORDER BY n').all() as Array<{ n: number; thread: string; msgId: string; body: string }>).map((row) => ({
      ...row,
      body: decodeValue(row.body),
    }))
    const dead = (db.prepare('SELECT sender, recipient, body, reason FROM dead_letters ORDER BY n').all() as Durable['dead']).map((row) => ({
      ...row,
      body: decodeValue(row.body as string),
    }))
    const names = db.prepare('SELECT name, thread FROM names ORDER BY name').all() as Array<{ name: string; thread: string }>
    return { threads, calls, sent, byes, receivers, inbox, dead, names }
  } finally {
    journal.close()
  }
}

/**
 * What must hold at any instant, crash or not: each recorded message is in exactly one place
 * (its receiver's inbox, or its receiver's record of what it took), nothing is anywhere without
 * its send recorded, each pair's messages were taken as a prefix in order with the rest waiting
 * in order, and the dead letters hold what was recorded as sent to NOBODY, once.
 */
function expectConsistent(d: Durable, plan: Plan): void {
  const where = new Map<string, string>()
  const place = (m: ConvMsg, at: string): void => {
    const k = keyOf(m)
    expect(where.get(k), `message ${k} is both ${where.get(k)} and ${at}`).toBeUndefined()
    where.set(k, at)
  }
  for (const [r, { took }] of d.receivers) {
    for (const m of took) {
      expect(m.r, `receiver ${r} took a message for receiver ${m.r}`).toBe(r)
      place(m, `taken by receiver ${r}`)
    }
  }
  const waiting = new Map<string, ConvMsg[]>()
  for (const row of d.inbox) {
    if (!isConv(row.body)) continue
    const m = row.body
    const rec = d.receivers.get(m.r)
    expect(row.thread, `message ${keyOf(m)} is in the inbox of ${row.thread}, not of receiver ${m.r}`).toBe(rec?.id)
    // The inbox row carries the send's call id, so a send run again cannot deliver it twice.
    expect(row.msgId, `message ${keyOf(m)}: inbox row and recorded send disagree`).toBe(d.sent.get(keyOf(m)))
    place(m, `in the inbox (#${row.n})`)
    const pair = `${m.s}>${m.r}`
    waiting.set(pair, [...(waiting.get(pair) ?? []), m])
  }
  expect([...where.keys()].sort(), 'messages recorded as sent vs. messages in an inbox or taken').toEqual([...d.sent.keys()].sort())
  for (let s = 0; s < plan.senders.length; s++) {
    for (let r = 0; r < plan.receivers.length; r++) {
      const took = (d.receivers.get(r)?.took ?? []).filter((m) => m.s === s).map((m) => m.k)
      const rest = (waiting.get(`${s}>${r}`) ?? []).map((m) => m.k)
      const seen = [...took, ...rest]
      expect(seen, `sender ${s} → receiver ${r}: taken ${JSON.stringify(took)}, waiting ${JSON.stringify(rest)}`).toEqual(seen.map((_, i) => i))
      expect(seen.length).toBeLessThanOrEqual(count(plan, s, r))
    }
  }
  // The dead letters hold each sender's message to NOBODY once, exactly when its send is recorded.
  const senderIds = new Map(d.threads.filter((t) => t.type === 'sender').map((t) => [(decodeValue(t.params) as { s: number }).s, t.id]))
  expect(d.dead.map((x) => (x.body as { s: number }).s).sort()).toEqual([...d.byes].sort())
  for (const x of d.dead) {
    const s = (x.body as { s: number }).s
    expect(x).toEqual({ sender: senderIds.get(s), recipient: NOBODY, body: { s, bye: true }, reason: `no thread is registered as '${NOBODY}'` })
  }
}

/** The end: every thread done, every message received once and in order, nothing left over. */
function expectFinal(d: Durable, plan: Plan): void {
  expectConsistent(d, plan)
  expect(d.threads.map((t) => `${t.type} ${t.status}`).sort()).toEqual(
    ['conductor done', ...plan.receivers.map(() => 'receiver done'), ...plan.senders.map(() => 'sender done')].sort(),
  )
  expect(d.inbox).toEqual([])
  expect(d.names).toEqual([])
  expect(d.sent.size).toBe(plan.senders.flat().length)
  expect(d.dead).toHaveLength(plan.senders.length)
  const conductor = d.threads.find((t) => t.type === 'conductor')!
  const { receivers, exits } = decodeValue(conductor.outcome!) as { receivers: string[]; exits: Record<string, { status: string; result: unknown }> }
  for (let r = 0; r < plan.receivers.length; r++) {
    const rec = d.receivers.get(r)!
    expect(receivers[r]).toBe(rec.id)
    const result = decodeValue(d.threads.find((t) => t.id === rec.id)!.outcome!) as ConvMsg[]
    // What the receiver returned is what its record says it took, and its exit message says so.
    expect(result).toEqual(rec.took)
    expect(exits[rec.id]).toEqual({ exit: rec.id, status: 'done', result })
    const bySender = plan.senders.map((_, s) => result.filter((m) => m.s === s))
    expect(bySender, `receiver ${r} (${receiverName(r)})`).toEqual(expectedBySender(plan, r))
  }
}

/** How many conversation messages the receivers' records say they took. */
const taken = (d: Durable): number => [...d.receivers.values()].reduce((a, x) => a + x.took.length, 0)

/** Restarts the child (no crash) until every thread has ended. */
async function finish(dir: string): Promise<ChildRun> {
  const r = await runChild(CHILD, [dir])
  expectClean(r)
  return r
}

// ---- the tests ----------------------------------------------------------------------------------

describe('crash during a conversation', () => {
  it(`every message sent is received exactly once and in order, after SIGKILLs at random instants (${RUNS} runs, seed ${seed})`, async () => {
    let kills = 0
    let children = 0
    let midConversation = 0
    await fc.assert(
      // Where to kill each run, in thousandths of the plan's progress lines: unbiased, so kills
      // land all through the conversation rather than mostly at its start.
      fc.asyncProperty(planArb, fc.array(fc.noBias(fc.integer({ min: 1, max: 1000 })), { minLength: 1, maxLength: 3 }), async (plan, at) => {
        const dir = setUp(plan)
        const lines = progressLines(plan)
        let done = false
        for (const f of at) {
          const n = Math.ceil((f * lines) / 1000)
          let progress = 0
          const r = await runChild(CHILD, [dir], { killWhen: (line) => isProgress(line) && ++progress >= n })
          children++
          if (r.killed) {
            if (r.signal !== 'SIGKILL' && !finished(r)) throw new Error(`the weave child was not killed: ${describeRun(r)}`)
            kills++
          } else expectClean(r)
          const d = readDurable(dir)
          expectConsistent(d, plan)
          if (r.killed && d.sent.size > 0 && taken(d) < plan.senders.flat().length) midConversation++
          // Killed just after its last line, it may have finished all the same.
          if (finished(r)) {
            done = true
            break
          }
        }
        if (!done) {
          await finish(dir)
          children++
        }
        expectFinal(readDurable(dir), plan)
      }),
      { numRuns: RUNS, seed },
    )
    console.log(`conversation: ${children} weave processes, ${kills} killed, ${midConversation} kills in the middle of the conversation`)
    expect(kills).toBeGreaterThan(0)
    expect(midConversation).toBeGreaterThan(0)
  }, 60_000 + RUNS * 12_000)

  /**
   * Three senders, each sending three messages to each of three receivers, half of them by name;
   * the second sends in rounds of three at once.
   */
  const plan: Plan = {
    senders: [0, 1, 2].map((s) => [0, 1, 2].flatMap((k) => [0, 1, 2].map((i) => ({ to: (i + s + k) % 3, byName: (i + s) % 2 === 0 })))),
    parallel: [false, true, false],
    receivers: [['any', 'pattern'], ['predicate', 'timed'], ['pattern', 'predicate', 'any']],
  }

  /** The `done` lines of a run: [lib.method, callId, outcome]. */
  function doneLines(r: ChildRun): Array<{ call: string; callId: string; outcome: unknown }> {
    return r.lines
      .filter((l) => l.startsWith('done '))
      .map((l) => {
        const [, call, callId, ...rest] = l.split(' ')
        return { call: call!, callId: callId!, outcome: JSON.parse(rest.join(' ')) as unknown }
      })
  }

  /** Runs to the named crash point; returns the call the weft was completing there, and the state. */
  async function crashAt(point: string): Promise<{ dir: string; crashed: ChildRun; call: { call: string; callId: string; outcome: unknown }; before: Durable }> {
    const dir = setUp(plan)
    const crashed = await runChild(CHILD, [dir], { env: { RAIMENT_CRASH_AT: point } })
    expect(crashed.signal, describeRun(crashed)).toBe('SIGKILL')
    expect(finished(crashed)).toBe(false)
    const n = Number(point.split(':')[1])
    // Every live call is announced, so the n-th one completed is the one at the crash point.
    const done = doneLines(crashed)
    expect(done.length).toBeGreaterThanOrEqual(n)
    const before = readDurable(dir)
    expectConsistent(before, plan)
    // In the middle of the conversation: some messages sent, not all received.
    expect(before.sent.size).toBeGreaterThan(0)
    expect(taken(before)).toBeLessThan(plan.senders.flat().length)
    return { dir, crashed, call: done[n - 1]!, before }
  }

  it.each(['after-call:30', 'after-call:45', 'after-call:60'])(
    'crash point %s: the call completed but was not recorded; its message is neither lost nor doubled, and the call runs again',
    async (point) => {
      const { dir, call, before } = await crashAt(point)
      expect(before.calls.has(call.callId), `${call.call} ${call.callId} is recorded`).toBe(false)
      const outcome = call.outcome as { message?: unknown; n?: number }
      if (call.call === 'mailbox.send') {
        // Sent but not recorded: the message was not delivered either.
        expect(before.inbox.filter((row) => row.msgId === call.callId)).toEqual([])
      } else if ((call.call === 'mailbox.take' || call.call === 'mailbox.takeNumber') && outcome.n !== undefined) {
        // Taken but not recorded: the message is still in the inbox, or it was handed to the
        // waiting receiver in its send's batch, and then that send is not recorded either.
        const msg = outcome.message
        if (!before.inbox.some((row) => row.n === outcome.n)) {
          expect(isConv(msg) && !before.sent.has(keyOf(msg)), `message #${outcome.n} ${JSON.stringify(msg)} is neither in the inbox nor unsent`).toBe(true)
        }
      }
      const r = await finish(dir)
      expect(r.lines).toContain(`call ${call.call} ${call.callId}`)
      expectFinal(readDurable(dir), plan)
    },
  )

  it.each(['after-commit:30', 'after-commit:45', 'after-commit:60'])(
    'crash point %s: the outcome was durable, the thread had not seen it; on restart it is replayed, not run again',
    async (point) => {
      const { dir, call, before } = await crashAt(point)
      expect(before.calls.has(call.callId), `${call.call} ${call.callId} is recorded`).toBe(true)
      const outcome = call.outcome as { message?: unknown; n?: number }
      if (call.call === 'mailbox.send') {
        // Delivered in the same commit as the record: in the inbox, or taken in that commit by a
        // receiver that was waiting for it.
        const key = [...before.sent].find(([, id]) => id === call.callId)?.[0]
        const tookIt = [...before.receivers.values()].some((r) => r.took.some((m) => keyOf(m) === key))
        expect(before.inbox.filter((row) => row.msgId === call.callId)).toHaveLength(tookIt ? 0 : 1)
      } else if ((call.call === 'mailbox.take' || call.call === 'mailbox.takeNumber') && outcome.n !== undefined) {
        expect(before.inbox.map((row) => row.n)).not.toContain(outcome.n)
      }
      const r = await finish(dir)
      expect(r.lines.filter((l) => l.endsWith(` ${call.callId}`) && l.startsWith('call '))).toEqual([])
      expectFinal(readDurable(dir), plan)
    },
  )
})

/**
 * Selective receive and timeouts, live against a model, and replayed from the dump.
 *
 * fast-check generates messages from several senders in an arrival order, cut into batches, and a
 * sequence of receives (any message, a pattern object, a predicate; with or without a timeout of
 * 0..20 ms). The test delivers the first batch, spawns a receiver thread that performs the
 * receives and then drains its inbox, and delivers each further batch only when the receiver is
 * waiting in a receive without a timeout (told by the mailbox, not guessed from time), so what
 * every receive returns follows from the scenario alone:
 *
 * - a receive returns the first message, in arrival order, that matches; the others stay in the
 *   inbox, in order;
 * - a receive with a timeout that finds no match times out (nothing is delivered while it waits);
 * - a receive without one waits for the next batch.
 *
 * The receiver's dump is then replayed (`replay` from raiment/testing): the same result, and the
 * same requests in the same order as the live run made.
 *
 * Reproduce a failure with FC_SEED=<seed>.
 */
import fc from 'fast-check'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { thread, TIMED_OUT, Weave, type ThreadEnd, type WeaveConfig } from 'raiment'
import { replay } from 'raiment/testing'
import mailbox, { threadSide } from '../io-libs/mailbox.js'
import { makeDump } from '../src/dump.js'
import { tempDir } from './support/tmp.js'

const seed = process.env['FC_SEED'] !== undefined ? Number(process.env['FC_SEED']) : Date.now() % 2 ** 31
const RUNS = Number(process.env['RECEIVE_RUNS'] ?? 100)
console.log(`receive: fast-check seed ${seed}, ${RUNS} runs (FC_SEED=${seed} to reproduce)`)

// ---- scenarios ----------------------------------------------------------------------------------

type Sender = 'a' | 'b' | 'c'
type Tag = 'x' | 'y'

interface Msg {
  from: Sender
  /** The sender's sequence number. */
  k: number
  tag: Tag
  meta: { p: 0 | 1 }
}

type Pattern = { from: Sender } | { tag: Tag } | { from: Sender; tag: Tag } | { meta: { p: 0 | 1 } } | { from: Sender; meta: { p: 0 | 1 } } | { k: number }

type Pred = { pred: 'kAtLeast'; n: number } | { pred: 'fromIn'; senders: Sender[] } | { pred: 'notTag'; tag: Tag } | { pred: 'pIsOne' }

type Match = { any: true } | { pattern: Pattern } | Pred

interface Rx {
  match: Match
  timeout?: number
}

interface Scenario {
  /** Messages in arrival order, in batches; batch 0 is there before the receiver starts. */
  batches: Msg[][]
  receives: Rx[]
}

const sender = fc.constantFrom<Sender>('a', 'b', 'c')
const tag = fc.constantFrom<Tag>('x', 'y')
const p = fc.constantFrom<0 | 1>(0, 1)

const patternArb: fc.Arbitrary<Pattern> = fc.oneof(
  fc.record({ from: sender }),
  fc.record({ tag }),
  fc.record({ from: sender, tag }),
  fc.record({ meta: fc.record({ p }) }),
  fc.record({ from: sender, meta: fc.record({ p }) }),
  fc.record({ k: fc.integer({ min: 0, max: 3 }) }),
)

const predArb: fc.Arbitrary<Pred> = fc.oneof(
  fc.record({ pred: fc.constant('kAtLeast' as const), n: fc.integer({ min: 0, max: 4 }) }),
  fc.record({ pred: fc.constant('fromIn' as const), senders: fc.subarray<Sender>(['a', 'b', 'c']) }),
  fc.record({ pred: fc.constant('notTag' as const), tag }),
  fc.record({ pred: fc.constant('pIsOne' as const) }),
)

const rxArb: fc.Arbitrary<Rx> = fc
  .record({
    match: fc.oneof(fc.constant({ any: true as const }), patternArb.map((pattern) => ({ pattern })), predArb),
    timeout: fc.option(fc.integer({ min: 0, max: 20 }), { nil: undefined, freq: 2 }),
  })
  .map(({ match, timeout }) => (timeout === undefined ? { match } : { match, timeout }))

const scenarioArb: fc.Arbitrary<Scenario> = fc
  .record({
    arrivals: fc.array(fc.record({ from: sender, tag, p, cut: fc.integer({ min: 0, max: 2 }).map((n) => n === 0) }), { maxLength: 16 }),
    receives: fc.array(rxArb, { minLength: 1, maxLength: 10 }),
  })
  .map(({ arrivals, receives }) => {
    const next: Record<Sender, number> = { a: 0, b: 0, c: 0 }
    const batches: Msg[][] = [[]]
    for (const a of arrivals) {
      if (a.cut) batches.push([])
      batches[batches.length - 1]!.push({ from: a.from, k: next[a.from]++, tag: a.tag, meta: { p: a.p } })
    }
    return { batches, receives }
  })

/** The predicate a `Pred` names (the thread and the model build it the same way). */
function predicate(pr: Pred): (m: Msg) => boolean {
  switch (pr.pred) {
    case 'kAtLeast':
      return (m) => m.k >= pr.n
    case 'fromIn':
      return (m) => pr.senders.includes(m.from)
    case 'notTag':
      return (m) => m.tag !== pr.tag
    case 'pIsOne':
      return (m) => m.meta.p === 1
  }
}

// ---- the model ----------------------------------------------------------------------------------

/** Deep partial equality, written for the model independently of the library's `matches`. */
function fits(value: unknown, pattern: unknown): boolean {
  if (typeof pattern !== 'object' || pattern === null) return value === pattern
  if (typeof value !== 'object' || value === null) return false
  return Object.entries(pattern).every(([k, v]) => fits((value as Record<string, unknown>)[k], v))
}

function test(match: Match, m: Msg): boolean {
  if ('any' in match) return true
  if ('pattern' in match) return fits(m, match.pattern)
  return predicate(match)(m)
}

type Got = Msg | 'timed out'

interface Expected {
  /** The receives the thread can complete (the scenario's, cut before one that would wait forever). */
  receives: Rx[]
  got: Got[]
  /** What is left in the inbox at the end, in order. */
  rest: Msg[]
  /** How many batches are delivered in all. */
  delivered: number
}

function model(s: Scenario): Expected {
  const inbox = [...s.batches[0]!]
  let delivered = 1
  const got: Got[] = []
  let done = 0
  outer: for (const rx of s.receives) {
    const before = { inbox: [...inbox], delivered }
    for (;;) {
      const i = inbox.findIndex((m) => test(rx.match, m))
      if (i >= 0) {
        got.push(inbox.splice(i, 1)[0]!)
        break
      }
      if (rx.timeout !== undefined) {
        got.push('timed out')
        break
      }
      // Waits: the next batch is delivered. With none left it would wait forever: the thread
      // stops before this receive, and the batches delivered for it never are.
      if (delivered === s.batches.length) {
        inbox.splice(0, inbox.length, ...before.inbox)
        delivered = before.delivered
        break outer
      }
      inbox.push(...s.batches[delivered++]!)
    }
    done++
  }
  return { receives: s.receives.slice(0, done), got, rest: inbox, delivered }
}

// ---- the thread ---------------------------------------------------------------------------------

const receiver = thread({
  uses: ['mailbox'],
  async does(params: { receives: Rx[] }) {
    const got: Got[] = []
    for (const rx of params.receives) {
      const match = 'any' in rx.match ? undefined : 'pattern' in rx.match ? rx.match.pattern : predicate(rx.match)
      const m = await this.mailbox.receive<Msg>({ ...(match === undefined ? {} : { match }), ...(rx.timeout === undefined ? {} : { timeout: rx.timeout }) })
      got.push(m === TIMED_OUT ? 'timed out' : m)
    }
    const rest: Msg[] = []
    for (;;) {
      const m = await this.mailbox.receive<Msg>({ timeout: 0 })
      if (m === TIMED_OUT) return { got, rest }
      rest.push(m)
    }
  },
})

// ---- a watched mailbox --------------------------------------------------------------------------

interface LiveCall {
  call: string
  args: unknown[]
}

/**
 * The real mailbox library, which also tells the test (an event, not a guess from time) when a
 * receive without a timeout is waiting for a message, and logs every live call.
 */
class Watch {
  readonly log: LiveCall[] = []
  /** Untimed takes and peeks in flight. */
  readonly waiting = new Set<object>()
  #signals: object[] = []
  #wake: (() => void) | null = null

  library() {
    return {
      default: (config: WeaveConfig) => {
        const real = mailbox(config)
        const watched = <T>(call: string, args: unknown[], untimed: boolean, p: Promise<T>): Promise<T> => {
          this.log.push({ call: `mailbox.${call}`, args })
          if (!untimed) return p
          const token = {}
          this.waiting.add(token)
          const settled = (): void => void this.waiting.delete(token)
          p.then(settled, settled)
          // A take or peek that has a message to return has resolved by now; one still in flight
          // waits for a delivery, and only the test delivers.
          setImmediate(() => {
            if (!this.waiting.has(token)) return
            this.#signals.push(token)
            this.#wake?.()
          })
          return p
        }
        return {
          ...real,
          send: (to: string, message: unknown) => (this.log.push({ call: 'mailbox.send', args: [to, message] }), real.send(to, message)),
          take: (opts: { match?: unknown; until?: number }) => watched('take', [opts], opts.until === undefined, real.take(opts)),
          peek: (after: number, until?: number) => watched('peek', until === undefined ? [after] : [after, until], until === undefined, real.peek(after, until)),
          takeNumber: (n: number) => (this.log.push({ call: 'mailbox.takeNumber', args: [n] }), real.takeNumber(n)),
          now: () => (this.log.push({ call: 'mailbox.now', args: [] }), real.now()),
        }
      },
      threadSide,
    }
  }

  /** Resolves with a call that is waiting for a message (once per such call). */
  async nextWait(): Promise<object> {
    for (;;) {
      const s = this.#signals.shift()
      if (s !== undefined) {
        if (this.waiting.has(s)) return s
        continue
      }
      await new Promise<void>((r) => (this.#wake = r))
      this.#wake = null
    }
  }
}

const immediate = (): Promise<void> => new Promise((r) => setImmediate(r))

/**
 * Delivers the batches after the first, one whenever the receiver waits for a message, until it
 * ends. Returns how it ended and how many batches were delivered.
 */
async function drive(weave: Weave, id: string, batches: Msg[][], watch: Watch): Promise<{ end: ThreadEnd; delivered: number }> {
  let end: ThreadEnd | null = null
  const ended = weave.join(id).then((e) => (end = e))
  let delivered = 1
  let waiter: object | null = null
  for (;;) {
    if (waiter === null) {
      const w = await Promise.race([ended.then(() => null), watch.nextWait()])
      if (end !== null || w === null) return { end: end!, delivered }
      waiter = w
    }
    if (delivered === batches.length) throw new Error('the receiver waits for a message, but every batch was delivered: the model says it would not wait here')
    for (const m of batches[delivered++]!) weave.send(id, m)
    await weave.committed()
    await immediate()
    // Still waiting (nothing in that batch matched a pattern)? Then deliver the next one at once.
    if (!watch.waiting.has(waiter)) waiter = null
  }
}

// ---- the property -------------------------------------------------------------------------------

describe('selective receive', () => {
  it(`takes the first match in arrival order, times out when nothing matches, and replays exactly (${RUNS} runs, seed ${seed})`, async () => {
    let timedOut = 0
    let waited = 0
    let taken = 0
    await fc.assert(
      fc.asyncProperty(scenarioArb, async (s) => {
        const expected = model(s)
        const watch = new Watch()
        const weave = await Weave.open({
          db: join(tempDir('raiment-receive-'), 'w.db'),
          durability: 'memory',
          threads: { receiver },
          libraries: { mailbox: watch.library() },
          ioLibs: false,
          dumps: false,
        })
        try {
          const id = weave.spawn('receiver', { receives: expected.receives })
          for (const m of s.batches[0]!) weave.send(id, m)
          const { end, delivered } = await drive(weave, id, s.batches, watch)
          expect(end.status, end.status === 'failed' ? end.error.stack : '').toBe('done')
          const result = (end as Extract<ThreadEnd, { status: 'done' }>).result
          expect(result).toEqual({ got: expected.got, rest: expected.rest })
          expect(delivered).toBe(expected.delivered)

          const dump = makeDump(weave.journal, id)
          // Every live call is in the record, once, in the order it was made.
          expect(dump.entries.map((e) => ({ call: e.call, args: e.args }))).toEqual(watch.log)
          const again = await replay(receiver, dump)
          expect(again.status).toBe('done')
          expect(again.result).toEqual(result)
          expect(again.calls.map((c) => ({ call: c.call, args: c.args }))).toEqual(watch.log)

          await weave.committed()
          expect(weave.journal.db.prepare('SELECT count(*) AS n FROM inbox').get()).toEqual({ n: 0 })
          expect(weave.journal.db.prepare('SELECT count(*) AS n FROM dead_letters').get()).toEqual({ n: 0 })
          timedOut += expected.got.filter((g) => g === 'timed out').length
          taken += expected.got.length - expected.got.filter((g) => g === 'timed out').length
          waited += expected.delivered - 1
        } finally {
          await weave.close()
        }
      }),
      { numRuns: RUNS, seed },
    )
    console.log(`receive: ${taken} messages taken, ${timedOut} receives timed out, ${waited} batches delivered to a waiting receiver`)
    expect(timedOut).toBeGreaterThan(0)
    expect(waited).toBeGreaterThan(0)
  }, 120_000)

  it('a timeout longer than a timer can hold (24.8 days) still waits, and replays so', async () => {
    const patient = thread({
      uses: ['mailbox'],
      async does() {
        const m = await this.mailbox.receive({ timeout: 30 * 24 * 3600 * 1000 })
        return m === TIMED_OUT ? 'timed out' : m
      },
    })
    const weave = await Weave.open({ db: join(tempDir('raiment-receive-'), 'w.db'), durability: 'memory', threads: { patient }, ioLibs: false, dumps: false })
    const id = weave.spawn('patient')
    // Not a synchronisation: the claim is that 30 days have not passed 50 ms from now.
    await new Promise((r) => setTimeout(r, 50))
    weave.send(id, 'in time')
    const end = await weave.join(id)
    expect(end).toMatchObject({ status: 'done', result: 'in time' })
    const dump = makeDump(weave.journal, id)
    await weave.close()
    expect((await replay(patient, dump)).result).toBe('in time')
  })
})

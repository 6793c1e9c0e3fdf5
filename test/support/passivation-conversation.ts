/**
 * The conversations of the passivation property tests (test/passivation.property.test.ts and its
 * crash variant, through test/support/passivation-conversation-child.ts): a conductor spawns
 * actors and hands them a token that visits them in an order fast-check chooses; the holder of
 * the token acts (sends extra messages to actors it will visit later, receives extras
 * selectively, with a timeout, sleeps, spawns a linked child that may fail, whose exit it traps),
 * then passes the token on. Every send happens while its sender holds the token, so what each
 * inbox holds when its thread receives follows from the conversation alone, whatever the timing.
 */
import fc from 'fast-check'
import { thread, TIMED_OUT, type Weave } from 'raiment'

export type Tag = 'x' | 'y'
export type Action =
  | { k: 'send'; to: number; tag: Tag }
  | { k: 'recv'; how: 'any' | 'pattern' | 'pred'; tag: Tag; from: number }
  | { k: 'sleep'; ms: number }
  | { k: 'child'; fail: boolean }

export interface Visit {
  actor: number
  actions: Action[]
}

export interface Conversation {
  actors: number
  visits: Visit[]
}

export interface Extra {
  extra: true
  from: number
  tag: Tag
  n: number
}

export const conversationArb: fc.Arbitrary<Conversation> = fc
  .record({
    actors: fc.integer({ min: 2, max: 4 }),
    order: fc.array(fc.nat(), { minLength: 2, maxLength: 8 }),
    acts: fc.array(
      fc.array(
        fc.oneof(
          fc.record({ k: fc.constant('send' as const), to: fc.nat(), tag: fc.constantFrom<Tag>('x', 'y') }),
          fc.record({ k: fc.constant('send' as const), to: fc.nat(), tag: fc.constantFrom<Tag>('x', 'y') }),
          fc.record({ k: fc.constant('recv' as const), how: fc.constantFrom('any' as const, 'pattern' as const, 'pred' as const), tag: fc.constantFrom<Tag>('x', 'y'), from: fc.nat() }),
          fc.record({ k: fc.constant('sleep' as const), ms: fc.integer({ min: 0, max: 12 }) }),
          fc.record({ k: fc.constant('child' as const), fail: fc.boolean() }),
        ),
        { maxLength: 4 },
      ),
      { minLength: 8, maxLength: 8 },
    ),
  })
  .map(({ actors, order, acts }) => {
    const who = order.map((o) => o % actors)
    const visits: Visit[] = who.map((actor, i) => {
      const later = new Set(who.slice(i + 1))
      const actions: Action[] = []
      for (const a of acts[i]!) {
        if (a.k === 'send') {
          // Only to an actor visited later: it is still there to take or drain it.
          const to = [...later].filter((b) => b !== actor)[a.to % Math.max(1, later.size)]
          if (to !== undefined) actions.push({ ...a, to })
        } else if (a.k === 'recv') actions.push({ ...a, from: a.from % actors })
        else actions.push(a)
      }
      return { actor, actions }
    })
    return { actors, visits }
  })

const TIMEOUT = 15

export const child = thread({
  uses: ['mailbox', 'threads'],
  async does(p: { fail: boolean }) {
    const self = await this.threads.self()
    const go = (await this.mailbox.receive<{ go: string }>({ match: { go: self } })) as { go: string; parent: string }
    await this.mailbox.send(go.parent, { fromChild: self })
    if (p.fail) throw new Error(`child ${self} fails`)
    return 'ok'
  },
})

export const actor = thread({
  uses: ['mailbox', 'threads', 'clock'],
  async does(p: { me: number; visits: Visit[] }) {
    await this.threads.trapExits(true)
    const self = await this.threads.self()
    const { ids } = (await this.mailbox.receive({ match: { idsFor: p.me } })) as unknown as { ids: string[] }
    const got: unknown[] = []
    let sent = 0
    const mine = p.visits.map((v, i) => ({ v, i })).filter((x) => x.v.actor === p.me)
    const last = mine.length === 0 ? -1 : mine[mine.length - 1]!.i
    for (const { v, i } of mine) {
      await this.mailbox.receive({ match: { token: i } })
      for (const a of v.actions) {
        if (a.k === 'send') await this.mailbox.send(ids[a.to]!, { extra: true, from: p.me, tag: a.tag, n: sent++ } satisfies Extra)
        else if (a.k === 'recv') {
          const opts =
            a.how === 'any' ? { timeout: TIMEOUT } : a.how === 'pattern' ? { match: { extra: true, tag: a.tag, from: a.from }, timeout: TIMEOUT } : { match: (m: Extra) => m.extra && m.tag === a.tag && m.n % 2 === 0, timeout: TIMEOUT }
          const m = await this.mailbox.receive<Extra>(opts)
          got.push(m === TIMED_OUT ? 'timed out' : m)
        } else if (a.k === 'sleep') {
          await this.clock.sleep(a.ms)
          got.push(`slept ${a.ms}`)
        } else {
          const c = await this.threads.spawn('child', { fail: a.fail })
          await this.threads.link(c)
          await this.mailbox.send(c, { go: c, parent: self })
          await this.mailbox.receive({ match: { fromChild: c } })
          const exit = (await this.mailbox.receive({ match: { exit: c } })) as unknown as { status: string; error?: { message: string } }
          got.push(`child ${exit.status}${exit.error ? `: ${exit.error.message.replace(c, 'C')}` : ''}`)
        }
      }
      if (i === last) {
        for (;;) {
          const m = await this.mailbox.receive({ timeout: 0 })
          if (m === TIMED_OUT) break
          got.push({ drained: m })
        }
      }
      if (i + 1 < p.visits.length) await this.mailbox.send(ids[p.visits[i + 1]!.actor]!, { token: i + 1 })
    }
    return got
  },
})

export const conductor = thread({
  uses: ['mailbox', 'threads'],
  async does(c: Conversation) {
    const ids: string[] = []
    for (let a = 0; a < c.actors; a++) ids.push(await this.threads.spawn('actor', { me: a, visits: c.visits }))
    for (let a = 0; a < ids.length; a++) await this.mailbox.send(ids[a]!, { idsFor: a, ids })
    await this.mailbox.send(ids[c.visits[0]!.actor]!, { token: 0 })
    const results: unknown[] = []
    for (const id of ids) {
      const exit = (await this.mailbox.receive({ match: { exit: id } })) as unknown as { status: string; result?: unknown; error?: unknown }
      results.push(exit.status === 'done' ? exit.result : exit)
    }
    return results
  },
})

/** What each thread took from its mailbox, in order, with its type and status (ids are the same from run to run). */
export function receivedBy(weave: Weave): string[][] {
  const db = weave.journal.db
  const received: string[][] = []
  for (const t of weave.journal.threads()) {
    const rows = db.prepare("SELECT outcome FROM journal WHERE thread = ? AND (key LIKE 'mailbox.take:%' OR key LIKE 'mailbox.takeNumber:%') ORDER BY seq").pluck().all(t.id) as string[]
    received.push([t.id, t.type, t.status, ...rows.map((r) => r.replace(/"n":\d+,/, ''))])
  }
  return received
}

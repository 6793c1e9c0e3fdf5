/**
 * What the crash-test child runs: worker threads that follow a plan (groups of calls, run one
 * group after another, the calls of a group in parallel with Promise.all), and the `fx` library
 * they call, whose `incr` adds to a counter in a separate SQLite file using the call id as its
 * idempotency key. Every attempt is recorded too, so a test can tell "attempted twice" (a call in
 * flight at a crash runs again) from "applied twice" (a lost or duplicated effect).
 *
 * Each call also carries how many outcomes its thread had seen when it made it, and the library
 * checks, on a connection of its own, that the journal already holds that many for the thread:
 * a thread must act only on outcomes that are durable.
 */
import Database from 'better-sqlite3'
import { callContext, thread } from 'raiment'

export type PlanCall =
  | { kind: 'echo'; v: string; delay: number }
  | { kind: 'incr'; counter: string; amount: number; delay: number }

/** One thread's plan: groups run in sequence; the calls of a group run in parallel. */
export type Plan = PlanCall[][]

export interface FxApi {
  echo(v: string, delay: number, seen: number): Promise<string>
  incr(counter: string, amount: number, delay: number, seen: number): Promise<string>
}

declare module 'raiment' {
  interface Libraries {
    fx: FxApi
  }
}

export const worker = thread({
  uses: ['fx'],
  async does(p: { plan: Plan }) {
    const out: string[][] = []
    let seen = 0
    const saw = (v: string): string => (seen++, v)
    for (const group of p.plan) {
      out.push(
        await Promise.all(
          group.map((c) => (c.kind === 'echo' ? this.fx.echo(c.v, c.delay, seen) : this.fx.incr(c.counter, c.amount, c.delay, seen)).then(saw)),
        ),
      )
    }
    return out
  },
})

/** The result an uninterrupted run of a plan gives. */
export function expectedResult(plan: Plan): string[][] {
  return plan.map((g) => g.map((c) => (c.kind === 'echo' ? c.v : `${c.counter}+${c.amount}`)))
}

/** The value of each counter once every plan has run to the end, each effect applied once. */
export function expectedCounters(plans: Plan[]): Record<string, number> {
  const out: Record<string, number> = {}
  for (const plan of plans) for (const g of plan) for (const c of g) if (c.kind === 'incr') out[c.counter] = (out[c.counter] ?? 0) + c.amount
  return out
}

export const EFFECTS_SCHEMA = `
  CREATE TABLE IF NOT EXISTS attempts (n INTEGER PRIMARY KEY, call_id TEXT NOT NULL, method TEXT NOT NULL, pid INTEGER NOT NULL);
  CREATE TABLE IF NOT EXISTS applied (call_id TEXT PRIMARY KEY, counter TEXT NOT NULL, amount INTEGER NOT NULL);
  CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
`

/**
 * The `fx` library over an effects database. Each method records its attempt and (incr) applies
 * its effect at once, in one transaction, then answers after `delay` ms; `say` is told of every
 * invocation and of every answer (the child prints them: they are the progress lines), and of
 * a call made by a thread that had seen outcomes not yet committed (`not-durable ...`).
 */
export function fxLibrary(file: string, say: (line: string) => void): FxApi {
  let journal: Database.Statement<[string], number> | null = null
  const checkSeen = (seen: number): void => {
    const { callId, threadId, config } = callContext()
    journal ??= new Database(config.db, { readonly: true }).prepare<[string], number>('SELECT count(*) FROM journal WHERE thread = ?').pluck()
    const committed = journal.get(threadId)!
    if (committed < seen) say(`not-durable ${callId} seen=${seen} committed=${committed}`)
  }
  const db = new Database(file)
  db.pragma('journal_mode = WAL')
  db.pragma('synchronous = FULL')
  db.exec(EFFECTS_SCHEMA)
  const attempt = db.prepare('INSERT INTO attempts (call_id, method, pid) VALUES (?, ?, ?)')
  const apply = db.prepare('INSERT OR IGNORE INTO applied (call_id, counter, amount) VALUES (?, ?, ?)')
  const add = db.prepare('INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = value + excluded.value')
  const incr = db.transaction((callId: string, counter: string, amount: number) => {
    attempt.run(callId, 'incr', process.pid)
    if (apply.run(callId, counter, amount).changes === 1) add.run(counter, amount)
  })
  const answer = <T>(callId: string, delay: number, v: T): Promise<T> =>
    new Promise((resolve) =>
      setTimeout(() => {
        say(`done ${callId}`)
        resolve(v)
      }, delay),
    )
  return {
    echo(v, delay, seen) {
      checkSeen(seen)
      const { callId } = callContext()
      say(`call ${callId}`)
      attempt.run(callId, 'echo', process.pid)
      return answer(callId, delay, v)
    },
    incr(counter, amount, delay, seen) {
      checkSeen(seen)
      const { callId } = callContext()
      say(`call ${callId}`)
      incr(callId, counter, amount)
      return answer(callId, delay, `${counter}+${amount}`)
    },
  }
}

/**
 * Threads of the continue-as-new tests (test/continue-as-new.test.ts, and the crash test's child
 * test/support/continue-child.ts):
 * - `actor` receives `{ n }` messages and keeps them in its params; every `every` messages it
 *   continues as new with what it has, so its record never holds more than one stretch. On
 *   `{ stop: true }` it returns all it received and how many runs it made. At the start of each
 *   run it makes a call with the same arguments in every run (`cfx.tick()`, and a 'tick' message
 *   to `log` if given): the same key and ordinal each run, so only the call-id scope keeps them
 *   apart.
 *   With `name`, it registers that name at the start of each run.
 * - `feeder` sends `{ n: 0 }` … `{ n: count - 1 }` to `to`, then `{ stop: true }`, then joins it
 *   (a join across its continues; `join`: its id, where `to` is a name) and returns what it ended with.
 * - `monitorer` monitors a thread and returns the first message it gets (then a second one would
 *   be a dead letter).
 * - `logger` counts the messages it receives until `{ stop: true }`.
 */
import Database from 'better-sqlite3'
import { callContext, thread } from 'raiment'

export interface ActorParams {
  every: number
  got: number[]
  runs: number
  log?: string
  /** A name it registers at the start of each run (it holds it already after the first). */
  name?: string
}

export interface ActorResult {
  got: number[]
  runs: number
}

export interface ContinueFx {
  /** Applied once per call id (the effects file); answers how many times it was applied in all. */
  tick(): Promise<number>
  /** A message was received (prints a progress line live). */
  seen(n: number): Promise<void>
}

declare module 'raiment' {
  interface Libraries {
    cfx: ContinueFx
  }
}

export const actor = thread({
  uses: ['mailbox', 'threads', 'registry', 'cfx'],
  async does(p: ActorParams): Promise<ActorResult> {
    if (p.name !== undefined) await this.registry.register(p.name)
    await this.cfx.tick()
    if (p.log !== undefined) await this.mailbox.send(p.log, 'tick')
    const got = [...p.got]
    for (let i = 0; i < p.every; i++) {
      const m = await this.mailbox.receive<{ n: number } | { stop: true }>()
      if (typeof m === 'object' && m !== null && 'stop' in m) return { got, runs: p.runs }
      const n = m.n
      await this.cfx.seen(n)
      got.push(n)
    }
    return this.threads.continueAsNew({ ...p, got, runs: p.runs + 1 })
  },
})

export const feeder = thread({
  uses: ['mailbox', 'threads'],
  async does(p: { to: string; count: number; join?: string }) {
    for (let n = 0; n < p.count; n++) await this.mailbox.send(p.to, { n })
    await this.mailbox.send(p.to, { stop: true })
    return this.threads.join(p.join ?? p.to)
  },
})

/** Monitors `target` and returns the first message it gets: the exit message of its real end. */
export const monitorer = thread({
  uses: ['mailbox', 'threads'],
  async does(p: { target: string }) {
    await this.threads.monitor(p.target)
    return this.mailbox.receive()
  },
})

export const logger = thread({
  uses: ['mailbox'],
  async does() {
    let count = 0
    for (;;) {
      const m = await this.mailbox.receive()
      if (typeof m === 'object' && m !== null && 'stop' in m) return count
      count++
    }
  },
})

/** The `cfx` library, its effects in SQLite file `file`, its progress lines to `say`. */
export function fxLibrary(file: string, say: (line: string) => void = () => {}): Record<string, unknown> {
  const db = new Database(file)
  db.pragma('journal_mode = WAL')
  db.exec('CREATE TABLE IF NOT EXISTS ticks (call_id TEXT PRIMARY KEY, thread TEXT NOT NULL)')
  const add = db.prepare('INSERT OR IGNORE INTO ticks (call_id, thread) VALUES (?, ?)')
  const count = db.prepare('SELECT count(*) FROM ticks').pluck()
  return {
    async tick() {
      const { callId, threadId } = callContext()
      add.run(callId, threadId)
      say(`tick ${callId}`)
      return count.get() as number
    },
    async seen(n: number) {
      say(`seen ${n}`)
    },
  }
}

/** The call ids `cfx.tick` applied, in the effects file. */
export function ticks(file: string): string[] {
  const db = new Database(file, { readonly: true })
  try {
    return db.prepare('SELECT call_id FROM ticks ORDER BY rowid').pluck().all() as string[]
  } finally {
    db.close()
  }
}

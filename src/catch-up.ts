/**
 * Order kept for a thread that moved onto the weave of those sending to it. A weave's sends to a
 * thread of another weave go through that weave's queue (and on along its forwards); once the
 * thread has arrived here, a send made here would reach its inbox at once, ahead of what was sent
 * from here before and may still be on its way through the weave it left. So:
 *
 * - On arrival, a fence (`{ k: 'fence' }`) goes the way those sends took (to the weave the thread
 *   was reached through); each weave passes it on as a message, along its forwards, so it comes
 *   back here after everything sent that way before it. Meanwhile the thread is catching up
 *   (table `catch_up`).
 * - Sends from here to it are held (table `catch_up_held`, in order) while it catches up; when
 *   the fence comes back they go into its inbox, after all that came that way. So are messages
 *   for it sent straight from the weave of their sender, but the one the fence went to: that
 *   sender may have sent it one before, which this weave forwarded that way (the thread was
 *   there then), and which comes back behind them (src/messages.ts `receive`). What comes back
 *   that way comes ahead of the fence: it goes in at once.
 * - A fence that has not come back after `catchUp.ms` (10 s; the weave it went to is down, or gone)
 *   lets them go all the same: the order is given up, not the messages. So is a thread that
 *   moves on before it caught up: they go into its inbox first, to travel with it.
 * The arrival, a send and a fence's return are each queued in one batch with what they carry: a
 * crash leaves nothing half done. A restart picks up the rows, and gives each catch-up
 * `catchUp.ms` again from when the weave runs its threads.
 */
import { randomUUID } from 'node:crypto'
import type Database from 'better-sqlite3'
import type { Journal } from './journal.js'
import type { Envelope } from './message-shapes.js'

type Stmt = Database.Statement<unknown[]>
export type Fence = Extract<Envelope, { k: 'fence' }>

/** A message held for a thread catching up: sender, body, id, trace context. */
type Held = [from: string | null, body: string, msgId: string, trace: string | null]

/** How long a thread catches up at most (its fence not back): then what was held for it goes in. (A test may shorten it.) */
export const catchUp = { ms: 10_000 }

export interface CatchUpHost {
  /** Queues an envelope for weave `dest` (src/messages.ts `outbox`). */
  outbox(dest: string, msgId: string, envelope: Envelope): void
  /** Delivers a held message to its thread here (its inbox, or the dead letters if it ended). */
  deliver(from: string | null, thread: string, body: string, msgId: string, trace: string | null): void
  /** Puts a held message into its thread's inbox as it is (the thread is stopped, to move on). */
  put(from: string | null, thread: string, body: string, msgId: string, trace: string | null): void
}

export class CatchUps {
  readonly #journal: Journal
  readonly #host: CatchUpHost
  /** Threads catching up: thread → the weave its fence went to, its id, what is held for it, and the timer that gives up on it (null: not armed yet, or stopped). */
  readonly #by = new Map<string, { via: string; fence: string; held: Held[]; timer: NodeJS.Timeout | null }>()
  readonly #set: Stmt
  readonly #del: Stmt
  readonly #hold: Stmt
  readonly #dropHeld: Stmt

  constructor(journal: Journal, host: CatchUpHost) {
    this.#journal = journal
    this.#host = host
    const db = journal.db
    this.#set = db.prepare('INSERT OR REPLACE INTO catch_up (thread, via, fence, since) VALUES (?, ?, ?, ?)')
    this.#del = db.prepare('DELETE FROM catch_up WHERE thread = ?')
    this.#hold = db.prepare('INSERT INTO catch_up_held (thread, sender, body, msg_id, at, trace) VALUES (?, ?, ?, ?, ?, ?)')
    this.#dropHeld = db.prepare('DELETE FROM catch_up_held WHERE thread = ?')
    const held = db.prepare('SELECT sender, body, msg_id, trace FROM catch_up_held WHERE thread = ? ORDER BY n').raw(true)
    // Left by an earlier run: armed by `start`, once the weave runs its threads.
    for (const [thread, via, fence] of db.prepare('SELECT thread, via, fence FROM catch_up').raw(true).all() as Array<[string, string, string]>) {
      this.#by.set(thread, { via, fence, held: held.all(thread) as Held[], timer: null })
    }
  }

  /**
   * The weave runs its threads: the catch-ups an earlier run left give up `catchUp.ms` from now
   * (their fences may come back once the transport runs), not at once.
   */
  start(): void {
    for (const [thread, c] of this.#by) if (c.timer === null) c.timer = this.#timer(thread)
  }

  /** Is `thread` catching up here (a send to it is held)? */
  has(thread: string): boolean {
    return this.#by.has(thread)
  }

  /**
   * Is a message for `thread` from weave `sender` (null: not known) to be held: it catches up,
   * and the message did not come from the weave its fence went to?
   */
  holdsFrom(thread: string, sender: string | null): boolean {
    const c = this.#by.get(thread)
    return c !== undefined && c.via !== sender
  }

  /** `thread` arrived here; sends from here reached it through weave `via`: a fence goes that way. */
  begin(thread: string, via: string): void {
    const fence = `fence:${thread}:${randomUUID()}`
    this.#journal.queue(this.#set, [thread, via, fence, Date.now()])
    this.#host.outbox(via, fence, { k: 'fence', target: thread, back: this.#journal.weaveId, fence })
    this.#by.set(thread, { via, fence, held: [], timer: this.#timer(thread) })
  }

  /** A send from here to `thread`, which catches up: held until it has. */
  hold(thread: string, from: string | null, body: string, msgId: string, trace: string | null): void {
    this.#by.get(thread)!.held.push([from, body, msgId, trace])
    this.#journal.queue(this.#hold, [thread, from, body, msgId, Date.now(), trace])
  }

  /** Fence `f` came back here: its thread has caught up if it is its fence (else it is stale). */
  returned(f: Fence): void {
    if (this.#by.get(f.target)?.fence === f.fence) this.end(f.target)
  }

  /**
   * `thread` catches up no more (it has, or its fence is overdue; or `moving`: it is stopped to
   * move on): what was held for it goes into its inbox.
   */
  end(thread: string, moving = false): void {
    const c = this.#by.get(thread)
    if (c === undefined) return
    if (c.timer !== null) clearTimeout(c.timer)
    this.#by.delete(thread)
    for (const [from, body, msgId, trace] of c.held) {
      if (moving) this.#host.put(from, thread, body, msgId, trace)
      else this.#host.deliver(from, thread, body, msgId, trace)
    }
    this.#journal.queue(this.#dropHeld, [thread])
    this.#journal.queue(this.#del, [thread])
  }

  /** Stops the timers (the weave closes; the rows stay for the next run). */
  stop(): void {
    for (const c of this.#by.values()) {
      if (c.timer !== null) clearTimeout(c.timer)
      c.timer = null
    }
  }

  #timer(thread: string): NodeJS.Timeout {
    const timer = setTimeout(() => this.end(thread), catchUp.ms)
    timer.unref()
    return timer
  }
}

/**
 * Order kept for a thread that moved onto the weave of those sending to it. A weave's sends to a
 * thread of another weave go through that weave's queue (and on along its forwards); once the
 * thread has arrived here, a send made here would reach its inbox at once, ahead of what was sent
 * from here before and is still on its way through the weave it left. So, until that way is
 * known empty, sends from here to it still take it (and are forwarded back here after the rest).
 *
 * - On arrival: a fence (`{ k: 'fence' }`) goes the way sends took (to the weave it was reached
 *   through), and the thread is catching up (table `catch_up`: thread, that weave, the fence's id).
 * - A send from here to a thread catching up goes that way too, followed by a new fence: the
 *   latest fence is the last thing sent that way.
 * - Each weave passes a fence on as a message (along its forwards), so it comes back here after
 *   everything sent that way before it. When the latest one comes back, the thread has caught up:
 *   sends go straight to its inbox again. (A stale one is ignored.)
 * All of it is queued in the batches of the arrival, the sends and the fence's return: a crash
 * leaves nothing half done.
 */
import { randomUUID } from 'node:crypto'
import type Database from 'better-sqlite3'
import type { Journal } from './journal.js'
import type { Envelope } from './message-shapes.js'

type Stmt = Database.Statement<unknown[]>
export type Fence = Extract<Envelope, { k: 'fence' }>

export interface CatchUpHost {
  /** Queues an envelope for weave `dest` (src/messages.ts `outbox`). */
  outbox(dest: string, msgId: string, envelope: Envelope): void
}

export class CatchUps {
  readonly #journal: Journal
  readonly #host: CatchUpHost
  /** Threads catching up: thread → the weave sends go through, and the latest fence's id. */
  readonly #by = new Map<string, { via: string; fence: string }>()
  readonly #set: Stmt
  readonly #del: Stmt

  constructor(journal: Journal, host: CatchUpHost) {
    this.#journal = journal
    this.#host = host
    const db = journal.db
    this.#set = db.prepare('INSERT OR REPLACE INTO catch_up (thread, via, fence) VALUES (?, ?, ?)')
    this.#del = db.prepare('DELETE FROM catch_up WHERE thread = ?')
    for (const [thread, via, fence] of db.prepare('SELECT thread, via, fence FROM catch_up').raw(true).all() as Array<[string, string, string]>) this.#by.set(thread, { via, fence })
  }

  /** The weave sends to `thread` go through while it catches up, or undefined. */
  via(thread: string): string | undefined {
    return this.#by.get(thread)?.via
  }

  /** `thread` arrived here; sends from here reached it through weave `via`: a fence goes that way. */
  begin(thread: string, via: string): void {
    this.fence(thread, via)
  }

  /** A new fence for `thread` through `via`, the last thing sent that way. */
  fence(thread: string, via: string): void {
    const fence = `fence:${thread}:${randomUUID()}`
    this.#by.set(thread, { via, fence })
    this.#journal.queue(this.#set, [thread, via, fence])
    this.#host.outbox(via, fence, { k: 'fence', target: thread, back: this.#journal.weaveId, fence })
  }

  /** Fence `f` came back here: its thread has caught up if it is the latest. */
  returned(f: Fence): void {
    if (this.#by.get(f.target)?.fence !== f.fence) return
    this.end(f.target)
  }

  /** `thread` is no longer catching up here (it caught up, or left). */
  end(thread: string): void {
    if (!this.#by.delete(thread)) return
    this.#journal.queue(this.#del, [thread])
  }
}

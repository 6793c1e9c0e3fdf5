/**
 * The inboxes of a weave's threads: their rows (table `inbox`), the messages in memory of the
 * inboxes loaded, the receivers waiting, and the takes. src/messages.ts routes a message here once
 * it is for a thread of this weave.
 *
 * Invariants:
 * - Inbox rows are numbered in delivery order (`n`, never reused); a receiver sees them in that
 *   order, so messages from one thread to another arrive in the order sent.
 * - A delivery is offered to a waiting receiver in the same synchronous step as the send, so the
 *   take's journal entry commits in the same batch as the send's: one commit per hop. A message
 *   taken so never gets an inbox row; one that a receiver only looked at (peek), or that no one
 *   waited for, does, queued in the batch of the send.
 * - A take's inbox delete is queued in the same batch as the take's journal entry: a message is
 *   in exactly one place, the inbox or the receiver's record.
 * - A loaded inbox holds exactly its thread's rows, those not yet committed included; a thread
 *   whose inbox is not loaded has no receiver waiting, and no message in memory once its rows
 *   are committed: a message to it only gets its row, and waits in `#uncommitted` until that
 *   commits, so a load (the committed rows, then those) misses none. A thread out of memory
 *   (src/passivation/) thus costs no memory for what is sent to it.
 * - A thread that ended with its messages held for a successor (src/successions.ts) keeps its rows,
 *   as a thread not loaded; its successor's spawn makes them the successor's under their numbers.
 */
import type Database from 'better-sqlite3'
import { currentObservation } from './call-context.js'
import { decodeValue, encodeValue } from './encoding.js'
import type { Journal } from './journal.js'
import { givingBack } from './call.js'
import { matches, NoSuchMessage, type Received, type TimedOut } from './message-shapes.js'
import type { CallObservation } from './observer.js'
import { realClock, type ScheduleClock } from './schedules/clock.js'
import { timerAt } from './time/timers.js'

export interface Msg {
  n: number
  from: string | null
  body: string
  value?: unknown
  /** False while a message handed to a waiting receiver has no inbox row. */
  stored?: boolean
  /** The trace context of the send that made it (src/observer.ts), if observed. */
  trace?: string | null
  /** The journal's epoch when its row was queued (committed once the epoch is past it); absent: loaded, so committed. */
  epoch?: number
  /** A message taken at once by a waiting receiver (no row): its id and time, should it go back (`#giveBack`). */
  id?: MsgId
  at?: number
  /** An exit message (its id `exit:…`, src/weave-exits.ts): truthy. */
  exit?: boolean | number
}

/** What a waiter did with a message offered to it: took it, only looked at it, or let it pass. */
type Offered = 'took' | 'saw' | null

interface Waiter {
  /** Not null when the waiter is done (and must be removed). */
  offer(m: Msg): Offered
}

/** Registers what to do if the call waiting is aborted (see `CallContext.onAbort`). */
export type OnAbort = (fn: (reason: Error) => void) => void

/** A message id, or a function making it (called only if the message needs one stored). */
export type MsgId = string | (() => string)

export const idOf = (msgId: MsgId): string => (typeof msgId === 'string' ? msgId : msgId())

interface Inbox {
  msgs: Msg[]
  waiters: Waiter[]
}

type Stmt = Database.Statement<unknown[]>

export class Inboxes {
  readonly #journal: Journal
  readonly #inboxes = new Map<string, Inbox>()
  /** The next inbox row number; 0 until the first send reads it (see #firstN). */
  #nextN = 0
  readonly #insert: Stmt
  readonly #delete: Stmt
  readonly #load: Stmt
  readonly #deadInbox: Stmt
  readonly #dropInbox: Stmt
  readonly #handInbox: Stmt
  readonly #dropExits: Stmt
  /**
   * Threads whose inbox has rows (committed or queued) and is not loaded: those with rows when the
   * weave opened, and since, those sent to while not loaded or let go of with messages. A thread
   * neither here nor in #inboxes has no rows, and its end costs no query.
   */
  readonly #unloaded: Set<string>
  /** Messages of inboxes not loaded whose rows are not committed yet, in order (see the invariant). */
  readonly #uncommitted = new Map<string, Msg[]>()
  /** The weave is observed (src/observer.ts): a receive that takes a message tells its call. */
  observed = false
  /** Told of a message (number `n`, encoded `body`) put in an inbox that no waiting receiver took (src/passivation/ wakes its thread). */
  onStored: ((thread: string, n: number, body: string) => void) | null = null
  /** The weave's clock: a receive's timeout ends by it (src/time/timers.ts). */
  clock: ScheduleClock = realClock

  constructor(journal: Journal) {
    this.#journal = journal
    const db = journal.db
    this.#insert = db.prepare('INSERT OR IGNORE INTO inbox (n, thread, sender, msg_id, body, at, trace) VALUES (?, ?, ?, ?, ?, ?, ?)')
    this.#delete = db.prepare('DELETE FROM inbox WHERE n = ?')
    this.#load = db.prepare(`SELECT n, sender AS "from", body, trace, substr(msg_id, 1, 5) = 'exit:' AS exit FROM inbox WHERE thread = ? ORDER BY n`)
    // Exit messages (ids `exit:…`, src/weave-exits.ts) left unread are not dead letters: they tell
    // of an end the recipient no longer can act on (a parent that joined its children had 3 a child).
    this.#deadInbox = db.prepare(
      "INSERT INTO dead_letters (sender, recipient, body, reason, at) SELECT sender, thread, body, ?, at FROM inbox WHERE thread = ? AND substr(msg_id, 1, 5) <> 'exit:' ORDER BY n",
    )
    this.#dropInbox = db.prepare('DELETE FROM inbox WHERE thread = ?')
    // Their numbers, hence their order, kept.
    this.#handInbox = db.prepare('UPDATE inbox SET thread = ? WHERE thread = ?')
    this.#dropExits = db.prepare("DELETE FROM inbox WHERE thread = ? AND substr(msg_id, 1, 5) = 'exit:'")
    this.#unloaded = new Set(db.prepare('SELECT DISTINCT thread FROM inbox').pluck().all() as string[])
  }

  /** Delivers a message to thread `target`, numbered next (see #put). */
  put(target: string, from: string | null, body: string, msgId: MsgId, at: number, trace: string | null): void {
    if (this.#nextN === 0) this.#nextN = this.#firstN()
    const epoch = this.#journal.epoch
    this.#put(target, trace === null ? { n: this.#nextN++, from, body, epoch } : { n: this.#nextN++, from, body, trace, epoch }, msgId, at)
  }

  /** The number the next message put into an inbox here will have. */
  nextNumber(): number {
    if (this.#nextN === 0) this.#nextN = this.#firstN()
    return this.#nextN
  }

  /**
   * Delivers the messages a thread that moved here brought, in their order. They are numbered
   * above every number `n` they had on the weave they left: the thread's record holds how far a
   * receive of it scanned (`peek` after n), so one it had not looked at must not come below that.
   */
  putMoved(target: string, msgs: ReadonlyArray<{ n?: number; from: string | null; msgId: string; body: string; at: number; trace?: string | null }>): void {
    if (msgs.length === 0) return
    if (this.#nextN === 0) this.#nextN = this.#firstN()
    // (A number past 2^52, which no weave reaches, is ignored: #nextN must stay exact.)
    for (const m of msgs) if (typeof m.n === 'number' && Number.isSafeInteger(m.n) && m.n < 2 ** 52 && m.n >= this.#nextN) this.#nextN = m.n + 1
    for (const m of msgs) this.put(target, m.from, m.body, m.msgId, m.at, m.trace ?? null)
  }

  /**
   * Delivers `msg` to `target`'s inbox, in the current batch: a waiting receiver that takes it
   * takes it now (no inbox row then); otherwise it gets a row, and joins the inbox in memory if
   * that is loaded (else it waits for its commit in #uncommitted).
   */
  #put(target: string, msg: Msg, msgId: MsgId, at: number): void {
    const inbox = this.#inboxes.get(target)
    if (inbox !== undefined) {
      for (let i = 0; i < inbox.waiters.length; i++) {
        const done = inbox.waiters[i]!.offer(msg)
        if (done === null) continue
        inbox.waiters.splice(i, 1)
        if (done === 'took') {
          msg.id = msgId
          msg.at = at
          return
        }
        break
      }
    }
    this.#keep(target, inbox, msg, idOf(msgId), at)
    if (this.onStored !== null) this.onStored(target, msg.n, msg.body)
  }

  /**
   * Keeps `msg` in `target`'s inbox (`inbox`, if loaded): a row in the current batch, and in
   * memory in number order if the inbox is loaded, else in #uncommitted until the row commits.
   */
  #keep(target: string, inbox: Inbox | undefined, msg: Msg, id: string, at: number): void {
    msg.stored = true
    if (id.startsWith('exit:')) msg.exit = true
    let committed: (() => void) | undefined
    if (inbox !== undefined) {
      const msgs = inbox.msgs
      let i = msgs.length
      while (i > 0 && msgs[i - 1]!.n > msg.n) i--
      if (i === msgs.length) msgs.push(msg)
      else msgs.splice(i, 0, msg)
    } else {
      const list = this.#uncommitted.get(target)
      if (list === undefined) this.#uncommitted.set(target, [msg])
      else list.push(msg)
      this.#unloaded.add(target)
      committed = () => this.#prune(target)
    }
    this.#journal.queue(this.#insert, [msg.n, target, msg.from, id, msg.body, at, msg.trace ?? null], committed)
  }

  /**
   * Lets go of thread `thread`'s inbox in memory (it left memory: src/passivation/) when nobody
   * waits on it; its messages whose rows are not committed yet wait for that in #uncommitted.
   */
  unload(thread: string): void {
    const inbox = this.#inboxes.get(thread)
    if (inbox === undefined || inbox.waiters.length > 0) return
    this.#letGo(thread, inbox)
  }

  /** Drops `thread`'s loaded `inbox` from memory; its rows stay (see `unload`). */
  #letGo(thread: string, inbox: Inbox): void {
    this.#inboxes.delete(thread)
    if (inbox.msgs.length === 0) return
    this.#unloaded.add(thread)
    const epoch = this.#journal.epoch
    const pending = inbox.msgs.filter((m) => m.epoch !== undefined && m.epoch >= epoch)
    if (pending.length === 0) return
    this.#uncommitted.set(thread, pending)
    void this.#journal.committed().then(() => this.#prune(thread))
  }

  /** How many messages of `thread` are held in memory (its inbox loaded, or rows not yet committed). */
  held(thread: string): number {
    return (this.#inboxes.get(thread)?.msgs.length ?? 0) + (this.#uncommitted.get(thread)?.length ?? 0)
  }

  /** Drops from #uncommitted the messages of `thread` whose rows are committed. */
  #prune(thread: string): void {
    const list = this.#uncommitted.get(thread)
    if (list === undefined) return
    const epoch = this.#journal.epoch
    let i = 0
    while (i < list.length && list[i]!.epoch! < epoch) i++
    if (i === list.length) this.#uncommitted.delete(thread)
    else if (i > 0) list.splice(0, i)
  }

  /** Thread `thread` left this weave: its rows go (the move record carries them), in the current batch. */
  departed(thread: string): void {
    this.#journal.queue(this.#dropInbox, [thread])
    this.#inboxes.delete(thread)
    this.#unloaded.delete(thread)
    this.#uncommitted.delete(thread)
  }

  /**
   * Thread `thread` ended: what it never received becomes dead letters (exit messages go), in the
   * batch of its end, `reason` saying why.
   */
  ended(thread: string, reason = 'the recipient ended before receiving it'): void {
    // A loaded inbox holds exactly the thread's rows: none left, nothing to move or delete.
    const inbox = this.#inboxes.get(thread)
    if (inbox === undefined ? this.#unloaded.delete(thread) : inbox.msgs.length > 0) {
      this.#journal.queue(this.#deadInbox, [reason, thread])
      this.#journal.queue(this.#dropInbox, [thread])
    }
    this.#inboxes.delete(thread)
    this.#uncommitted.delete(thread)
  }

  /**
   * Thread `thread` ended and what it never received is held for a successor (src/successions.ts):
   * its rows stay, and what is sent to it meanwhile joins them; only its inbox in memory goes.
   */
  endedHeld(thread: string): void {
    const inbox = this.#inboxes.get(thread)
    if (inbox !== undefined) this.#letGo(thread, inbox)
  }

  /**
   * Thread `to` (just spawned) succeeds `from`, ended and held: `from`'s messages (but its exit
   * messages) become `to`'s,
   * under their numbers (so in their order, before any sent to `to` later), in the current batch.
   * Until that commits they wait for `to` in #uncommitted, so a load of `to`'s inbox misses none.
   */
  handOver(from: string, to: string): void {
    if (!this.#inboxes.has(from) && !this.#unloaded.has(from)) return
    // Exit messages it left unread tell of ends only it could act on: they go, as at an end.
    const msgs = this.#inbox(from).msgs.filter((m) => !m.exit)
    this.#inboxes.delete(from)
    this.#journal.queue(this.#dropExits, [from])
    this.#journal.queue(this.#handInbox, [to, from])
    if (msgs.length === 0) return
    const epoch = this.#journal.epoch
    for (const m of msgs) m.epoch = epoch
    const inbox = this.#inboxes.get(to)
    if (inbox !== undefined) {
      inbox.msgs.push(...msgs)
      inbox.msgs.sort((a, b) => a.n - b.n)
      return
    }
    const list = this.#uncommitted.get(to)
    this.#uncommitted.set(to, list === undefined ? msgs : [...msgs, ...list].sort((a, b) => a.n - b.n))
    this.#unloaded.add(to)
    void this.#journal.committed().then(() => this.#prune(to))
  }

  /**
   * Numbers are never reused, even after the newest message was taken (AUTOINCREMENT keeps the
   * high-water mark), so a receiver's scan position stays valid across a restart. Read at the
   * first send, not when the weave opens: by then the weave has recorded itself as the journal's
   * owner, so a message that another process put in an inbox while no weave ran (`raiment send`
   * checks for an owner in the same transaction) is counted and never overwritten.
   */
  #firstN(): number {
    const seq = this.#journal.db.prepare("SELECT seq FROM sqlite_sequence WHERE name = 'inbox'").get() as { seq: number } | undefined
    return (seq?.seq ?? 0) + 1
  }

  #inbox(thread: string): Inbox {
    let inbox = this.#inboxes.get(thread)
    if (inbox === undefined) {
      // The committed rows, and the messages whose rows are not yet, in number order (new ones
      // come after all of those; one given back (#giveBack) may come between).
      const msgs = this.#load.all(thread) as Msg[]
      const pending = this.#uncommitted.get(thread)
      if (pending !== undefined) {
        this.#uncommitted.delete(thread)
        const have = new Set(msgs.map((m) => m.n))
        let sorted = true
        for (const m of pending) {
          if (have.has(m.n)) continue
          if (msgs.length > 0 && m.n < msgs[msgs.length - 1]!.n) sorted = false
          msgs.push(m)
        }
        if (!sorted) msgs.sort((a, b) => a.n - b.n)
      }
      inbox = { msgs, waiters: [] }
      this.#inboxes.set(thread, inbox)
      this.#unloaded.delete(thread)
    }
    return inbox
  }

  #value(m: Msg): unknown {
    if (!('value' in m)) m.value = decodeValue(m.body)
    return m.value
  }

  #taken(m: Msg, obs: CallObservation | null): Received {
    if (m.stored !== false) this.#journal.queue(this.#delete, [m.n])
    if (obs !== null && typeof m.trace === 'string') obs.took(m.trace, m.from)
    return { n: m.n, from: m.from, message: this.#value(m) }
  }

  /**
   * Takes the first message (in arrival order) that matches `pattern`, waiting until one arrives
   * or until the wall-clock time `until`.
   */
  take(thread: string, pattern: unknown, until: number | null, onAbort: OnAbort | null): Promise<Received | TimedOut> {
    const inbox = this.#inbox(thread)
    // Called at the start of the receiving call's library method: that call is the current one.
    const obs = this.observed ? currentObservation() : null
    const i = inbox.msgs.findIndex((m) => matches(this.#value(m), pattern))
    if (i >= 0) return Promise.resolve(this.#takenAt(thread, inbox.msgs.splice(i, 1)[0]!, obs, onAbort))
    let took: Msg | null = null
    return this.#wait(
      inbox,
      until,
      onAbort,
      (m, done) => {
        if (!matches(this.#value(m), pattern)) return null
        m.stored = false
        took = m
        done(this.#taken(m, obs))
        return 'took'
      },
      // Taken, and the thread stopped or was let go before the take was recorded (the weft drops
      // the outcome of a call answered after that): the message goes back where it was.
      () => {
        if (took !== null) this.#giveBack(thread, took)
      },
    )
  }

  /**
   * A message taken by a receive whose outcome was never recorded: back into `thread`'s inbox
   * under its number, in the current batch (after the delete its take queued, if it had a row).
   * A thread killed meanwhile has it dead-lettered with the rest of its inbox.
   */
  #giveBack(thread: string, m: Msg): void {
    m.epoch = this.#journal.epoch
    this.#keep(thread, this.#inboxes.get(thread), m, m.id === undefined ? `back:${thread}:${m.n}` : idOf(m.id), m.at ?? Date.now())
  }

  /** The message of a recorded take (its outcome's text) goes back into `thread`'s inbox (see `#giveBack`). */
  putBack(thread: string, text: string): void {
    const r = decodeValue(text) as Received | TimedOut
    if ('n' in r) this.#giveBack(thread, { n: r.n, from: r.from, body: encodeValue(r.message, 'the message'), value: r.message })
  }

  /** The first message numbered after `after`, left in the inbox; waits like take. */
  peek(thread: string, after: number, until: number | null, onAbort: OnAbort | null): Promise<Received | TimedOut> {
    const inbox = this.#inbox(thread)
    const m = inbox.msgs.find((x) => x.n > after)
    if (m !== undefined) return Promise.resolve({ n: m.n, from: m.from, message: this.#value(m) })
    return this.#wait(inbox, until, onAbort, (msg, done) => {
      done({ n: msg.n, from: msg.from, message: this.#value(msg) })
      return 'saw' // left in the inbox
    })
  }

  /** Takes message number `n` (found by peek). */
  takeNumber(thread: string, n: number, onAbort: OnAbort | null = null): Received {
    const inbox = this.#inbox(thread)
    const i = inbox.msgs.findIndex((m) => m.n === n)
    if (i < 0) throw new NoSuchMessage(thread, n)
    return this.#takenAt(thread, inbox.msgs.splice(i, 1)[0]!, this.observed ? currentObservation() : null, onAbort)
  }

  /**
   * A message taken at once from the inbox. Its take is recorded a moment later (the weft, once
   * the call's promise settles): should the thread stop first (a kill by another thread in the
   * same turn), the weft drops that outcome and the message goes back (`#giveBack`).
   */
  #takenAt(thread: string, m: Msg, obs: CallObservation | null, onAbort: OnAbort | null): Received {
    onAbort?.(givingBack(() => this.#giveBack(thread, m)))
    return this.#taken(m, obs)
  }

  #wait(inbox: Inbox, until: number | null, onAbort: OnAbort | null, offer: (m: Msg, done: (r: Received) => void) => Offered, unrecorded?: () => void): Promise<Received | TimedOut> {
    return new Promise((resolve, reject) => {
      let timer: (() => void) | null = null
      let settled = false
      const waiter: Waiter = {
        offer: (m) =>
          offer(m, (r) => {
            settled = true
            if (timer !== null) timer()
            resolve(r)
          }),
      }
      const remove = (): void => {
        const i = inbox.waiters.indexOf(waiter)
        if (i >= 0) inbox.waiters.splice(i, 1)
      }
      if (until !== null) {
        if (until <= this.clock.now()) return resolve({ timedOut: true })
        timer = timerAt(this.clock, until, () => {
          settled = true
          remove()
          resolve({ timedOut: true })
        })
      }
      // The weft clears this hook once the call's outcome is recorded (src/weft.ts #complete).
      const hook = (reason: Error): void => {
        if (settled) return unrecorded?.()
        settled = true
        if (timer !== null) timer()
        remove()
        reject(reason)
      }
      // A take's hook gives back what it took (kept once recorded, until released: src/call.ts).
      onAbort?.(unrecorded === undefined ? hook : givingBack(hook))
      inbox.waiters.push(waiter)
    })
  }
}

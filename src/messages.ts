/**
 * Messages between threads of one weave: inboxes, dead letters, and where a message goes (a
 * thread here, by id or by a name in src/thread-registry.ts, one that moved, or another weave).
 *
 * Invariants:
 * - A send's inbox row (or dead letter) is queued in the same group-commit batch as the send's
 *   journal entry, so the message exists exactly when the sender's record says it was sent.
 * - A take's inbox delete is queued in the same batch as the take's journal entry: a message is
 *   in exactly one place, the inbox or the receiver's record.
 * - Inbox rows are numbered in delivery order; a receiver sees them in that order, so messages
 *   from one thread to another arrive in the order sent.
 * - A delivery is offered to a waiting receiver in the same synchronous step as the send, so the
 *   take's journal entry commits in the same batch as the send's: one commit per hop. A message
 *   taken so never gets an inbox row (it goes from the sender's record straight into the
 *   receiver's); one that a receiver only looked at (peek), or that no one waited for, does. The
 *   receiving thread sees the message only once that batch is durable (the weft releases no
 *   outcome before).
 */
import type Database from 'better-sqlite3'
import { decodeValue, encodeValue } from './encoding.js'
import type { Journal } from './journal.js'
import type { MoveRecord } from './migration.js'
import { currentObservation } from './call-context.js'
import type { CallObservation } from './observer.js'
import { NameSends } from './name-sends.js'
import { matches, NoSuchMessage, type Envelope, type Received, type SendResult, type TimedOut, type WatchEnvelope, type WatchKind } from './message-shapes.js'
import { ThreadRegistry } from './thread-registry.js'

export { matches, NameTaken, NoSuchMessage, type Envelope, type Received, type SendResult, type TimedOut, type WatchEnvelope, type WatchKind } from './message-shapes.js'
import { ReceivedIds, type Origin } from './received.js'
import { weaveOfThread, type Remote } from './remote.js'


interface Msg {
  n: number
  from: string | null
  body: string
  value?: unknown
  /** False while a message handed to a waiting receiver has no inbox row. */
  stored?: boolean
  /** The trace context of the send that made it (src/observer.ts), if observed. */
  trace?: string | null
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

interface Inbox {
  msgs: Msg[]
  waiters: Waiter[]
}


type Stmt = Database.Statement<unknown[]>

/** The longest delay setTimeout keeps. */
const MAX_TIMER_MS = 2 ** 31 - 1


export class Messages {
  readonly #journal: Journal
  readonly #isAlive: (id: string) => boolean
  readonly #inboxes = new Map<string, Inbox>()
  /** The names, watches and traps of the threads here. */
  readonly #registry: ThreadRegistry
  /** The next inbox row number; 0 until the first send reads it (see #firstN). */
  #nextN = 0
  readonly #insert: Stmt
  readonly #delete: Stmt
  readonly #dead: Stmt
  readonly #load: Stmt
  readonly #outbox: Stmt
  /** Ids of what was taken from other weaves (the `received` table). */
  readonly received: ReceivedIds
  /** Messages sent by a name no weave is known to hold yet (the `outbox_names` table). */
  readonly nameSends: NameSends
  /** Threads that moved from here to another weave: thread → weave. */
  readonly #forwards = new Map<string, string>()
  /** Threads that run here though their id names another weave (they moved here). */
  readonly #guests = new Set<string>()
  readonly #forwardSet: Stmt
  readonly #forwardDel: Stmt
  readonly #deadInbox: Stmt
  readonly #dropInbox: Stmt
  /**
   * Threads with inbox rows when the weave opened, not loaded since. Every row written since
   * goes through #put, which loads the inbox first: a thread neither here nor in #inboxes has no
   * rows, and its end costs no query.
   */
  readonly #rowsAtOpen: Set<string>
  /** The transport joining this weave to others (set before any thread runs), or null. */
  remote: Remote | null = null
  /** The weave is observed (src/observer.ts): a receive that takes a message tells its call. */
  observed = false
  /** Told of a message put in an inbox that no waiting receiver took (src/passivation/ wakes its thread). */
  onStored: ((thread: string) => void) | null = null

  constructor(journal: Journal, isAlive: (id: string) => boolean) {
    this.#journal = journal
    this.#isAlive = isAlive
    const db = journal.db
    this.#registry = new ThreadRegistry(journal, isAlive, () => this.remote?.namesChanged())
    this.#insert = db.prepare('INSERT OR IGNORE INTO inbox (n, thread, sender, msg_id, body, at, trace) VALUES (?, ?, ?, ?, ?, ?, ?)')
    this.#delete = db.prepare('DELETE FROM inbox WHERE n = ?')
    this.#dead = db.prepare('INSERT INTO dead_letters (sender, recipient, body, reason, at) VALUES (?, ?, ?, ?, ?)')
    this.#load = db.prepare('SELECT n, sender AS "from", body, trace FROM inbox WHERE thread = ? ORDER BY n')
    this.#outbox = db.prepare('INSERT OR IGNORE INTO outbox (msg_id, dest, body, at, trace) VALUES (?, ?, ?, ?, ?)')
    this.received = new ReceivedIds(journal)
    this.nameSends = new NameSends(journal, {
      remote: () => this.remote,
      homeOf: (id) => this.homeOf(id),
      isRemote: (id) => this.isRemote(id),
      outbox: (dest, msgId, e, trace) => this.outbox(dest, msgId, e, trace),
      deliver: (from, thread, body, msgId, name, trace) => this.#deliver(from, thread, body, msgId, thread, name, trace),
      put: (thread, from, body, msgId, at, trace) => {
        if (this.#nextN === 0) this.#nextN = this.#firstN()
        this.#put(thread, trace === null ? { n: this.#nextN++, from, body } : { n: this.#nextN++, from, body, trace }, msgId, at)
      },
      deadLetter: (from, to, body, reason) => this.#deadLetter(from, to, body, reason),
    })
    this.#forwardSet = db.prepare('INSERT OR REPLACE INTO forwards (thread, weave, at) VALUES (?, ?, ?)')
    this.#forwardDel = db.prepare('DELETE FROM forwards WHERE thread = ?')
    this.#deadInbox = db.prepare(
      "INSERT INTO dead_letters (sender, recipient, body, reason, at) SELECT sender, thread, body, 'the recipient ended before receiving it', at FROM inbox WHERE thread = ?",
    )
    this.#dropInbox = db.prepare('DELETE FROM inbox WHERE thread = ?')
    this.#rowsAtOpen = new Set(db.prepare('SELECT DISTINCT thread FROM inbox').pluck().all() as string[])
    for (const r of db.prepare('SELECT thread, weave FROM forwards').all() as Array<{ thread: string; weave: string }>) this.#forwards.set(r.thread, r.weave)
    const self = journal.weaveId
    const others = db.prepare("SELECT id FROM threads WHERE status != 'moved' AND substr(id, 1, ?) != ?").pluck()
    for (const id of others.all(self.length + 1, `${self}/`) as string[]) {
      if (weaveOfThread(id) !== self) this.#guests.add(id)
    }
  }

  /** The weave a thread that moved away from here runs on now, or undefined. */
  forwardOf(id: string): string | undefined {
    return this.#forwards.get(id)
  }

  /** Where a thread lives: the weave it moved to from here, else the weave its id names. */
  homeOf(id: string): string | null {
    return this.#forwards.get(id) ?? (this.#guests.has(id) ? this.#journal.weaveId : weaveOfThread(id))
  }

  /** Is `id` a thread of another weave, reached through the transport? */
  isRemote(id: string): boolean {
    if (this.remote === null) return false
    const w = this.homeOf(id)
    return w !== null && w !== this.#journal.weaveId
  }

  /**
   * Queues an envelope for weave `dest` in the current batch (deduplicated by `msgId`); the
   * transport publishes it once committed. `trace`: the trace context it was sent in (an AMQP header).
   */
  outbox(dest: string, msgId: string, envelope: Envelope | WatchEnvelope, trace: string | null = null): void {
    const remote = this.remote
    this.#journal.queue(this.#outbox, [msgId, dest, JSON.stringify(envelope), Date.now(), trace], () => remote?.wake())
  }

  /**
   * A message from another weave: into the inbox (or the dead letters), once per `msgId`.
   * `after` runs once that is durable (or at once-durable for a duplicate): acknowledge it then.
   * `origin`: where it came from (see src/received.ts), if the sender said; `trace`: the trace
   * context it was sent in.
   */
  receive(msgId: string, from: string | null, to: string, body: string, after: () => void, origin?: Origin, name?: string, trace: string | null = null): void {
    if (this.receiveOnce(msgId, after, origin)) this.#deliver(from, to, body, msgId, this.resolve(to), name, trace)
  }

  /**
   * True the first time `msgId` comes from another weave: its id is queued into `received` (the
   * caller queues what it carries in the same batch) and `after` runs once that is durable.
   * False for a duplicate: `after` runs once what is queued now is durable.
   */
  receiveOnce(msgId: string, after: () => void, origin?: Origin): boolean {
    return this.received.once(msgId, origin, after)
  }

  /**
   * A thread left for weave `to`: from now on what is sent to it here goes there. Its names,
   * traps, watches and inbox here are dropped (the move record carries the inbox and names).
   * Queued in the batch that marks it moved.
   */
  departed(thread: string, to: string): void {
    this.#forwards.set(thread, to)
    this.#guests.delete(thread)
    this.#journal.queue(this.#forwardSet, [thread, to, Date.now()])
    this.nameSends.left(this.#registry.namesOf(thread), thread)
    this.#registry.departed(thread)
    this.#journal.queue(this.#dropInbox, [thread])
    this.#inboxes.delete(thread)
    this.#rowsAtOpen.delete(thread)
  }

  /** A thread arrived from another weave: its inbox (in order), names and traps, queued here. */
  arrived(r: MoveRecord): void {
    const thread = r.thread.id
    this.#forwards.delete(thread)
    this.#journal.queue(this.#forwardDel, [thread])
    if (weaveOfThread(thread) !== this.#journal.weaveId) this.#guests.add(thread)
    // Numbered here above every number they had there: the thread's record holds how far a receive
    // of it scanned (`peek` after n), so one it had not looked at must not come below that.
    if (this.#nextN === 0 && r.inbox.length > 0) this.#nextN = this.#firstN()
    for (const m of r.inbox) if (typeof m.n === 'number' && Number.isSafeInteger(m.n) && m.n >= this.#nextN) this.#nextN = m.n + 1
    for (const m of r.inbox) {
      const trace = m.trace ?? null
      this.#put(thread, trace === null ? { n: this.#nextN++, from: m.from, body: m.body } : { n: this.#nextN++, from: m.from, body: m.body, trace }, m.msgId, m.at)
    }
    for (const name of r.names) this.#registry.give(name, thread)
    // After its inbox: what waited for its names comes after what was sent to it before.
    for (const name of r.names) this.nameSends.registered(name, thread)
    if (r.traps) this.#registry.trapExits(thread, true)
    for (const w of r.watches ?? []) this.#registry.watchOne(thread, w.watcher, w.kind)
  }

  /** Sends weave `dest` a thread to spawn under `id` (chosen here); a parent hears of its end. */
  spawnRemote(dest: string, id: string, type: string, params: unknown, parent: string | null, trace: string | null = null): void {
    this.outbox(dest, `spawn:${id}`, { k: 'spawn', id, type, params: encodeValue(params, 'params'), parent }, trace)
  }

  /** This weave's registered names and their threads (for the transport to announce). */
  names(): Record<string, string> {
    return this.#registry.names()
  }

  /** The thread an id, or a name a thread of this weave holds, designates now, or null. */
  resolve(to: string): string | null {
    return this.#registry.holder(to) ?? (to.includes('/') ? to : null)
  }

  /**
   * Puts a message in the receiver's inbox, or in the dead letters when the receiver has ended or
   * never existed. Queued in the current batch; the receiver is woken once it is durable. A name
   * that no thread here holds goes through the transport (src/name-sends.ts). `trace`: the trace
   * context of the send (src/observer.ts), recorded with the message.
   */
  send(from: string | null, to: string, value: unknown, msgId: MsgId, trace: string | null = null): SendResult {
    const body = encodeValue(value, 'the message')
    if (this.remote !== null && !to.includes('/') && this.#registry.holder(to) === undefined) return this.nameSends.send(this.remote, from, to, body, idOf(msgId), trace)
    const target = this.resolve(to)
    if (target !== null && this.isRemote(target)) {
      this.outbox(this.homeOf(target)!, idOf(msgId), { k: 'msg', from, to: target, body }, trace)
      return { delivered: true, to: target }
    }
    return this.#deliver(from, to, body, msgId, target, undefined, trace)
  }

  /** What the transport knows of names changed: messages waiting for a name it can place now go. */
  retryNames(): void {
    this.nameSends.retry()
  }

  #deadLetter(from: string | null, to: string, body: string, reason: string): SendResult {
    this.#journal.queue(this.#dead, [from, to, body, reason, Date.now()])
    return { delivered: false, to, reason }
  }

  /**
   * Delivers here, forwards to where `target` moved, or dead-letters. `name`: the message was
   * sent by that name from another weave; it goes to the thread holding the name here now, and
   * is a dead letter if none does (and the thread it was sent to did not move on with it).
   */
  #deliver(from: string | null, to: string, body: string, msgId: MsgId, target = this.resolve(to), name?: string, trace: string | null = null): SendResult {
    const holder = name === undefined ? undefined : this.#registry.holder(name)
    if (holder !== undefined) target = holder
    // A thread that moved on: forwarded, under the same id (so its new weave takes it once).
    const moved = target === null ? undefined : this.#forwards.get(target)
    if (moved !== undefined && target !== null) {
      this.outbox(moved, idOf(msgId), { k: 'msg', from, to: target, body, ...(name !== undefined ? { name } : {}) }, trace)
      return { delivered: true, to: target }
    }
    if (name !== undefined && holder === undefined) {
      return this.#deadLetter(from, name, body, `no thread is registered as '${name}' on weave ${this.#journal.weaveId}`)
    }
    if (target === null || !this.#isAlive(target)) {
      const reason = target === null ? `no thread is registered as '${to}'` : this.#journal.thread(target) ? `thread ${target} has ended` : `no thread ${target} exists`
      this.#journal.queue(this.#dead, [from, to, body, reason, Date.now()])
      return { delivered: false, to, reason }
    }
    if (this.#nextN === 0) this.#nextN = this.#firstN()
    this.#put(target, trace === null ? { n: this.#nextN++, from, body } : { n: this.#nextN++, from, body, trace }, msgId, Date.now())
    return { delivered: true, to: target }
  }

  /**
   * Delivers `msg` to `target`'s inbox, in the current batch: a waiting receiver that takes it
   * takes it now (no inbox row then); otherwise it gets a row and joins the inbox in memory (which
   * is loaded first if it was not: a load later, before the batch commits, would miss the row).
   */
  #put(target: string, msg: Msg, msgId: MsgId, at: number): void {
    const inbox = this.#inbox(target)
    for (let i = 0; i < inbox.waiters.length; i++) {
      const done = inbox.waiters[i]!.offer(msg)
      if (done === null) continue
      inbox.waiters.splice(i, 1)
      if (done === 'took') return
      break
    }
    msg.stored = true
    this.#journal.queue(this.#insert, [msg.n, target, msg.from, idOf(msgId), msg.body, at, msg.trace ?? null])
    inbox.msgs.push(msg)
    if (this.onStored !== null) this.onStored(target)
  }

  /**
   * Lets go of thread `thread`'s inbox in memory (it left memory: src/passivation/) when it is
   * empty and nobody waits on it; one holding messages stays (their rows may not be committed yet).
   */
  unload(thread: string): void {
    const inbox = this.#inboxes.get(thread)
    if (inbox !== undefined && inbox.msgs.length === 0 && inbox.waiters.length === 0) this.#inboxes.delete(thread)
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
      inbox = { msgs: this.#load.all(thread) as Msg[], waiters: [] }
      this.#inboxes.set(thread, inbox)
      this.#rowsAtOpen.delete(thread)
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
    if (i >= 0) return Promise.resolve(this.#taken(inbox.msgs.splice(i, 1)[0]!, obs))
    return this.#wait(inbox, until, onAbort, (m, done) => {
      if (!matches(this.#value(m), pattern)) return null
      m.stored = false
      done(this.#taken(m, obs))
      return 'took'
    })
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
  takeNumber(thread: string, n: number): Received {
    const inbox = this.#inbox(thread)
    const i = inbox.msgs.findIndex((m) => m.n === n)
    if (i < 0) throw new NoSuchMessage(thread, n)
    return this.#taken(inbox.msgs.splice(i, 1)[0]!, this.observed ? currentObservation() : null)
  }

  #wait(inbox: Inbox, until: number | null, onAbort: OnAbort | null, offer: (m: Msg, done: (r: Received) => void) => Offered): Promise<Received | TimedOut> {
    return new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | null = null
      let settled = false
      const waiter: Waiter = {
        offer: (m) =>
          offer(m, (r) => {
            settled = true
            if (timer !== null) clearTimeout(timer)
            resolve(r)
          }),
      }
      const remove = (): void => {
        const i = inbox.waiters.indexOf(waiter)
        if (i >= 0) inbox.waiters.splice(i, 1)
      }
      if (until !== null) {
        const left = until - Date.now()
        if (left <= 0) return resolve({ timedOut: true })
        const expire = (): void => {
          settled = true
          remove()
          resolve({ timedOut: true })
        }
        // A timer holds at most 2^31 - 1 ms (24.8 days; a longer one fires after 1 ms): a longer
        // wait is armed again, for what is left, each time that much has passed.
        const arm = (ms: number): void => {
          timer = ms > MAX_TIMER_MS ? setTimeout(() => arm(until - Date.now()), MAX_TIMER_MS) : setTimeout(expire, ms)
        }
        arm(left)
      }
      onAbort?.((reason) => {
        if (settled) return
        settled = true
        if (timer !== null) clearTimeout(timer)
        remove()
        reject(reason)
      })
      inbox.waiters.push(waiter)
    })
  }

  /**
   * Registers `name` for `thread`; messages that waited for the name go to it (src/name-sends.ts).
   * @throws NameTaken when another thread that is alive holds it
   */
  register(name: string, thread: string): void {
    this.#registry.register(name, thread)
    this.nameSends.registered(name, thread)
  }

  /** Frees `name` if `thread` holds it; returns whether it did. */
  unregister(name: string, thread: string): boolean {
    return this.#registry.unregister(name, thread)
  }

  whereis(name: string): string | null {
    const id = this.#registry.holder(name)
    if (id !== undefined) return this.#isAlive(id) ? id : null
    const found = this.remote?.resolveName(name) ?? null
    return found === null || found === 'unknown' ? null : found.thread
  }

  /** `watcher` is told when `target` ends (monitor), or shares its fate (link, both ways). */
  watch(watcher: string, target: string, kind: 'monitor' | 'link'): void {
    this.#registry.watchOne(target, watcher, kind)
    if (kind === 'link') this.#registry.watchOne(watcher, target, kind)
  }

  /** One watch row: `watcher` is told of `target`'s end (queued in the current batch). */
  watchOne(target: string, watcher: string, kind: WatchKind): void {
    this.#registry.watchOne(target, watcher, kind)
  }

  trapExits(thread: string, on: boolean): void {
    this.#registry.trapExits(thread, on)
  }

  traps(thread: string): boolean {
    return this.#registry.traps(thread)
  }

  /** Who watches `target`: monitors, links, and (from other weaves) joins. */
  watchers(target: string): Array<{ watcher: string; kind: WatchKind }> {
    return this.#registry.watchers(target)
  }

  /**
   * A thread has ended: free its names, drop its watches, dead-letter what it never received.
   * Queued in the same batch as the thread's end.
   */
  ended(thread: string): void {
    this.#registry.ended(thread)
    // A loaded inbox holds exactly the thread's rows: none left, nothing to move or delete.
    const inbox = this.#inboxes.get(thread)
    if (inbox === undefined ? this.#rowsAtOpen.delete(thread) : inbox.msgs.length > 0) {
      this.#journal.queue(this.#deadInbox, [thread])
      this.#journal.queue(this.#dropInbox, [thread])
    }
    this.#inboxes.delete(thread)
  }
}

const idOf = (msgId: MsgId): string => (typeof msgId === 'string' ? msgId : msgId())

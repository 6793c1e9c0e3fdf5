/**
 * Messages between threads of one weave: where a message goes (a thread here, by id or by a name
 * in src/thread-registry.ts, one that moved, or another weave), dead letters, and the outbox. A
 * message for a thread here goes into its inbox (src/inboxes.ts).
 *
 * Invariants:
 * - A send's inbox row (or dead letter, or outbox row) is queued in the same group-commit batch
 *   as the send's journal entry, so the message exists exactly when the sender's record says it
 *   was sent.
 * - The receiving thread sees a message only once the batch that delivered it is durable, or
 *   early, before (a take is journal-only: src/weft-pending.ts), when nothing it does on it
 *   leaves the weave until then; see src/inboxes.ts for the order and the takes.
 */
import type Database from 'better-sqlite3'
import { encodeValue } from './encoding.js'
import { checkMessageSize, MAX_MESSAGE_BYTES } from './message-size.js'
import { CatchUps, type Fence } from './catch-up.js'
import type { Journal } from './journal.js'
import type { MoveRecord } from './migration.js'
import { NameSends } from './name-sends.js'
import type { Envelope, Received, SendResult, TimedOut, WatchEnvelope, WatchKind } from './message-shapes.js'
import { idOf, Inboxes, type MsgId, type OnAbort } from './inboxes.js'
import { ThreadRegistry } from './thread-registry.js'
import { HandOvers } from './hand-overs.js'

export type { MsgId, OnAbort } from './inboxes.js'

/**
 * The id under which weave `weaveId` sends on an envelope it took from another weave, to the weave
 * its thread moved to: an envelope of its own per hop (`<id>><weave>`), so that one chasing a
 * thread that moved away and back is not taken for a copy of itself where it passed before.
 */
export function hopId(msgId: string, weaveId: string): string {
  return `${msgId}>${weaveId}`
}
export { matches, NameTaken, NoSuchMessage, type Envelope, type Received, type SendResult, type TimedOut, type WatchEnvelope, type WatchKind } from './message-shapes.js'
import { ReceivedIds, type Origin } from './received.js'
import { weaveOfThread, type Remote } from './remote.js'
import { deadLetterInsert } from './dead-letters.js'
import { keyOf, SendKeys } from './send-keys.js'

type Stmt = Database.Statement<unknown[]>

/** The weave an envelope came from (its origin's `src` is `<weave id>#<journal id>`), or null when it did not say. */
function senderWeave(origin: Origin | undefined): string | null {
  return origin === undefined ? null : origin.src.slice(0, origin.src.lastIndexOf('#'))
}

export class Messages {
  readonly #journal: Journal
  readonly #isAlive: (id: string) => boolean
  /** The names, watches and traps of the threads here. */
  readonly #registry: ThreadRegistry
  /** Threads whose messages and names are held, at their end, for a successor (src/hand-overs.ts). */
  readonly successions: HandOvers
  readonly #dead: Stmt
  readonly #outbox: Stmt
  /** Ids of what was taken from other weaves (the `received` table). */
  readonly received: ReceivedIds
  /** Keys of keyed sends sent or taken here (the `send_keys` table). */
  readonly keys: SendKeys
  /** Messages sent by a name no weave is known to hold yet (the `outbox_names` table). */
  readonly nameSends: NameSends
  /** Threads that moved from here to another weave: thread → weave. */
  readonly #forwards = new Map<string, string>()
  /** Threads that run here though their id names another weave (they moved here). */
  readonly #guests = new Set<string>()
  readonly #forwardSet: Stmt
  readonly #forwardDel: Stmt
  /** The transport joining this weave to others (set before any thread runs), or null. */
  remote: Remote | null = null
  /** The largest message a send takes, in bytes as it travels (`WeaveOptions.maxMessageBytes`). */
  maxBytes = MAX_MESSAGE_BYTES
  /** The inboxes of the threads here. */
  readonly inboxes: Inboxes
  /** Threads that moved here, while what was sent to them from here may be on the way. */
  readonly #catchUps: CatchUps

  /** The weave is observed (src/observer.ts): a receive that takes a message tells its call. */
  set observed(on: boolean) {
    this.inboxes.observed = on
  }

  /** Told of a message put in an inbox that no waiting receiver took (src/passivation/ wakes its thread). */
  set onStored(fn: ((thread: string, n: number, body: string) => void) | null) {
    this.inboxes.onStored = fn
  }

  /** Whether this journal's weave has run with a broker (read once, when first asked without one). */
  #ranWithBroker: boolean | undefined

  constructor(journal: Journal, isAlive: (id: string) => boolean) {
    this.#journal = journal
    this.#isAlive = isAlive
    const db = journal.db
    this.inboxes = new Inboxes(journal)
    // A name held for a successor is not free to take.
    this.#registry = new ThreadRegistry(journal, isAlive, () => this.remote?.namesChanged(), (id) => this.successions.isHeld(id))
    this.#dead = deadLetterInsert(db)
    this.#outbox = db.prepare('INSERT OR IGNORE INTO outbox (msg_id, dest, body, at, trace) VALUES (?, ?, ?, ?, ?)')
    this.received = new ReceivedIds(journal)
    this.keys = new SendKeys(journal)
    this.nameSends = new NameSends(journal, {
      remote: () => this.remote,
      homeOf: (id) => this.homeOf(id),
      isRemote: (id) => this.isRemote(id),
      outbox: (dest, msgId, e, trace) => this.outbox(dest, msgId, e, trace),
      deliver: (from, thread, body, msgId, name, trace) => this.#deliver(from, thread, body, msgId, thread, name, trace),
      put: (thread, from, body, msgId, at, trace) => this.inboxes.put(thread, from, body, msgId, at, trace),
      deadLetter: (from, to, body, reason) => this.deadLetter(from, to, body, reason),
    })
    this.successions = new HandOvers(journal, { registry: this.#registry, inboxes: this.inboxes, keys: this.keys, nameSends: this.nameSends })
    this.#catchUps = new CatchUps(journal, {
      outbox: (dest, msgId, e) => this.outbox(dest, msgId, e),
      deliver: (from, thread, body, msgId, trace) => {
        this.#deliver(from, thread, body, msgId, thread, undefined, trace)
      },
      put: (from, thread, body, msgId, trace) => this.inboxes.put(thread, from, body, msgId, Date.now(), trace),
    })
    this.#forwardSet = db.prepare('INSERT OR REPLACE INTO forwards (thread, weave, at) VALUES (?, ?, ?)')
    this.#forwardDel = db.prepare('DELETE FROM forwards WHERE thread = ?')
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

  /**
   * Is `id` a thread of another weave, reached through the transport? Also while this weave runs
   * without one, if its journal has run with a broker (meta 'amqp'): what goes to such a thread (a
   * message, an exit, a kill, a watch) waits in the outbox for the next run with the broker, as a
   * join's answer does and as `raiment send` with no weave running does (src/cli/messages.ts).
   * Before, an exit for a parent or monitor there was dropped, and a message dead-lettered.
   */
  isRemote(id: string): boolean {
    if (this.remote === null && !(this.#ranWithBroker ??= this.#journal.meta('amqp') !== undefined)) return false
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
    if (!this.receiveOnce(msgId, after, origin)) return
    const resolved = this.resolve(to)
    const target = name === undefined ? resolved : (this.#registry.holder(name) ?? null)
    // A keyed send (src/send-keys.ts) taken before for this receiver, through any weave: dropped.
    const key = keyOf(msgId)
    if (key !== null) {
      const receiver = target ?? name ?? to
      if (this.keys.seen(receiver, key) !== undefined) return
      this.keys.record(receiver, key, null)
    }
    // It moved here, and a message its sender sent before, which went the way the thread was,
    // may come back behind this one (src/catch-up.ts). Only a message sent straight from its
    // sender's weave waits: one sent on by another weave is such an earlier one, or races as before.
    const src = senderWeave(origin)
    if (target !== null && src !== null && from !== null && weaveOfThread(from) === src && this.#catchUps.holdsFrom(target, src) && this.#isAlive(target)) {
      this.#catchUps.hold(target, from, body, msgId, trace)
      return
    }
    this.#deliver(from, to, body, msgId, resolved, name, trace, true)
  }

  /**
   * A message for a thread that left, taken back from this weave's outbox as no weave took the
   * record it left with (src/weave-moves.ts `refused`): delivered here as it was sent, once (its
   * outbox row goes in this batch; a keyed send's key was recorded when it was sent or taken here).
   */
  takeBack(msgId: string, e: Extract<Envelope, { k: 'msg' }>, trace: string | null): void {
    this.#deliver(e.from, e.to, e.body, msgId, this.resolve(e.to), e.name, trace)
  }

  /**
   * A fence from another weave (src/catch-up.ts), once per `msgId`: taken if it came back here
   * (nothing more if its thread left meanwhile), else passed on to where its thread moved from
   * here, else sent back.
   */
  fenceIn(msgId: string, f: Fence, after: () => void, origin?: Origin): void {
    if (!this.receiveOnce(msgId, after, origin)) return
    const self = this.#journal.weaveId
    const moved = this.#forwards.get(f.target)
    if (f.back === self) this.#catchUps.returned(f)
    else this.outbox(moved ?? f.back, hopId(msgId, self), f)
  }

  /**
   * True the first time `msgId` comes from another weave: its id is queued into `received` (the
   * caller queues what it carries in the same batch) and `after` runs once that is durable.
   * False for a duplicate: `after` runs once what is queued now is durable.
   */
  receiveOnce(msgId: string, after: () => void, origin?: Origin): boolean {
    return this.received.once(msgId, origin, after)
  }

  /** The weave runs its threads: the timers of what an earlier run left start (src/catch-up.ts). */
  start(): void {
    this.#catchUps.start()
  }

  /** The weave closes: no timer of its own runs on. */
  stop(): void {
    this.#catchUps.stop()
  }

  /**
   * Thread `thread` is stopped to move on: what is held for it while it catches up goes into its
   * inbox now, to travel with it (its order with what is still on its way is given up).
   */
  beforeDeparture(thread: string): void {
    this.#catchUps.end(thread, true)
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
    this.#registry.departed(thread, (id) => this.homeOf(id) === this.#journal.weaveId)
    // A keeper that moves: what it holds here is let go as at its end.
    this.successions.departed(thread)
    this.inboxes.departed(thread)
  }

  /**
   * A thread arrived from another weave (`refused`: came back, as no weave took the record it left
   * with): its inbox (in order), names and traps, queued here.
   */
  arrived(r: MoveRecord, refused = false): void {
    const thread = r.thread.id
    // What was sent to it from here went through this weave: it catches up (src/catch-up.ts).
    // (Back from a record no weave took: nothing went anywhere.)
    const via = this.homeOf(thread)
    if (!refused && this.remote !== null && via !== null && via !== this.#journal.weaveId) this.#catchUps.begin(thread, via)
    this.#forwards.delete(thread)
    this.#journal.queue(this.#forwardDel, [thread])
    if (weaveOfThread(thread) !== this.#journal.weaveId) this.#guests.add(thread)
    this.inboxes.putMoved(thread, r.inbox)
    for (const name of r.names) this.#registry.give(name, thread)
    // After its inbox: what waited for its names comes after what was sent to it before.
    for (const name of r.names) this.nameSends.registered(name, thread)
    if (r.traps) this.#registry.trapExits(thread, true)
    for (const [key, at] of r.keys ?? []) this.keys.record(thread, key, null, at)
    for (const w of r.watches ?? []) this.#registry.watchOne(thread, w.watcher, w.kind)
    // What it monitors on other weaves than this one: recorded, for its end's unwatch there.
    for (const t of r.watching ?? []) if (this.homeOf(t) !== this.#journal.weaveId) this.#registry.watchOne(t, thread, 'monitor')
  }

  /**
   * Sends weave `dest` a thread to spawn under `id` (chosen here); a parent hears of its end.
   * @throws MessageTooLarge (nothing sent) when its params are bigger than a message may be
   */
  spawnRemote(dest: string, id: string, type: string, params: unknown, parent: string | null, trace: string | null = null): void {
    const encoded = encodeValue(params, 'params')
    checkMessageSize(`the params of thread ${id} (its spawn on weave '${dest}')`, encoded, this.maxBytes)
    this.outbox(dest, `spawn:${id}`, { k: 'spawn', id, type, params: encoded, parent }, trace)
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
   * `limit`: the largest message taken (Infinity for what the weave sends itself: an exit
   * message, a watch's answer; one the broker refuses is dead-lettered, and a small one that says
   * so goes in its place: src/refused-sends.ts).
   * @throws MessageTooLarge (nothing sent) when the message is bigger than `limit`
   */
  send(from: string | null, to: string, value: unknown, msgId: MsgId, trace: string | null = null, limit = this.maxBytes): SendResult {
    const body = encodeValue(value, 'the message')
    // Refused before anything is queued: here as across weaves (src/message-size.ts).
    if (limit !== Infinity) checkMessageSize(`the message to ${to}`, body, limit)
    // A keyed send (src/send-keys.ts): once per receiver and key, its row in the batch of the message.
    if (typeof msgId !== 'string' || keyOf(msgId) === null) return this.#send(from, to, body, msgId, trace)
    return this.keys.once(this.#keyReceiver(to), msgId, () => this.#send(from, to, body, msgId, trace))
  }

  /**
   * Whom a keyed send to `to` is for, as its receiver's weave counts it: the thread `to` names
   * here, or, for a name held on another weave, the thread the transport knows holds it (so a
   * retry by the name of a send by the id, or the other way round, is a duplicate here too, as it
   * is there); else `to` itself (a name not known yet).
   */
  #keyReceiver(to: string): string {
    const here = this.resolve(to)
    if (here !== null) return here
    const found = this.remote?.resolveName(to) ?? null
    return found !== null && found !== 'unknown' ? found.thread : to
  }

  #send(from: string | null, to: string, body: string, msgId: MsgId, trace: string | null): SendResult {
    if (this.remote !== null && !to.includes('/') && this.#registry.holder(to) === undefined) return this.nameSends.send(this.remote, from, to, body, idOf(msgId), trace)
    const target = this.resolve(to)
    if (target !== null && this.#catchUps.has(target) && this.#isAlive(target)) {
      // It moved here, and what was sent to it from here before may be on its way: held till then.
      this.#catchUps.hold(target, from, body, idOf(msgId), trace)
      return { delivered: true, to: target }
    }
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

  /** Puts a message (`body`, encoded) into the dead letters, in the current batch, saying why. */
  deadLetter(from: string | null, to: string, body: string, reason: string): SendResult {
    this.#journal.queue(this.#dead, [from, to, body, reason, Date.now()])
    return { delivered: false, to, reason }
  }

  /**
   * Delivers here, forwards to where `target` moved, or dead-letters. `name`: the message was
   * sent by that name from another weave; it goes to the thread holding the name here now, and
   * is a dead letter if none does (and the thread it was sent to did not move on with it).
   */
  #deliver(from: string | null, to: string, body: string, msgId: MsgId, target = this.resolve(to), name?: string, trace: string | null = null, hop = false): SendResult {
    const holder = name === undefined ? undefined : this.#registry.holder(name)
    if (holder !== undefined) target = holder
    // A thread that moved on: forwarded, under the same id (so its new weave takes it once).
    const moved = target === null ? undefined : this.#forwards.get(target)
    if (moved !== undefined && target !== null) {
      this.outbox(moved, hop ? hopId(idOf(msgId), this.#journal.weaveId) : idOf(msgId), { k: 'msg', from, to: target, body, ...(name !== undefined ? { name } : {}) }, trace)
      return { delivered: true, to: target }
    }
    if (name !== undefined && holder === undefined) {
      return this.deadLetter(from, name, body, `no thread is registered as '${name}' on weave ${this.#journal.weaveId}`)
    }
    if (target !== null && this.successions.isHeld(target)) {
      // Ended, and what is sent to it waits for its successor (src/successions.ts).
      this.inboxes.put(target, from, body, msgId, Date.now(), trace)
      return { delivered: true, to: target }
    }
    if (target === null || !this.#isAlive(target)) {
      const reason = target === null ? `no thread is registered as '${to}'` : this.#journal.thread(target) ? `thread ${target} has ended` : `no thread ${target} exists`
      // An exit message (its id `exit:…`) for a thread that has ended goes with it, as those it left unread do (src/inboxes.ts).
      if (!idOf(msgId).startsWith('exit:')) this.#journal.queue(this.#dead, [from, to, body, reason, Date.now()])
      return { delivered: false, to, reason }
    }
    this.inboxes.put(target, from, body, msgId, Date.now(), trace)
    return { delivered: true, to: target }
  }

  /** Takes the first message matching `pattern` from `thread`'s inbox, waiting until `until` (src/inboxes.ts). */
  take(thread: string, pattern: unknown, until: number | null, onAbort: OnAbort | null): Promise<Received | TimedOut> {
    return this.inboxes.take(thread, pattern, until, onAbort)
  }

  /** The first message of `thread`'s inbox numbered after `after`, left there; waits like take. */
  peek(thread: string, after: number, until: number | null, onAbort: OnAbort | null): Promise<Received | TimedOut> {
    return this.inboxes.peek(thread, after, until, onAbort)
  }

  /** Takes message number `n` (found by peek). */
  takeNumber(thread: string, n: number, onAbort: OnAbort | null = null): Received {
    return this.inboxes.takeNumber(thread, n, onAbort)
  }

  /** Lets go of `thread`'s inbox in memory (it left memory: src/passivation/). */
  unload(thread: string): void {
    this.inboxes.unload(thread)
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

  /**
   * The thread holding `name`, here or (announced) on another weave, or null. A name held for a
   * successor (src/successions.ts) answers the ended thread's id, as other weaves do, until the
   * successor takes it: what is sent to that id meanwhile waits for the successor too.
   */
  whereis(name: string): string | null {
    const id = this.#registry.holder(name)
    if (id !== undefined) return this.#isAlive(id) || this.successions.isHeld(id) ? id : null
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
   * A thread has ended with `status`: free its names, drop its watches, dead-letter what it never
   * received; unless its keeper holds them for a successor (src/successions.ts), then its names
   * and inbox stay. The threads it held so, as a keeper, no successor takes now: their messages
   * go to the dead letters and their names are freed. Queued in the same batch as the thread's
   * end. Returns the threads it watched.
   */
  ended(thread: string, status: string): string[] {
    // Held only for a keeper alive on this weave: one that moved away cannot take them here.
    const held = this.successions.ended(thread, status, (k) => this.#isAlive(k) && !this.isRemote(k))
    const watched = this.#registry.ended(thread, held)
    if (held) this.inboxes.endedHeld(thread)
    else this.inboxes.ended(thread)
    this.successions.release(thread, 'ended')
    return watched
  }

  /** A thread of another weave has ended: the watches it holds here, or that are held of it, go. */
  endedThere(thread: string): void {
    this.#registry.ended(thread)
    this.successions.release(thread, 'ended')
  }
}

/**
 * Sends by a name that no thread of this weave holds: placed through the transport
 * (`Remote.resolveName`, whose rule is in src/amqp/name-owners.ts), and, while the transport
 * cannot yet say which weave holds the name (the broker is down, or this weave has not yet heard
 * from every live weave and has never heard of the name), kept waiting here (table
 * `outbox_names`) instead of being dead-lettered.
 *
 * Invariants:
 * - A send by such a name goes, in the batch that records it, to the outbox for the weave holding
 *   the name (the envelope keeps the name: that weave delivers it to whichever of its threads
 *   holds the name when it arrives), to the dead letters when the transport knows for sure that
 *   no weave holds it, or into this table, where it waits. So it exists exactly when the sender's
 *   record says it was sent.
 * - While a message waits for a name, every later send by that name waits behind it (`waits`), so
 *   messages by one name leave here in the order sent.
 * - `retry` takes every message waiting for a name at once, in order, into the outbox or the dead
 *   letters, and deletes them here, in one batch. Its statements read the table when the batch
 *   commits, so they take the rows queued earlier in that batch too; a send after it is queued
 *   after it and goes behind them. A name registered here meanwhile (`registered`) gets its
 *   waiting messages in its inbox, in order, the ones not yet committed included, in the batch
 *   that registers it, each once (a message both committed and still queued, its batch not yet
 *   released, is taken from the table).
 * - The names of a thread that moves to another weave are announced from here as moved (`moved`,
 *   kept in table moved_names, so across a restart of this weave too)
 *   until that weave announces them itself: other weaves keep sending by them (to the thread's
 *   id, which this weave forwards) instead of finding no weave that holds them meanwhile.
 */
import type Database from 'better-sqlite3'
import type { Journal } from './journal.js'
import type { Envelope, SendResult } from './messages.js'
import type { NameLookup, Remote } from './remote.js'

type Stmt = Database.Statement<unknown[]>

/** A message waiting for its name. */
interface Waiting {
  msgId: string
  from: string | null
  body: string
  at: number
  /** The trace context of the send (src/observer.ts), if observed. */
  trace: string | null
}

/** What `Messages` lends this module (its own steps, so that they stay private there). */
export interface NameSendsHost {
  remote(): Remote | null
  homeOf(id: string): string | null
  isRemote(id: string): boolean
  outbox(dest: string, msgId: string, envelope: Envelope, trace: string | null): void
  /** Delivers `thread` here by `name` (or forwards it, or dead-letters it), in the current batch. */
  deliver(from: string | null, thread: string, body: string, msgId: string, name: string, trace: string | null): SendResult
  /** Puts a message into `thread`'s inbox here, in the current batch. */
  put(thread: string, from: string | null, body: string, msgId: string, at: number, trace: string | null): void
  deadLetter(from: string | null, to: string, body: string, reason: string): SendResult
}

export class NameSends {
  readonly #journal: Journal
  readonly #host: NameSendsHost
  readonly #hold: Stmt
  readonly #toOutbox: Stmt
  readonly #toDead: Stmt
  readonly #drop: Stmt
  readonly #count: Stmt
  readonly #load: Stmt
  /** Names with messages waiting (committed, or queued in the current batch). */
  readonly #waiting: Set<string>
  /** Messages queued to wait and not yet committed, by name, in order. */
  readonly #queued = new Map<string, Waiting[]>()
  /** Names of threads that moved from here, until their new weave announces them: name → thread (table moved_names). */
  readonly #moved: Map<string, string>
  readonly #movedSet: Stmt
  readonly #movedDel: Stmt

  constructor(journal: Journal, host: NameSendsHost) {
    this.#journal = journal
    this.#host = host
    const db = journal.db
    this.#hold = db.prepare('INSERT OR IGNORE INTO outbox_names (msg_id, name, sender, body, at, trace) VALUES (?, ?, ?, ?, ?, ?)')
    // The envelope as `send` writes it: { k: 'msg', from, to, body, name }.
    this.#toOutbox = db.prepare(
      `INSERT OR IGNORE INTO outbox (msg_id, dest, body, at, trace)
       SELECT msg_id, ?, json_object('k', 'msg', 'from', sender, 'to', ?, 'body', body, 'name', name), at, trace FROM outbox_names WHERE name = ? ORDER BY n`,
    )
    this.#toDead = db.prepare('INSERT INTO dead_letters (sender, recipient, body, reason, at) SELECT sender, name, body, ?, ? FROM outbox_names WHERE name = ? ORDER BY n')
    this.#drop = db.prepare('DELETE FROM outbox_names WHERE name = ?')
    this.#count = db.prepare('SELECT count(*) FROM outbox_names').pluck()
    this.#load = db.prepare('SELECT msg_id AS msgId, sender AS "from", body, at, trace FROM outbox_names WHERE name = ? ORDER BY n')
    this.#waiting = new Set(db.prepare('SELECT DISTINCT name FROM outbox_names').pluck().all() as string[])
    this.#movedSet = db.prepare('INSERT OR REPLACE INTO moved_names (name, thread) VALUES (?, ?)')
    this.#movedDel = db.prepare('DELETE FROM moved_names WHERE name = ?')
    this.#moved = new Map((db.prepare('SELECT name, thread FROM moved_names').raw(true).all() as Array<[string, string]>).map(([n, t]) => [n, t]))
  }

  /** Messages waiting (committed). */
  count(): number {
    return this.#count.get() as number
  }

  /**
   * Sends `body` by `name`, a name no thread of this weave holds (see the top of this file).
   * `trace`: the trace context it was sent in, kept with it while it waits.
   */
  send(remote: Remote, from: string | null, name: string, body: string, msgId: string, trace: string | null = null): SendResult {
    const h = this.#host
    if (!this.#waiting.has(name)) {
      const found = this.#lookup(remote, name)
      if (found === null) return h.deadLetter(from, name, body, `no thread is registered as '${name}'`)
      if (found !== 'unknown') {
        if (!h.isRemote(found.thread)) return h.deliver(from, found.thread, body, msgId, name, trace)
        h.outbox(h.homeOf(found.thread)!, msgId, { k: 'msg', from, to: found.thread, body, name }, trace)
        return { delivered: true, to: found.thread }
      }
    }
    this.#hold1(from, name, body, msgId, trace)
    return { delivered: true, to: name }
  }

  /**
   * Which thread holds `name`, as the transport knows; failing that, the thread that moved from
   * here with it, until its new weave announces it (the transport never hears this weave's own
   * announcement of it as moved: without this, a send from here was dead-lettered meanwhile).
   */
  #lookup(remote: Remote, name: string): NameLookup {
    const found = remote.resolveName(name)
    if (found !== null && found !== 'unknown') return found
    const moved = this.#moved.get(name)
    return moved === undefined ? found : { thread: moved }
  }

  #hold1(from: string | null, name: string, body: string, msgId: string, trace: string | null): void {
    this.#waiting.add(name)
    const w: Waiting = { msgId, from, body, at: Date.now(), trace }
    let queued = this.#queued.get(name)
    if (queued === undefined) this.#queued.set(name, (queued = []))
    queued.push(w)
    this.#journal.queue(this.#hold, [msgId, name, from, body, w.at, trace], () => {
      const q = this.#queued.get(name)
      const i = q?.indexOf(w) ?? -1
      if (i < 0) return
      q!.splice(i, 1)
      if (q!.length === 0) this.#queued.delete(name)
    })
  }

  /**
   * What the transport knows of names changed: the messages waiting for a name it can place now
   * go to the outbox (or, when no weave holds it, to the dead letters), in the order sent.
   */
  retry(): void {
    const remote = this.#host.remote()
    if (remote === null || this.#waiting.size === 0) return
    for (const name of [...this.#waiting]) {
      const found = this.#lookup(remote, name)
      if (found === 'unknown') continue
      this.#waiting.delete(name)
      // Moved on with the rows (below): a registration before their hold is released must not put them again.
      this.#queued.delete(name)
      if (found !== null) {
        const dest = this.#host.homeOf(found.thread) ?? this.#journal.weaveId
        this.#journal.queue(this.#toOutbox, [dest, found.thread, name])
      } else this.#journal.queue(this.#toDead, [`no thread is registered as '${name}'`, Date.now(), name])
      this.#journal.queue(this.#drop, [name], () => remote.wake())
    }
  }

  /** A thread that held `names` moved from here: announce them as moved until they are claimed. */
  left(names: Iterable<string>, thread: string): void {
    for (const name of names) {
      this.#moved.set(name, thread)
      this.#journal.queue(this.#movedSet, [name, thread])
    }
  }

  /** Another weave announced `names`: those that moved from here to it are its to announce now. */
  claimed(names: Record<string, string>): void {
    if (this.#moved.size === 0) return
    for (const [name, thread] of this.#moved) if (Object.hasOwn(names, name) && names[name] === thread) this.#forgetMoved(name)
  }

  #forgetMoved(name: string): void {
    if (this.#moved.delete(name)) this.#journal.queue(this.#movedDel, [name])
  }

  /** The names announced as moved (name → thread), or undefined for none. */
  moved(): Record<string, string> | undefined {
    return this.#moved.size === 0 ? undefined : Object.fromEntries(this.#moved)
  }

  /** `name` was registered here for `thread`: what waited for it goes into its inbox, in order. */
  registered(name: string, thread: string): void {
    this.#forgetMoved(name)
    if (!this.#waiting.delete(name)) return
    // Those committed, then those queued and not yet in the table: a batch committed and not yet
    // released (under 'replicated', held for the stream's confirm) has them in both.
    const all = this.#load.all(name) as Waiting[]
    const queued = this.#queued.get(name)
    if (queued !== undefined) {
      const loaded = new Set(all.map((m) => m.msgId))
      for (const m of queued) if (!loaded.has(m.msgId)) all.push(m)
    }
    this.#journal.queue(this.#drop, [name])
    for (const m of all) this.#host.put(thread, m.from, m.body, m.msgId, m.at, m.trace ?? null)
  }
}

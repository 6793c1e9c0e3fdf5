/**
 * Where the names registered on other weaves are: what the live weaves announce, and, durably,
 * the weave and thread each name was last heard registered on (table `name_owners`), so that a
 * name keeps receiving while its weave, the broker or the connection to it is down.
 *
 * The rule for a name no thread of this weave holds (`NameOwners.resolve`), in order:
 * 1. A live weave announces it: its thread (if several do, the latest announcement's).
 * 2. Else a weave was heard announcing it and has not announced itself without it since: that
 *    weave's thread, live or not. The message waits in the outbox while the broker is down and in
 *    that weave's queue while the weave is down; when the weave takes it, it delivers it to
 *    whichever of its threads holds the name then (or, for a thread that moved on with its names,
 *    forwards it), and otherwise dead-letters it: the weave that held the name says it does not
 *    any more, which is authoritative.
 * 3. Else, when the view is complete (src/amqp/membership.ts: this weave has heard every weave
 *    connected to the broker since it connected), no weave holds it: null, and the message is a
 *    dead letter on the sending weave.
 * 4. Else 'unknown' (the broker is down, or this weave connected less than three heartbeats ago,
 *    and it has never heard of the name): the message waits here, in order, until 1, 2 or 3
 *    holds (src/name-sends.ts).
 *
 * A name's entry changes only on a heartbeat: set when a weave announces the name (a newer
 * announcement by another weave takes it over), deleted when the weave holding it announces
 * itself without it. A weave whose thread moved away with the name announces it as moved until
 * the new weave announces it: the entry stays (on that weave and the thread, whose id routes
 * there and is forwarded), so the name is never without a holder while the thread is in transit.
 * A weave's goodbye (`leaving`) keeps its names: they are registered still, and its threads
 * resume with them.
 */
import type Database from 'better-sqlite3'
import type { Journal } from '../journal.js'
import type { NameLookup } from '../remote.js'
import type { Beat, Membership, Seen } from './membership.js'

type Stmt = Database.Statement<unknown[]>

interface Owner {
  weave: string
  thread: string
}

export class NameOwners {
  readonly #journal: Journal
  readonly #set: Stmt
  readonly #delete: Stmt
  /** name → its last known owner (mirrors name_owners, ahead of its commit). */
  readonly #owners = new Map<string, Owner>()
  /** weave → the names it is the last known owner of. */
  readonly #byWeave = new Map<string, Set<string>>()

  constructor(journal: Journal) {
    this.#journal = journal
    const db = journal.db
    this.#set = db.prepare('INSERT OR REPLACE INTO name_owners (name, weave, thread, at) VALUES (?, ?, ?, ?)')
    this.#delete = db.prepare('DELETE FROM name_owners WHERE name = ?')
    for (const [name, weave, thread] of db.prepare('SELECT name, weave, thread FROM name_owners').raw(true).all() as Array<[string, string, string]>) {
      this.#own(name, { weave, thread })
    }
  }

  #own(name: string, o: Owner): void {
    const before = this.#owners.get(name)
    if (before !== undefined) this.#byWeave.get(before.weave)?.delete(name)
    this.#owners.set(name, o)
    let names = this.#byWeave.get(o.weave)
    if (names === undefined) this.#byWeave.set(o.weave, (names = new Set()))
    names.add(name)
  }

  /**
   * A heartbeat of another weave: its names become theirs, and the names it was the last known
   * owner of and no longer announces are forgotten (queued in the journal's next batch).
   * Returns whether anything changed.
   */
  heard(b: Beat): boolean {
    if (typeof b.names !== 'object' || b.names === null || typeof b.id !== 'string') return false // not a weave's beat
    let changed = false
    for (const [name, thread] of Object.entries(b.names)) {
      if (typeof thread !== 'string') continue
      const o = this.#owners.get(name)
      if (o?.weave === b.id && o.thread === thread) continue
      this.#own(name, { weave: b.id, thread })
      this.#journal.queue(this.#set, [name, b.id, thread, b.at])
      changed = true
    }
    const moved = typeof b.moved === 'object' && b.moved !== null ? b.moved : {}
    for (const [name, thread] of Object.entries(moved)) {
      // Kept on this weave (which forwards to the thread) unless another weave announced it since.
      const o = this.#owners.get(name)
      if (typeof thread !== 'string' || (o !== undefined && (o.weave !== b.id || o.thread === thread))) continue
      this.#own(name, { weave: b.id, thread })
      this.#journal.queue(this.#set, [name, b.id, thread, b.at])
      changed = true
    }
    const held = this.#byWeave.get(b.id)
    if (held !== undefined) {
      for (const name of held) {
        if (Object.hasOwn(b.names, name) || Object.hasOwn(moved, name)) continue
        held.delete(name)
        this.#owners.delete(name)
        this.#journal.queue(this.#delete, [name])
        changed = true
      }
    }
    return changed
  }

  /** Where `name` is registered, by the rule at the top of this file. */
  resolve(name: string, members: Membership | null): NameLookup {
    let best: Seen | null = null
    for (const b of members?.live() ?? []) {
      if (Object.hasOwn(b.names, name) && (best === null || b.at > best.at)) best = b
    }
    if (best !== null) return { thread: best.names[name]! }
    const known = this.#owners.get(name)
    if (known !== undefined) return { thread: known.thread }
    return members?.complete() === true ? null : 'unknown'
  }
}

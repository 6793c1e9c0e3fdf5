/**
 * What the threads of one weave registered: the names they hold (table `names`), who watches whom
 * (table `watches`: monitors, links and, from other weaves, joins) and which threads trap exits
 * (table `traps`). Held by the weave's `Messages` (src/messages.ts), which resolves names through
 * it and tells it when a thread ends or leaves.
 *
 * Invariants:
 * - Each change is queued in the current batch, with the call or the end that makes it; the maps
 *   here run ahead of those commits, so what a thread registered counts at once.
 * - A name has one holder; `#namesOf` is the exact reverse of `#names`. The names table as
 *   committed and released (what the heartbeat announces) is `#names` but for the names in
 *   `#unreleased`, which says their holder as released: a name has an entry there from its first
 *   change queued until every change queued of it is released (in commit order), when `#names`
 *   holds its last one. So a name costs one entry in `#names` and one in `#namesOf` (a string
 *   for a thread's only name, a Set only for a thread holding several), whether its thread is in
 *   memory, passivated or ended holding it for a successor: a passivated thread costs nothing
 *   else here.
 * - `#watched` is a superset of the threads with rows in watches (as target or watcher), kept
 *   until the thread ends, so a thread that never watched nor was watched costs no query at its
 *   end; `#trapping` mirrors the traps table.
 * - Who watches a thread is the watches table as committed and the watches queued in batches not
 *   yet committed (`#pending`, each dropped by its batch's callback): a watch set up in the batch
 *   in which its target ends is told of that end (the end's DELETE follows the INSERT there).
 */
import type Database from 'better-sqlite3'
import type { Journal } from './journal.js'
import { NameTaken, type WatchKind } from './message-shapes.js'

type Stmt = Database.Statement<unknown[]>

export class ThreadRegistry {
  readonly #journal: Journal
  readonly #isAlive: (id: string) => boolean
  /** Run once a change of names is durable (the transport announces them). */
  readonly #namesChanged: () => void
  /** Each name's holder, ahead of the commits. */
  readonly #names = new Map<string, string>()
  /** The names each thread holds (the exact reverse of #names): its only name, or a Set of two or more. */
  readonly #namesOf = new Map<string, string | Set<string>>()
  /**
   * The names with changes queued and not all released: the holder as released (undefined: none)
   * and how many of its changes are still to release. Other names are released as in #names.
   */
  readonly #unreleased = new Map<string, { released: string | undefined; left: number }>()
  /** Threads that trap exits (mirrors the traps table, ahead of its commit). */
  readonly #trapping = new Set<string>()
  /**
   * Threads that may have rows in watches, as target or watcher (a superset: kept until the
   * thread ends), so a thread that never watched nor was watched costs no query at its end.
   */
  readonly #watched = new Set<string>()
  /** Watches queued and not yet committed, by target. */
  readonly #pending = new Map<string, Array<{ watcher: string; kind: WatchKind }>>()
  readonly #nameSet: Stmt
  readonly #nameDel: Stmt
  readonly #watch: Stmt
  readonly #trapSet: Stmt
  readonly #trapDel: Stmt
  readonly #unwatchAll: Stmt
  readonly #unwatchPair: Stmt
  readonly #watchersOf: Stmt
  readonly #targetsOf: Stmt

  /** Is a thread that ended holding its names for a successor (src/successions.ts)? */
  readonly #isHeld: (id: string) => boolean

  /** `namesChanged` runs once a change of names is durable; `isHeld`: see #isHeld. */
  constructor(journal: Journal, isAlive: (id: string) => boolean, namesChanged: () => void, isHeld: (id: string) => boolean = () => false) {
    this.#journal = journal
    this.#isAlive = isAlive
    this.#isHeld = isHeld
    this.#namesChanged = namesChanged
    const db = journal.db
    for (const r of db.prepare('SELECT name, thread FROM names').raw().iterate() as Iterable<[string, string]>) this.#name(r[0], r[1])
    this.#nameSet = db.prepare('INSERT OR REPLACE INTO names (name, thread) VALUES (?, ?)')
    this.#nameDel = db.prepare('DELETE FROM names WHERE name = ?')
    this.#watch = db.prepare('INSERT OR IGNORE INTO watches (target, watcher, kind) VALUES (?, ?, ?)')
    this.#trapSet = db.prepare('INSERT OR IGNORE INTO traps (thread) VALUES (?)')
    this.#trapDel = db.prepare('DELETE FROM traps WHERE thread = ?')
    this.#unwatchAll = db.prepare('DELETE FROM watches WHERE target = ? OR watcher = ?')
    this.#unwatchPair = db.prepare('DELETE FROM watches WHERE target = ? AND watcher = ?')
    for (const t of db.prepare('SELECT thread FROM traps').pluck().all() as string[]) this.#trapping.add(t)
    for (const r of db.prepare('SELECT target, watcher FROM watches').raw().all() as Array<[string, string]>) {
      this.#watched.add(r[0])
      this.#watched.add(r[1])
    }
    this.#watchersOf = db.prepare('SELECT watcher, kind FROM watches WHERE target = ?')
    this.#targetsOf = db.prepare('SELECT DISTINCT target FROM watches WHERE watcher = ?').pluck()
  }

  /** The thread here that holds `name`, alive or not, or undefined. */
  holder(name: string): string | undefined {
    return this.#names.get(name)
  }

  /**
   * This weave's registered names and their threads, as committed: a name registered in a batch
   * not yet durable (or, under 'replicated', not yet in the stream) is not announced, since a
   * crash would undo it, and other weaves would have sent it what should have waited.
   */
  names(): Record<string, string> {
    const released: Array<[string, string]> = []
    for (const [name, thread] of this.#names) if (!this.#unreleased.has(name)) released.push([name, thread])
    for (const [name, u] of this.#unreleased) if (u.released !== undefined) released.push([name, u.released])
    return Object.fromEntries(released)
  }

  /** The names `thread` holds (live: copy it to change names while going through it). */
  namesOf(thread: string): Iterable<string> {
    const held = this.#namesOf.get(thread)
    return held === undefined ? [] : typeof held === 'string' ? [held] : held
  }

  /** Gives `name` to `thread` in memory (taking it from a previous owner). */
  #name(name: string, thread: string): void {
    const before = this.#names.get(name)
    if (before === thread) return
    if (before !== undefined) this.#drop(name, before)
    this.#names.set(name, thread)
    const held = this.#namesOf.get(thread)
    if (held === undefined) this.#namesOf.set(thread, name)
    else if (typeof held === 'string') this.#namesOf.set(thread, new Set([held, name]))
    else held.add(name)
  }

  /** Takes `name` off what `thread` holds in #namesOf (a Set left with one name becomes that name). */
  #drop(name: string, thread: string): void {
    const held = this.#namesOf.get(thread)
    if (held === name) this.#namesOf.delete(thread)
    else if (typeof held === 'object' && held.delete(name) && held.size === 1) this.#namesOf.set(thread, held.values().next().value!)
  }

  /**
   * Queues the change of `name` to `thread` (undefined: freed) in the current batch. Called before
   * #names changes, so a name's first unreleased change records its holder as released.
   */
  #queue(name: string, thread: string | undefined): void {
    let u = this.#unreleased.get(name)
    if (u === undefined) this.#unreleased.set(name, (u = { released: this.#names.get(name), left: 0 }))
    u.left++
    const change = u
    this.#journal.queue(thread === undefined ? this.#nameDel : this.#nameSet, thread === undefined ? [name] : [name, thread], () => {
      if (--change.left === 0) this.#unreleased.delete(name)
      else change.released = thread
      this.#namesChanged()
    })
  }

  /** Gives `name` to `thread`, taking it from whoever held it (in the current batch). */
  give(name: string, thread: string): void {
    this.#queue(name, thread)
    this.#name(name, thread)
  }

  /**
   * Registers `name` for `thread`.
   * @throws NameTaken when another thread that is alive holds it, or one that ended holding it for a successor
   */
  register(name: string, thread: string): void {
    const owner = this.#names.get(name)
    if (owner !== undefined && owner !== thread) {
      if (this.#isHeld(owner)) throw new NameTaken(name, owner, true)
      if (this.#isAlive(owner)) throw new NameTaken(name, owner)
    }
    this.give(name, thread)
  }

  /** Frees `name` if `thread` holds it; returns whether it did. */
  unregister(name: string, thread: string): boolean {
    if (this.#names.get(name) !== thread) return false
    this.#queue(name, undefined)
    this.#names.delete(name)
    this.#drop(name, thread)
    return true
  }

  /** Frees every name `thread` holds (in the current batch). */
  freeAll(thread: string): void {
    for (const name of [...this.namesOf(thread)]) this.unregister(name, thread)
  }

  /** `to` takes every name `from` holds (in the current batch); returns them. */
  handOver(from: string, to: string): string[] {
    const names = [...this.namesOf(from)]
    for (const name of names) this.give(name, to)
    return names
  }

  /** One watch row: `watcher` is told of `target`'s end (queued in the current batch). */
  watchOne(target: string, watcher: string, kind: WatchKind): void {
    this.#watched.add(target)
    this.#watched.add(watcher)
    const w = { watcher, kind }
    let list = this.#pending.get(target)
    if (list === undefined) this.#pending.set(target, (list = []))
    list.push(w)
    this.#journal.queue(this.#watch, [target, watcher, kind], () => this.#committed(target, w))
  }

  /** A queued watch's batch committed: the table has it (or the end that followed dropped it). */
  #committed(target: string, w: { watcher: string; kind: WatchKind }): void {
    const list = this.#pending.get(target)
    const i = list?.indexOf(w) ?? -1
    if (i < 0) return
    list!.splice(i, 1)
    if (list!.length === 0) this.#pending.delete(target)
  }

  trapExits(thread: string, on: boolean): void {
    if (on) this.#trapping.add(thread)
    else this.#trapping.delete(thread)
    this.#journal.queue(on ? this.#trapSet : this.#trapDel, [thread])
  }

  traps(thread: string): boolean {
    return this.#trapping.has(thread)
  }

  /** Who watches `target`: monitors, links, and (from other weaves) joins. */
  watchers(target: string): Array<{ watcher: string; kind: WatchKind }> {
    if (!this.#watched.has(target)) return []
    const rows = this.#watchersOf.all(target) as Array<{ watcher: string; kind: WatchKind }>
    const pending = this.#pending.get(target)
    if (pending === undefined) return rows
    for (const p of pending) if (!rows.some((r) => r.watcher === p.watcher && r.kind === p.kind)) rows.push(p)
    return rows
  }

  /**
   * `thread` left for another weave: its names and trap here are dropped, and who watches it from
   * other weaves (the move record has them all). Watches of it by threads here stay, as the record
   * of what they watch on another weave now: their end sends that weave an unwatch. What it
   * watches here stays, where those threads run (their ends are sent on to it); what it watched
   * of other weaves goes (those weaves keep their rows until their threads end). `here`: is a
   * thread of this weave. In the current batch.
   */
  departed(thread: string, here: (id: string) => boolean): void {
    this.freeAll(thread)
    if (this.#watched.has(thread)) {
      for (const w of this.watchers(thread)) if (!here(w.watcher)) this.#journal.queue(this.#unwatchPair, [thread, w.watcher])
      for (const t of this.#targetsOf.all(thread) as string[]) if (!here(t)) this.#journal.queue(this.#unwatchPair, [t, thread])
    }
    if (this.#trapping.delete(thread)) this.#journal.queue(this.#trapDel, [thread])
  }

  /**
   * `thread` has ended (here, or on another weave that said so): its names are freed (unless
   * `keepNames`: they are held for a successor, src/successions.ts), its watches and trap dropped,
   * in the current batch. Returns the threads it watched (monitors, links).
   */
  ended(thread: string, keepNames = false): string[] {
    if (!keepNames) this.freeAll(thread)
    let targets: string[] = []
    if (this.#watched.delete(thread)) {
      targets = this.#targetsOf.all(thread) as string[]
      this.#journal.queue(this.#unwatchAll, [thread, thread])
      this.#pending.delete(thread)
      for (const [target, list] of this.#pending) {
        const kept = list.filter((w) => w.watcher !== thread)
        if (kept.length !== list.length && !targets.includes(target)) targets.push(target)
        if (kept.length === 0) this.#pending.delete(target)
        else if (kept.length !== list.length) this.#pending.set(target, kept)
      }
    }
    if (this.#trapping.delete(thread)) this.#journal.queue(this.#trapDel, [thread])
    return targets
  }
}

/**
 * Successions: a thread's undelivered messages and its names held, at its end, for a successor
 * (table `successions`). A thread spawned with `threads.spawn(type, params, { hold })` has a
 * keeper, the thread that spawned it (the supervisor, src/supervisor.ts). When it ends with a
 * status in `hold` while its keeper lives, what it had not received stays in its inbox, its names
 * stay its own (not freed, not announced free), and what is sent to it or to its names meanwhile
 * joins its inbox, until the keeper spawns its successor (`{ succeeds: id }`), which gets them all,
 * in order, in the batch of its spawn (src/hand-overs.ts does the moving); or until the keeper ends,
 * when they go to the dead letters and the names are freed, in the batch of the keeper's end.
 *
 * Invariants:
 * - Each change is queued in the batch of the spawn or the end that makes it; the maps here run
 *   ahead of those commits.
 * - `#plans` holds the threads running with a keeper (rows with held = 0 and no successor);
 *   `#held` the threads ended and held (held = 1). A thread is in at most one of them. A keeper's
 *   end takes its threads out of both, so a thread that ends after its keeper holds nothing.
 * - A row with a successor stays, for `raiment show`, while its keeper lives: it holds nothing.
 *   The keeper's end deletes all its rows (`#succeededBy` knows the keepers that have such rows).
 */
import type Database from 'better-sqlite3'
import type { Journal } from './journal.js'

type Stmt = Database.Statement<unknown[]>

/** The ends for which a thread's messages and names may be held: 'done', 'failed', 'killed'. */
export type HeldEnd = 'done' | 'failed' | 'killed'
export const HELD_ENDS: readonly HeldEnd[] = ['done', 'failed', 'killed']

/** What `raiment show` says of a thread's succession. */
export interface SuccessionView {
  keeper: string
  /** Its messages and names wait for a successor. */
  held: boolean
  /** The thread they went to. */
  successor: string | null
}

/** The succession of thread `id` as recorded in `db` (for `raiment show`), or undefined. */
export function successionOf(db: Database.Database, id: string): SuccessionView | undefined {
  const r = db.prepare('SELECT keeper, held, successor FROM successions WHERE thread = ?').get(id) as { keeper: string; held: number; successor: string | null } | undefined
  return r === undefined ? undefined : { keeper: r.keeper, held: r.held === 1, successor: r.successor }
}

/** The rule of a hold: a thread planned to be held at ends `on` is held at an end with `status` while its keeper is alive. */
function holdsAt(on: readonly string[], status: string, keeper: string, isAlive: (id: string) => boolean): boolean {
  return on.includes(status) && isAlive(keeper)
}

/**
 * Thread `thread` of journal `db` ended with `status` while no weave ran on it (`raiment kill`,
 * src/cli/weave-commands.ts): its plan is applied as a weave applies it at that end (`ended`, by
 * the same rule, the keeper alive meaning pending or running in this journal), written at once,
 * in the caller's transaction. Returns the keeper when its messages and names are now held for a
 * successor (they stay: nothing else to do); else undefined, and its plan, if it had one, is gone.
 * A weave that opens later loads it held, as after a crash, and takes the end, when it tells of
 * it, as held already (`ended`); its keeper's end, there, lets them go.
 */
export function endedOffline(db: Database.Database, thread: string, status: string): string | undefined {
  const r = db.prepare('SELECT keeper, on_end FROM successions WHERE thread = ? AND held = 0 AND successor IS NULL').get(thread) as { keeper: string; on_end: string } | undefined
  if (r === undefined) return undefined
  const alive = (id: string): boolean => {
    const s = db.prepare('SELECT status FROM threads WHERE id = ?').pluck().get(id) as string | undefined
    return s === 'pending' || s === 'running'
  }
  if (holdsAt(r.on_end.split(','), status, r.keeper, alive)) {
    db.prepare('UPDATE successions SET held = 1 WHERE thread = ?').run(thread)
    return r.keeper
  }
  db.prepare('DELETE FROM successions WHERE thread = ?').run(thread)
  return undefined
}

export class Successions {
  readonly #journal: Journal
  /** Threads running with a keeper: thread → its keeper and the ends for which it is held. */
  readonly #plans = new Map<string, { keeper: string; on: readonly string[] }>()
  /** Threads ended whose messages and names are held: thread → keeper. */
  readonly #held = new Map<string, string>()
  /** The threads of each keeper, planned or held (so that an end that keeps none costs no scan). */
  readonly #of = new Map<string, Set<string>>()
  /** The keepers with rows whose thread was succeeded (kept for `raiment show` until the keeper ends). */
  readonly #succeededBy = new Set<string>()
  readonly #plan: Stmt
  readonly #hold: Stmt
  readonly #drop: Stmt
  readonly #succeeded: Stmt
  readonly #dropKeeper: Stmt

  constructor(journal: Journal) {
    this.#journal = journal
    const db = journal.db
    for (const r of db.prepare('SELECT thread, keeper, on_end, held, successor FROM successions').all() as Array<{ thread: string; keeper: string; on_end: string; held: number; successor: string | null }>) {
      if (r.successor !== null) {
        this.#succeededBy.add(r.keeper)
        continue
      }
      if (r.held === 1) this.#held.set(r.thread, r.keeper)
      else this.#plans.set(r.thread, { keeper: r.keeper, on: r.on_end.split(',') })
      this.#index(r.keeper, r.thread)
    }
    this.#plan = db.prepare('INSERT OR REPLACE INTO successions (thread, keeper, on_end) VALUES (?, ?, ?)')
    this.#hold = db.prepare('UPDATE successions SET held = 1 WHERE thread = ?')
    this.#drop = db.prepare('DELETE FROM successions WHERE thread = ?')
    this.#succeeded = db.prepare('UPDATE successions SET held = 0, successor = ? WHERE thread = ?')
    this.#dropKeeper = db.prepare('DELETE FROM successions WHERE keeper = ?')
  }

  /** `thread`, just spawned by `keeper`, is held for a successor when it ends with a status in `on` (in the current batch). */
  plan(thread: string, keeper: string, on: readonly HeldEnd[]): void {
    if (on.length === 0) return
    this.#plans.set(thread, { keeper, on })
    this.#index(keeper, thread)
    this.#journal.queue(this.#plan, [thread, keeper, on.join(',')])
  }

  /**
   * `thread` ends with `status`: true when its messages and names are to be held (it has a plan
   * for that status and its keeper is alive, or it was held at its end with no weave running), in
   * the current batch; else its plan goes.
   */
  ended(thread: string, status: string, isAlive: (id: string) => boolean): boolean {
    // Held at its end already, by `raiment kill` with no weave running (`endedOffline`): it stays
    // held, as one held online and loaded after a crash; its keeper's end lets it go.
    if (this.#held.has(thread)) return true
    const p = this.#plans.get(thread)
    if (p === undefined) return false
    this.#plans.delete(thread)
    if (holdsAt(p.on, status, p.keeper, isAlive)) {
      this.#held.set(thread, p.keeper)
      this.#journal.queue(this.#hold, [thread])
      return true
    }
    this.#unindex(p.keeper, thread)
    this.#journal.queue(this.#drop, [thread])
    return false
  }

  /** The keeper for which `thread`'s messages and names are held, or undefined when they are not. */
  keeperOf(thread: string): string | undefined {
    return this.#held.get(thread)
  }

  /** Are `thread`'s messages and names held for a successor? */
  isHeld(thread: string): boolean {
    return this.#held.has(thread)
  }

  /** `successor` takes what is held of `thread` (in the current batch); false when nothing is held. */
  succeed(thread: string, successor: string): boolean {
    const keeper = this.#held.get(thread)
    if (keeper === undefined) return false
    this.#held.delete(thread)
    this.#unindex(keeper, thread)
    this.#succeededBy.add(keeper)
    this.#journal.queue(this.#succeeded, [successor, thread])
    return true
  }

  /**
   * `keeper` has ended (or left this weave): the threads held for it, whose messages and names no
   * successor will take now (the caller dead-letters and frees them), and all its rows go (its
   * plans, and the successions `raiment show` named), in the current batch.
   */
  keeperEnded(keeper: string): string[] {
    if (this.#succeededBy.delete(keeper)) this.#journal.queue(this.#dropKeeper, [keeper])
    const threads = this.#of.get(keeper)
    if (threads === undefined) return []
    this.#of.delete(keeper)
    const released: string[] = []
    for (const t of threads) {
      if (this.#held.delete(t)) released.push(t)
      else this.#plans.delete(t)
      this.#journal.queue(this.#drop, [t])
    }
    return released
  }

  /** `thread` left for another weave: nothing is held for it here. */
  departed(thread: string): void {
    const p = this.#plans.get(thread)
    if (p === undefined) return
    this.#plans.delete(thread)
    this.#unindex(p.keeper, thread)
    this.#journal.queue(this.#drop, [thread])
  }

  #index(keeper: string, thread: string): void {
    let set = this.#of.get(keeper)
    if (set === undefined) this.#of.set(keeper, (set = new Set()))
    set.add(thread)
  }

  #unindex(keeper: string, thread: string): void {
    const set = this.#of.get(keeper)
    set?.delete(thread)
    if (set?.size === 0) this.#of.delete(keeper)
  }
}

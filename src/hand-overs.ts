/**
 * What becomes of a thread's messages and names held for a successor (src/successions.ts keeps
 * the table): handed to the successor in the batch of its spawn, or let go (the messages to the
 * dead letters, the names freed) when the keeper ends or leaves this weave. Held by the weave's
 * `Messages` (src/messages.ts), over the parts that keep names, inboxes, send keys and the
 * messages waiting for a name.
 *
 * Invariant: each change is queued in the batch of the spawn, end or move that makes it.
 */
import type { Inboxes } from './inboxes.js'
import type { Journal } from './journal.js'
import type { NameSends } from './name-sends.js'
import type { SendKeys } from './send-keys.js'
import { Successions, type HeldEnd } from './successions.js'
import type { ThreadRegistry } from './thread-registry.js'

/** The parts of a weave's messages a hand-over moves things between. */
export interface HandOverParts {
  registry: ThreadRegistry
  inboxes: Inboxes
  keys: SendKeys
  nameSends: NameSends
}

export class HandOvers {
  readonly #table: Successions
  readonly #p: HandOverParts

  constructor(journal: Journal, parts: HandOverParts) {
    this.#table = new Successions(journal)
    this.#p = parts
  }

  /** Are `thread`'s messages and names held for a successor? */
  isHeld(thread: string): boolean {
    return this.#table.isHeld(thread)
  }

  /** The keeper (a supervisor) for which `thread`'s messages and names are held, or undefined. */
  keeperOf(thread: string): string | undefined {
    return this.#table.keeperOf(thread)
  }

  /**
   * Thread `thread`, just spawned here by `keeper`, has its messages and names held for a
   * successor when it ends with a status in `on` while `keeper` is alive. In the spawn's batch.
   */
  plan(thread: string, keeper: string, on: readonly HeldEnd[]): void {
    this.#table.plan(thread, keeper, on)
  }

  /**
   * `thread` ends with `status`: true when its names and inbox are to stay, held for a successor
   * (it has a plan for that status and `keeperHere` says its keeper is alive on this weave).
   */
  ended(thread: string, status: string, keeperHere: (keeper: string) => boolean): boolean {
    return this.#table.ended(thread, status, keeperHere)
  }

  /** `thread` left for another weave: nothing is held for it here, and what it holds as a keeper goes. */
  departed(thread: string): void {
    this.#table.departed(thread)
    this.release(thread, 'moved')
  }

  /**
   * What `keeper` holds goes, as no successor of its will take it here (it ended, or moved to
   * another weave): the messages to the dead letters, the names freed, its plans dropped; in the
   * current batch (of its end or its move).
   */
  release(keeper: string, why: 'ended' | 'moved'): void {
    for (const t of this.#table.keeperEnded(keeper)) {
      this.#p.registry.freeAll(t)
      this.#p.inboxes.ended(t, why === 'ended' ? `the recipient ended and its supervisor ${keeper} did not restart it` : `the recipient ended and its supervisor ${keeper} moved to another weave, which cannot restart it with them`)
    }
  }

  /**
   * Thread `successor`, just spawned here, takes what is held of `thread`: its names, then its
   * inbox, in order, and what waited for those names, and its send keys; in the current batch (the
   * spawn's), before anything sent to `successor` later. Nothing when nothing is held.
   */
  succeed(thread: string, successor: string): void {
    if (!this.#table.succeed(thread, successor)) return
    const names = this.#p.registry.handOver(thread, successor)
    this.#p.inboxes.handOver(thread, successor)
    // The keyed sends it took are its successor's (src/send-keys.ts): a retry is a duplicate.
    this.#p.keys.copy(thread, successor)
    for (const name of names) this.#p.nameSends.registered(name, successor)
  }
}

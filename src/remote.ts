/**
 * The hook through which a transport (RabbitMQ, in `src/amqp/`) joins a weave to others. The
 * core knows only this interface: it never imports a transport.
 *
 * Invariants:
 * - A thread id names its home weave: `<weave>/<n>`; the weave is everything before the last '/'.
 * - A message or spawn for a thread of another weave is an `outbox` row queued in the same
 *   group-commit batch as the sender's journal entry; the transport publishes committed rows
 *   and deletes each once the broker has confirmed it.
 * - A message that arrives from another weave is taken once: its id is recorded in `received` in
 *   the batch that puts it in the inbox, and the transport acknowledges it only after that commit.
 * - A name that no thread of this weave holds is looked up through `resolveName`, which answers
 *   `null` (no weave holds it) only when the transport knows that for sure; while it does not
 *   know, a message sent by that name waits here (src/name-sends.ts) instead of being
 *   dead-lettered.
 */
import { RaimentError } from './errors.js'
import type { Journal } from './journal.js'

/** What a transport knows of a name registered on another weave (see `Remote.resolveName`). */
export type NameLookup = { thread: string } | 'unknown' | null

/** Where `threads.spawn` places a thread: here, the least loaded weave, a weave id, or by key. */
export type Placement = 'local' | 'any' | string | { key: string }

export interface Remote {
  /** Outbox rows were committed: publish them. */
  wake(): void
  /**
   * Where a name that no thread of this weave holds is registered: `{ thread }` (a live weave
   * announces it, or it is the last weave heard to hold it), `'unknown'` (not known yet: the
   * broker is down, or this weave has not yet heard from every live weave), or null (no weave
   * holds it, for sure: see the rule in src/amqp/name-owners.ts).
   */
  resolveName(name: string): NameLookup
  /** This weave's names changed (tell the others). */
  namesChanged(): void
  /**
   * The weave id a thread placed by `on` goes to (this weave's id for 'local'); `use` says why
   * (a spawn, or a move of a running thread), so that an error gives advice that fits.
   * @throws UnknownWeave for a weave id no weave has ever used on this broker
   */
  place(on: Placement, use?: PlacementUse): Promise<string>
  /**
   * Has weave `id` joined the namespace, as far as the transport can tell now without waiting?
   * true: it is this weave, or has been heard, or its queue exists (it may be down: what is sent
   * to it waits there); false only when the broker says it has no queue for it (what is sent to it
   * would come back and be dead-lettered); null when it cannot be asked now (no connection).
   * Never rejects.
   */
  joined?(id: string): Promise<boolean | null>
  /** Whether weave `id` is live now (heard within its heartbeats); without it, taken as live. */
  isLive?(id: string): boolean
  /**
   * Replicates the journal (src/replication/): becomes its tap, and resolves once a first copy
   * of it is confirmed by the broker. `hold`: a batch's callbacks wait for the broker's confirm.
   */
  replicate?(journal: Journal, o: { hold: boolean }): Promise<void>
  /**
   * Claims weave id `weaveId` for this weave among those of its broker, before it resumes
   * anything: another process running that id is refused (src/amqp/link.ts).
   */
  claim?(weaveId: string): Promise<void>
}

/** The weave a thread id names (everything before its last '/'), or null for a bare name. */
export function weaveOfThread(id: string): string | null {
  const i = id.lastIndexOf('/')
  return i <= 0 ? null : id.slice(0, i)
}

/** What a placement is for: a spawn (`threads.spawn(..., { on })`) or a move (`migrate`). */
export type PlacementUse = 'spawn' | 'migrate'

export class UnknownWeave extends RaimentError {
  constructor(id: string, live: readonly string[], use: PlacementUse = 'spawn') {
    const other =
      use === 'migrate'
        ? live.length
          ? `or move the thread to one of the live weaves; it keeps running where it is`
          : `then move the thread again; it keeps running where it is`
        : `or spawn with on: 'any' to place the thread on the least loaded live weave`
    super(
      'RAIMENT_UNKNOWN_WEAVE',
      `no weave '${id}' has joined this broker's namespace; live weaves: ${live.length ? live.join(', ') : '(none)'}. ` +
        `Start it with 'raiment start --amqp URL --id ${id}', ${other}.`,
    )
  }
}

export class NoBroker extends RaimentError {
  constructor(what: string) {
    super('RAIMENT_NO_BROKER', `${what} needs the weave to be joined to a broker: start it with --amqp URL (or RAIMENT_AMQP_URL)`)
  }
}

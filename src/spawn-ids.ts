/**
 * Ids chosen by the caller of `Weave.spawn(type, params, { id })`: a thread spawned once per key
 * (a request's key, a spawn sent by another weave, a schedule's time).
 *
 * Invariants:
 * - An id shaped as the weave's own (`<weave>/<n>`) is refused before anything is recorded: the
 *   journal hands those out, and one taken by a caller would make the record of a later spawn
 *   fail its whole batch. The exception is an id the CLI reserved in the journal and asked this
 *   weave to spawn (src/weave-control.ts, src/thread-ids.ts `reserved`).
 * - A spawn of an id a thread already has records nothing: it returns that id when the type and
 *   params are those of that thread (its params: of a thread that continued as new, its type
 *   alone), and throws SpawnIdTaken when they are not, so a caller never gets another thread
 *   than the one it asked for.
 * - A key without a `/` is made this weave's id (`<weave>/<key>`): an id routes by what is before
 *   its `/` (a message by id, a join from another weave); one without would be taken for a name.
 *   An id with a `/` must name this weave so (a user trial's key `a/x1` spawned on weave `b` made
 *   a thread there that weave `a` spawned too, under the same key: two charges).
 */
import { isDeepStrictEqual } from 'node:util'
import { decodeValue } from './encoding.js'
import { InvalidArgument, SpawnIdTaken } from './errors.js'
import type { Journal } from './journal.js'
import { isOwnThreadId } from './thread-ids.js'

/** What a spawn of a chosen id asks for, and what the weave knows of that id. */
interface ChosenSpawn {
  id: string
  type: string
  /** The params, encoded (as recorded). */
  params: string
  /** The CLI reserved the id (`Journal.takeReservedThreadId`). */
  reserved: boolean
  /** The type of the thread running here under that id, if one is. */
  runType: string | undefined
}

export class SpawnIds {
  readonly #journal: Journal
  /** Spawns of chosen ids whose record is queued, not yet committed: what they were spawned with. */
  readonly #queued = new Map<string, { type: string; params: string }>()

  constructor(journal: Journal) {
    this.#journal = journal
  }

  /**
   * Is the chosen id already a thread's? True when it is, spawned with the same type and params;
   * false when it is free.
   * @throws InvalidArgument for an id of the weave's own shape the CLI did not reserve
   * @throws SpawnIdTaken when its thread has another type or other params
   */
  #spawned(s: ChosenSpawn): boolean {
    const weaveId = this.#journal.weaveId
    if (!s.reserved && isOwnThreadId(weaveId, s.id)) {
      throw new InvalidArgument(
        `spawn: id '${s.id}' has the shape of the ids this weave hands out itself ('${weaveId}/<n>'), so a later spawn could get it too; pass an id of your own (a request key, say 'order-${s.id.slice(weaveId.length + 1)}'), or no id`,
      )
    }
    const home = s.id.slice(0, s.id.indexOf('/'))
    if (!s.reserved && home !== weaveId) {
      throw new InvalidArgument(
        `spawn: id '${s.id}' names weave '${home}' (an id routes by what is before its first '/'), not this one ('${weaveId}'): a thread of it here would be another than the one that weave spawns under it, and what is sent to it would go there; pass a key without '/' (it becomes '${weaveId}/<key>'), or an id that starts with '${weaveId}/'`,
      )
    }
    const row = this.#journal.thread(s.id)
    const had = row ?? this.#queued.get(s.id)
    if (had !== undefined) {
      if (had.type !== s.type) throw new SpawnIdTaken(s.id, had.type, `(spawned as '${s.type}' now)`)
      // One that continued as new holds the params it continued with, not those it was spawned with.
      const continued = ((row as { continued?: number } | undefined)?.continued ?? 0) > 0
      if (!continued && !sameParams(had.params, s.params)) throw new SpawnIdTaken(s.id, had.type, 'spawned with other params')
      return true
    }
    // Here, not recorded by a spawn of this weave (a thread arriving from another weave): its type tells.
    if (s.runType !== undefined) {
      if (s.runType !== s.type) throw new SpawnIdTaken(s.id, s.runType, `(spawned as '${s.type}' now)`)
      return true
    }
    return false
  }

  /**
   * A spawn of chosen id `id`: true when a thread has it already (spawned with the same type and
   * params: return it, record nothing); false when it is free, and this spawn takes it (its
   * record to be queued now). `runType`: the type of the thread running here under it, if one is.
   * @throws as `#spawned`
   */
  claim(id: string, type: string, params: string, runType: string | undefined): boolean {
    // (Made `<weave>/<key>` by `idOf` first.)
    const reserved = this.#journal.takeReservedThreadId(id)
    if (this.#spawned({ id, type, params, reserved, runType })) return true
    this.#queued.set(id, { type, params })
    return false
  }

  /** The record of thread `id` is committed: the journal holds what it was spawned with. */
  committed(id: string): void {
    this.#queued.delete(id)
  }
}

/** The same params: the same recorded text, or values equal once decoded (keys in another order). */
function sameParams(recorded: string, asked: string): boolean {
  if (recorded === asked) return true
  try {
    return isDeepStrictEqual(decodeValue(recorded), decodeValue(asked))
  } catch {
    return false
  }
}

/** The longest id (or key) a spawn may choose, in characters: an id is in every record of its thread, its messages and its joins. */
export const MAX_CHOSEN_ID = 200

/**
 * The thread id a spawn's chosen `id` names: itself, or for a key without a `/`, `<weaveId>/<key>` (see the top of this file).
 * @throws as `checkChosenId`
 */
export function chosenId(weaveId: string, id: string): string {
  checkChosenId(id)
  return id.includes('/') ? id : `${weaveId}/${id}`
}

/**
 * Refuses a chosen id (or key) that names no thread of its own: empty, or empty after its `/`
 * (a user trial's `--key ''` spawned thread `<weave>/`), or longer than MAX_CHOSEN_ID.
 * @throws InvalidArgument saying what to pass instead
 * @example
 * checkChosenId('order-7') // fine; checkChosenId('') throws
 */
export function checkChosenId(id: string): void {
  if (id === '' || id.endsWith('/')) {
    const what = id === '' ? 'the id (key) is empty' : `id '${id}' has nothing after its '/'`
    throw new InvalidArgument(`spawn: ${what}, so it names no thread of its own; pass a key that names one (a request key, say 'order-7'), or no id for one the weave names`)
  }
  if (id.length > MAX_CHOSEN_ID) {
    throw new InvalidArgument(`spawn: an id (key) may be up to ${MAX_CHOSEN_ID} characters, got ${id.length} ('${id.slice(0, 40)}…'); pass a shorter key (a hash of a long one, say)`)
  }
}

/**
 * Join, kill, monitor and link across weaves. What travels is an envelope in the outbox, taken
 * once by its id (the `received` table), like a message:
 *
 * - `watch { target, watcher, kind }` goes to the target's weave. A target that runs there gets
 *   a watch row naming the watcher (a thread of another weave); one that has ended, or never
 *   existed, is answered at once with `exit`.
 * - `exit { target, watcher, kind, status, body, outcome }` goes to the watcher's weave when the
 *   target ends: a monitor gets the exit message (`body`) in its inbox; a link ends the watcher
 *   with LinkedExit when the target failed or was killed, unless it traps exits (then it gets
 *   the message); a join resolves the joins of that target waiting on that weave.
 * - `kill { target }` goes to the target's weave, which kills it if it still runs there;
 *   `cancel { target, reason }` so too, and cancels it there (src/cancel.ts).
 *
 * Each envelope goes to the weave the id names, or where it moved from there: a weave forwards
 * what comes for a thread that left it.
 *
 * Invariants:
 * - The watch row and the outbox row of an `exit` are queued in the batch that records the
 *   target's end (or takes the `watch`), so an end is told to each watcher exactly once.
 * - A join waits in memory only, under the weave's own pseudo-thread `<weave>/~join`: after a
 *   crash the thread's join call runs again and asks again, under a fresh envelope id (a target
 *   that has ended meanwhile is answered from its thread row).
 */
import { randomUUID } from 'node:crypto'
import { decodeValue, encodeValue } from './encoding.js'
import { errorFromRecord, type ErrorRecord } from './error-records.js'
import { MessageRefused, UnknownThread } from './errors.js'
import type { Journal } from './journal.js'
import { hopId, type Messages, type WatchEnvelope, type WatchKind } from './messages.js'
import type { Origin } from './received.js'
import { weaveOfThread } from './remote.js'

/** How a watched thread ended, as told across weaves ('unknown': no such thread there). */
export type RemoteStatus = 'done' | 'failed' | 'killed' | 'unknown'

/** What a join across weaves resolves to (`type` is '' when an older weave did not say). */
export type RemoteEnd =
  | { id: string; type: string; status: 'done'; result: unknown }
  | { id: string; type: string; status: 'failed'; error: Error }
  | { id: string; type: string; status: 'killed' }

/** What the weave offers this module. */
export interface WatchHost {
  readonly journal: Journal
  readonly messages: Messages
  isAlive(id: string): boolean
  /** True while `id` has ended here and its end record is not yet committed. */
  isEnding(id: string): boolean
  kill(id: string): boolean
  /** Cancels `id` (a thread of this weave) so that it can clean up (src/cancel.ts). */
  cancel(id: string, reason: string): boolean
  /** Ends `id` because `from`, which it is linked to, ended with `status`. */
  linkedExit(id: string, from: string, status: string, msg: unknown): void
}

type Watch = Extract<WatchEnvelope, { k: 'watch' }>
type Exit = Extract<WatchEnvelope, { k: 'exit' }>

const all = new WeakMap<WatchHost, RemoteWatches>()

/** How many ends of other weaves' threads a weave keeps for its passivated joiners (see `#told`). */
const TOLD_MAX = 10_000

/** The remote watches of a weave. */
export function remoteWatches(host: WatchHost): RemoteWatches {
  let w = all.get(host)
  if (w === undefined) all.set(host, (w = new RemoteWatches(host)))
  return w
}

export class RemoteWatches {
  readonly #host: WatchHost
  /** Joins waiting here for a thread of another weave: target → resolvers. */
  readonly #joins = new Map<string, Array<{ resolve: (e: RemoteEnd) => void; reject: (e: Error) => void }>>()
  /**
   * Told each end of a thread of another weave that a join here asked for: passivation wakes its
   * joiners, and says whether it woke any.
   */
  onJoinEnd: ((target: string) => boolean) | null = null
  /**
   * Ends that woke a passivated joiner (at most TOLD_MAX, oldest out): its join, made again as it
   * resumes, is answered from here. Asked again across the broker instead, a thread passivated at
   * once would sleep again before the answer came, and ask again when woken, for ever. An end is
   * final, so one kept is never stale; an answer that no such thread exists ('unknown') answers
   * one join only.
   */
  readonly #told = new Map<string, Exit>()

  constructor(host: WatchHost) {
    this.#host = host
  }

  get #joiner(): string {
    return `${this.#host.journal.weaveId}/~join`
  }

  /**
   * Waits for the end of `target`, a thread of another weave. `onCancel` is given the way to stop
   * waiting (a thread passivated while joining, src/passivation/: its promise is then never
   * settled, and the waiting entry goes).
   */
  join(target: string, onCancel?: (cancel: () => void) => void): Promise<RemoteEnd> {
    const told = this.#told.get(target)
    if (told !== undefined) {
      if (typeof told.refused === 'string') return Promise.reject(refusedEnd(told, told.refused))
      if (told.status !== 'unknown') return Promise.resolve(remoteEnd(told))
      // 'No such thread' is no end: told to one join, then asked again (a thread of that id may come).
      this.#told.delete(target)
      return Promise.reject(new UnknownThread(target))
    }
    return new Promise((resolve, reject) => {
      let waiting = this.#joins.get(target)
      if (waiting === undefined) this.#joins.set(target, (waiting = []))
      const w = { resolve, reject }
      waiting.push(w)
      onCancel?.(() => {
        const list = this.#joins.get(target)
        const i = list === undefined ? -1 : list.indexOf(w)
        if (i < 0) return
        list!.splice(i, 1)
        if (list!.length === 0) this.#joins.delete(target)
      })
      this.#send(target, `watch:${target}:${this.#joiner}:join:${randomUUID()}`, { k: 'watch', target, watcher: this.#joiner, kind: 'join' })
    })
  }

  /**
   * Asks `target`'s weave to tell `watcher` (a thread here) of its end. For a link, the other way
   * too: `target` is told of `watcher`'s end. `callId`: the call asking, so that a second monitor
   * of an ended thread is answered too (an id of its own, not a copy of the first).
   */
  watch(watcher: string, target: string, kind: 'monitor' | 'link', callId: string): void {
    // Kept here too: a link tells the target of the watcher's end; a monitor's row is what makes
    // the watcher's end drop the watch there (`unwatch`).
    if (kind === 'link') this.#host.messages.watchOne(watcher, target, 'link')
    else this.#host.messages.watchOne(target, watcher, 'monitor')
    this.#send(target, `watch:${target}:${watcher}:${kind}:${callId}`, { k: 'watch', target, watcher, kind })
  }

  /**
   * `watcher`, a thread here, has ended, and watched `targets`: the weaves of those that live
   * elsewhere drop its watches of them (one envelope a weave), which would stay there, useless,
   * until those threads end (a long-lived thread monitored by many short ones, for ever).
   */
  unwatch(watcher: string, targets: string[]): void {
    const m = this.#host.messages
    const self = this.#host.journal.weaveId
    for (const [dest, list] of grouped(targets, (t) => m.homeOf(t) ?? self)) {
      if (dest !== self) m.outbox(dest, `unwatch:${watcher}:${dest}`, { k: 'unwatch', watcher, targets: list })
    }
  }

  /** Kills `target` on its weave (queued; it ends there if it still runs). */
  kill(target: string, callId: string): void {
    this.#send(target, `kill:${callId}`, { k: 'kill', target })
  }

  /** Cancels `target` on its weave (queued; it is cancelled there if it still runs). */
  cancel(target: string, callId: string, reason: string): void {
    this.#send(target, `cancel:${callId}`, { k: 'cancel', target, reason })
  }

  /**
   * Tells `watcher` (of another weave) that `target` (of this one) ended. `msg` is the exit
   * message; `result` or `error` the outcome, for a join. `told`: the watcher is the target's
   * parent, sent `msg` already: a monitor or a trapped link adds no copy of it.
   */
  exitTo(watcher: string, target: string, type: string, kind: WatchKind, status: RemoteStatus, msg: unknown, outcome: { result?: unknown; error?: ErrorRecord | null }, idSuffix = '', told = false): void {
    let text: string | null = null
    if (kind === 'join') {
      try {
        text = status === 'done' ? encodeValue(outcome.result, 'the result') : status === 'failed' ? encodeValue(outcome.error ?? null) : null
      } catch {
        text = null // the end record holds the reason; the joiner gets the result it can
      }
    }
    const e: Exit = { k: 'exit', target, type, watcher, kind, status, body: encodeValue(msg, 'the exit message'), outcome: text, ...(told ? { told } : {}) }
    this.#send(watcher, `exit:${target}:${watcher}:${kind}${idSuffix}`, e)
  }

  /** An envelope of this module from another weave; `after` runs once it is taken (durable). */
  receive(msgId: string, e: WatchEnvelope, after: () => void, origin?: Origin): void {
    const host = this.#host
    // Its end is queued, not yet durable: answer once it is, from the thread row.
    if (e.k === 'watch' && host.isEnding(e.target)) {
      // (Closed meanwhile: nothing more is taken; it is redelivered to the next run.)
      void host.journal.committed().then(() => {
        if (!host.journal.closed) this.receive(msgId, e, after, origin)
      })
      return
    }
    if (host.messages.receiveOnce(msgId, after, origin)) this.#handle(msgId, e)
  }

  #handle(msgId: string, e: WatchEnvelope): void {
    const m = this.#host.messages
    if (e.k === 'watch') this.#watched(msgId, e)
    else if (e.k === 'exit') this.#exited(msgId, e)
    else if (e.k === 'unwatch') this.#unwatched(msgId, e)
    else if (e.k === 'kill' || e.k === 'cancel') {
      const moved = m.forwardOf(e.target)
      if (moved !== undefined) m.outbox(moved, hopId(msgId, this.#host.journal.weaveId), e)
      else if (m.homeOf(e.target) === this.#host.journal.weaveId || this.#host.journal.thread(e.target) !== undefined) {
        try {
          if (e.k === 'kill') this.#host.kill(e.target)
          else this.#host.cancel(e.target, e.reason)
        } catch (err) {
          if (!(err instanceof UnknownThread)) throw err
        }
      }
    }
  }

  #watched(msgId: string, e: Watch): void {
    const host = this.#host
    const m = host.messages
    const moved = m.forwardOf(e.target)
    if (moved !== undefined) {
      m.outbox(moved, hopId(msgId, this.#host.journal.weaveId), e)
      return
    }
    if (host.isAlive(e.target) && !m.isRemote(e.target)) {
      m.watchOne(e.target, e.watcher, e.kind)
      return
    }
    // Ended, or never here: answered from the thread row, now.
    const row = host.journal.thread(e.target)
    const status: RemoteStatus = row === undefined ? 'unknown' : row.status === 'done' || row.status === 'failed' ? row.status : 'killed'
    const outcome = row?.outcome ?? null
    const decoded = outcome === null ? undefined : decodeValue(outcome)
    const error = status === 'failed' ? (decoded as ErrorRecord) : status === 'unknown' ? unknownRecord(e.target) : null
    this.exitTo(e.watcher, e.target, row?.type ?? '', e.kind, status, exitMessage(e.target, status, decoded, error), { result: decoded, error }, `:${msgId}`)
  }

  /** A thread of another weave ended: its watches here go; those of targets that moved on, there. */
  #unwatched(msgId: string, e: Extract<WatchEnvelope, { k: 'unwatch' }>): void {
    const m = this.#host.messages
    m.endedThere(e.watcher)
    for (const [to, targets] of grouped(e.targets, (t) => m.forwardOf(t))) m.outbox(to, hopId(`${msgId}:${to}`, this.#host.journal.weaveId), { k: 'unwatch', watcher: e.watcher, targets })
  }

  #exited(msgId: string, e: Exit): void {
    const host = this.#host
    const m = host.messages
    // The target has ended: what it watched here, and this weave's own rows of watches of it, go.
    if (e.kind !== 'join' && (m.isRemote(e.target) || !host.isAlive(e.target))) m.endedThere(e.target)
    const moved = m.forwardOf(e.watcher)
    if (moved !== undefined) {
      m.outbox(moved, hopId(msgId, this.#host.journal.weaveId), e)
      return
    }
    if (e.kind === 'join') {
      const waiting = this.#joins.get(e.target)
      this.#joins.delete(e.target)
      for (const w of waiting ?? []) {
        if (typeof e.refused === 'string') w.reject(refusedEnd(e, e.refused))
        else if (e.status === 'unknown') w.reject(new UnknownThread(e.target))
        else w.resolve(remoteEnd(e))
      }
      if (this.onJoinEnd !== null) {
        this.#told.set(e.target, e)
        if (!this.onJoinEnd(e.target)) this.#told.delete(e.target)
        else if (this.#told.size > TOLD_MAX) this.#told.delete(this.#told.keys().next().value!)
      }
      return
    }
    if (!host.isAlive(e.watcher)) return
    const msg = decodeValue(e.body)
    if (e.kind === 'monitor' || m.traps(e.watcher)) {
      if (e.told !== true) m.send(e.target, e.watcher, msg, `${msgId}:tell`, null, Infinity)
    }
    else if (e.status !== 'done') host.linkedExit(e.watcher, e.target, e.status, msg)
  }

  /**
   * Queues `e` for the weave of thread `to` (where it moved, if it moved from here); handled here
   * at once if that is this weave (a watched thread that moved here from the watcher's weave).
   */
  #send(to: string, msgId: string, e: WatchEnvelope): void {
    const m = this.#host.messages
    const dest = m.homeOf(to) ?? weaveOfThread(to)
    if (dest === null) throw new UnknownThread(to)
    if (dest === this.#host.journal.weaveId) this.#handle(msgId, e)
    else m.outbox(dest, msgId, e)
  }
}

/** `ids` by the weave `weaveOf` gives each (those it gives none are left out). */
function grouped(ids: readonly string[], weaveOf: (id: string) => string | undefined): Map<string, string[]> {
  const out = new Map<string, string[]>()
  for (const id of ids) {
    const w = weaveOf(id)
    if (w === undefined) continue
    const list = out.get(w)
    if (list === undefined) out.set(w, [id])
    else list.push(id)
  }
  return out
}

/** The exit message a watcher gets: `{ exit, status, result | error }`. */
export function exitMessage(id: string, status: RemoteStatus, result: unknown, error: ErrorRecord | null): unknown {
  if (status === 'done') return { exit: id, status, result }
  if (status === 'killed') return { exit: id, status }
  const code = (error?.fields as { code?: unknown } | undefined)?.code
  return { exit: id, status: 'failed', error: { name: error?.name ?? 'Error', message: error?.message ?? '', ...(typeof code === 'string' ? { code } : {}) } }
}

function unknownRecord(id: string): ErrorRecord {
  const e = new UnknownThread(id)
  return { name: e.name, message: e.message, fields: { code: e.code } }
}

/** What a join is told when the broker refused the end it waited for (too big to travel). */
function refusedEnd(e: Exit, why: string): MessageRefused {
  return new MessageRefused(`thread ${e.target} ended (${e.status}), but its end did not reach this weave`, why)
}

function remoteEnd(e: Exit): RemoteEnd {
  const outcome = e.outcome === null ? undefined : decodeValue(e.outcome)
  const type = e.type ?? ''
  if (e.status === 'done') return { id: e.target, type, status: 'done', result: outcome }
  if (e.status === 'failed') {
    const rec = outcome as ErrorRecord | undefined
    return { id: e.target, type, status: 'failed', error: rec ? errorFromRecord(rec) : new Error(`thread ${e.target} failed`) }
  }
  return { id: e.target, type, status: 'killed' }
}

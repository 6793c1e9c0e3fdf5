/**
 * `Weave.join` for a thread of this weave: waits for its end, however far along it is.
 *
 * Invariant: a join of the weave's API settles. A join pending when the weave closes rejects
 * with WeaveClosed once the close is through (a thread that ends during the close's wait
 * resolves it first), and so does a join asked of a closed weave.
 */
import { UnknownThread, WeaveClosed } from './errors.js'
import { rowEnd, type ThreadEnd, type WeaveHost } from './weave-types.js'

type Joiner = (end: ThreadEnd) => void

/** What passivation (src/passivation/) keeps of the joiners of its threads. */
export interface AsleepJoins {
  /** Adds `fn` to passivated thread `id`'s joiners; false if it is not passivated. */
  join(id: string, fn: Joiner): boolean
  /** Takes `fn` off thread `id`'s joiners, if there. */
  unjoin(id: string, fn: Joiner): void
}

/**
 * Thread `id`'s end: at once if it is recorded, else once its run here (or, passivated, its wake
 * and end) tells its joiners. `onCancel` is given a function that gives the join up (the call
 * was abandoned: a joiner passivated, moved or ended): its resolver is taken off the lists, so a
 * joiner that wakes and joins again, many times, leaves nothing behind.
 * @throws UnknownThread when no thread has that id
 */
export function joinLocal(host: WeaveHost, id: string, asleep: AsleepJoins | null, onCancel?: (cancel: () => void) => void): Promise<ThreadEnd> {
  const { journal, messages } = host.weave
  let fn: Joiner = () => {}
  let cancelled = false
  const promise = new Promise<ThreadEnd>((res, rej) => {
    fn = res
    const run = host.run(id)
    // A run still here has not told its joiners yet, even when it has ended (killed a moment ago,
    // its end not yet committed): wait for that.
    if (run !== undefined) {
      ;(run.joiners ??= []).push(fn)
      return
    }
    if (asleep?.join(id, fn) === true) return
    const row = journal.thread(id)
    if (row === undefined) return rej(new UnknownThread(id))
    const end = rowEnd(row, messages.forwardOf(id))
    if (end !== null) return res(end)
    // Recorded but not running here yet (spawned a moment ago, or by another process).
    const check = (): void => {
      if (cancelled) return
      // (Its journal closed with it: nothing more to read.)
      if (host.closed()) return rej(new WeaveClosed())
      const r = host.run(id)
      if (r !== undefined && !r.ended) {
        ;(r.joiners ??= []).push(fn)
        return
      }
      if (r === undefined && asleep?.join(id, fn) === true) return
      const row2 = journal.thread(id)
      const e = row2 ? rowEnd(row2, messages.forwardOf(id)) : null
      if (e !== null) res(e)
      else setTimeout(check, 10)
    }
    setImmediate(check)
  })
  onCancel?.(() => {
    cancelled = true
    const joiners = host.run(id)?.joiners
    const i = joiners?.indexOf(fn) ?? -1
    if (i >= 0) joiners!.splice(i, 1)
    asleep?.unjoin(id, fn)
  })
  return promise
}

/** The joins of a weave's API still pending, rejected with WeaveClosed when the weave closes. */
export class PendingJoins {
  readonly #rejects = new Set<() => void>()

  /** `join`, the join of thread `id`, or its rejection with WeaveClosed if the weave closes first. */
  guard(id: string, join: Promise<ThreadEnd>): Promise<ThreadEnd> {
    let reject: () => void = () => {}
    const closed = new Promise<never>((_, rej) => {
      reject = () => rej(new WeaveClosed(`join thread '${id}' (it was still running when the weave closed; it resumes when a weave opens the journal again)`))
    })
    this.#rejects.add(reject)
    const settled = (): void => void this.#rejects.delete(reject)
    join.then(settled, settled)
    return Promise.race([join, closed])
  }

  /** The weave closed: every join still pending rejects. */
  close(): void {
    for (const r of this.#rejects) r()
    this.#rejects.clear()
  }
}

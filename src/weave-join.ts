/** `Weave.join` for a thread of this weave: waits for its end, however far along it is. */
import { UnknownThread, WeaveClosed } from './errors.js'
import { rowEnd, type ThreadEnd, type WeaveHost } from './weave-types.js'

/**
 * Thread `id`'s end: at once if it is recorded, else once its run here tells its joiners.
 * `asleep(id)`: its end if it is passivated (src/passivation/), else null.
 * @throws UnknownThread when no thread has that id
 */
export function joinLocal(host: WeaveHost, id: string, asleep: (id: string) => Promise<ThreadEnd> | null | undefined): Promise<ThreadEnd> {
  const { journal, messages } = host.weave
  const run = host.run(id)
  // A run still here has not told its joiners yet, even when it has ended (killed a moment ago,
  // its end not yet committed): wait for that.
  if (run !== undefined) return new Promise((res) => (run.joiners ??= []).push(res))
  const sleeping = asleep(id)
  if (sleeping) return sleeping
  const row = journal.thread(id)
  if (row === undefined) return Promise.reject(new UnknownThread(id))
  const end = rowEnd(row, messages.forwardOf(id))
  if (end !== null) return Promise.resolve(end)
  // Recorded but not running here yet (spawned a moment ago, or by another process).
  return new Promise((res, rej) => {
    const check = (): void => {
      const r = host.run(id)
      if (r !== undefined && !r.ended) {
        ;(r.joiners ??= []).push(res)
        return
      }
      const s = r === undefined ? asleep(id) : null
      if (s) {
        s.then(res, rej)
        return
      }
      const row2 = journal.thread(id)
      const e = row2 ? rowEnd(row2, messages.forwardOf(id)) : null
      if (e !== null) res(e)
      else if (host.closed()) rej(new WeaveClosed())
      else setTimeout(check, 10)
    }
    setImmediate(check)
  })
}

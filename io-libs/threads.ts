/**
 * threads: spawn, join and kill other threads, and watch them end. A replayed spawn returns the
 * recorded child id and does not spawn again.
 */
import { callContext, ThreadKilled, weaveOf, type LibraryApi, type WeaveConfig } from 'raiment'

const threads = (config: WeaveConfig) => {
  const weave = () => weaveOf(config)
  return {
    /** This thread's id. */
    async self(): Promise<string> {
      return callContext().threadId
    },
    /** Spawns a child thread (this thread is its parent: it gets the child's exit message). */
    async spawn(type: string, params?: unknown): Promise<string> {
      const { threadId } = callContext()
      return weave().spawn(type, params, { parent: threadId })
    },
    /** Waits for a thread's end: its result, or throws its error (ThreadKilled if killed). */
    async join(id: string): Promise<unknown> {
      const end = await weave().join(id)
      if (end.status === 'done') return end.result
      if (end.status === 'failed') throw end.error
      throw new ThreadKilled(id)
    },
    /** Kills a thread; false when it had already ended. */
    async kill(id: string): Promise<boolean> {
      return weave().kill(id)
    },
    /**
     * Sends this thread `{ exit: id, status, result | error }` when thread `id` ends (at once if
     * it has ended already).
     */
    async monitor(id: string): Promise<void> {
      const { threadId, callId } = callContext()
      const w = weave()
      if (w.isAlive(id)) {
        w.messages.watch(threadId, id, 'monitor')
        return
      }
      const end = await w.join(id)
      const msg = end.status === 'done' ? { exit: id, status: end.status, result: end.result } : end.status === 'failed' ? { exit: id, status: end.status, error: { name: end.error.name, message: end.error.message } } : { exit: id, status: end.status }
      w.messages.send(id, threadId, msg, `exit:${id}:${threadId}:${callId}`)
    },
    /**
     * Links this thread and `id`: when either fails or is killed, the other ends too, unless it
     * traps exits. Returns false when `id` has already ended.
     */
    async link(id: string): Promise<boolean> {
      const { threadId } = callContext()
      const w = weave()
      if (!w.isAlive(id)) return false
      w.messages.watch(threadId, id, 'link')
      return true
    },
    /** With `true`, a linked thread's end arrives as an exit message instead of ending this one. */
    async trapExits(on: boolean): Promise<void> {
      weave().messages.trapExits(callContext().threadId, on)
    },
  }
}
export default threads

export type ThreadsApi = LibraryApi<ReturnType<typeof threads>>

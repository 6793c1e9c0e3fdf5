/**
 * threads: spawn, join and kill other threads, and watch them end. A replayed spawn returns the
 * recorded child id and does not spawn again.
 */
import { createHash } from 'node:crypto'
import { callContext, ContinueAsNew, InvalidArgument, NoBroker, ThreadKilled, weaveOf, type LibraryApi, type Placement, type WeaveConfig } from 'raiment'

export interface SpawnOptions {
  /**
   * Where the thread runs: 'local' (default), 'any' (the least loaded live weave), a weave id, or
   * `{ key }` (a consistent-hash ring over the live weaves). Other than 'local' needs a broker.
   */
  on?: Placement
  /**
   * Links the child to this thread in the spawn itself (as `threads.link` would, in the same
   * commit): no moment exists where the child runs unlinked, so a kill or a crash of this thread
   * right after the spawn cannot leave the child running with nothing to end it.
   */
  link?: boolean
}

/**
 * @internal The supervisor's spawn options (src/supervisor.ts), not promised: kept off
 * `SpawnOptions`, so a thread's `this.threads.spawn(type, params, { hold })` is a type error. The
 * supervisor passes them as a value of this type; at run time they travel as plain fields of the
 * options, as they always have (the call's key, and so the journals written before, unchanged).
 */
export interface SuccessionOptions extends SpawnOptions {
  /**
   * Holds the child's messages and names for a successor when it ends with one of these statuses
   * while this thread is alive (the supervisor spawns its children so, by their restart type):
   * what it had not received stays in its inbox and what is sent to it, or to its names, waits
   * there, instead of going to the dead letters, its names are not freed, until this thread
   * spawns its successor with `succeeds`; should this thread end first, those messages go to
   * the dead letters and the names are freed then. Local spawns only.
   */
  hold?: Array<'done' | 'failed' | 'killed'>
  /**
   * The id of a thread this one succeeds: if that thread ended with its messages and names held
   * (`hold`) for this thread, the child gets them in its spawn, in its commit: its names, then the
   * messages, in their order, before any sent to it later; if they are held for another thread,
   * the spawn throws InvalidArgument (nothing spawned); if nothing is held, nothing is taken.
   * Local spawns only.
   */
  succeeds?: string
}

const ENDS: readonly unknown[] = ['done', 'failed', 'killed']

function checkSuccession(opts: SuccessionOptions, local: boolean): void {
  const { hold, succeeds } = opts
  if (hold !== undefined && !(Array.isArray(hold) && hold.every((h) => ENDS.includes(h)))) {
    throw new InvalidArgument(`threads.spawn: 'hold' must be an array of 'done', 'failed', 'killed', got ${JSON.stringify(hold)}`)
  }
  if (succeeds !== undefined && (typeof succeeds !== 'string' || succeeds === '')) throw new InvalidArgument(`threads.spawn: 'succeeds' must be a thread id, got ${JSON.stringify(succeeds)}`)
  if (!local && (hold !== undefined || succeeds !== undefined)) throw new InvalidArgument(`threads.spawn: 'hold' and 'succeeds' are for a spawn on this weave (on: 'local'), got on: ${JSON.stringify(opts.on)}`)
}

function checkPlacement(on: unknown): void {
  const ok = typeof on === 'string' ? on !== '' && !on.includes('/') : typeof on === 'object' && on !== null && typeof (on as { key?: unknown }).key === 'string'
  if (!ok) throw new InvalidArgument(`threads.spawn: 'on' must be 'local', 'any', a weave id or { key: string }, got ${JSON.stringify(on)}`)
}

/**
 * The id of a child spawned on weave `dest` by call `callId` of thread `threadId`: chosen from the
 * call id, so the call made again (after a crash, or on the weave the thread moved to) names the
 * same thread. Its middle part is the weave the parent's id names (the part before its first '/':
 * the weave it was spawned on, the same after it moves), not the weave making the call.
 */
function remoteChildId(dest: string, threadId: string, callId: string): string {
  const slash = threadId.indexOf('/')
  const home = slash < 0 ? threadId : threadId.slice(0, slash)
  return `${dest}/${home}~${createHash('sha256').update(callId).digest('base64url').slice(0, 12)}`
}

const threads = (config: WeaveConfig) => {
  const weave = () => weaveOf(config)
  return {
    /** This thread's id. */
    async self(): Promise<string> {
      return callContext().threadId
    },
    /**
     * Spawns a child thread (this thread is its parent: it gets the child's exit message), here
     * or, with `opts.on`, on another weave: then the spawn is sent like a message (durable,
     * exactly once) and the child's id names that weave; its type is checked there. The child's
     * id comes from the call id, so the call made again (after a crash, or on the weave the thread
     * moved to while the call was in flight) names the same child. While it waits for the broker
     * to place it, a cancel or a kill of the thread, or a move whose wait runs out, spawns nothing.
     * @throws UnknownWeave when `on` names a weave that never joined the broker
     * @throws ThreadCancelled when the thread is cancelled while the spawn waits to be placed
     * @example
     * const id = await this.threads.spawn('orders/checkout', { cart }, { on: { key: cart.user } })
     */
    async spawn(type: string, params?: unknown, given: SpawnOptions = {}): Promise<string> {
      // The supervisor's `hold` and `succeeds` come as plain fields (SuccessionOptions).
      const opts: SuccessionOptions = given
      const ctx = callContext()
      const threadId = ctx.threadId
      const w = weave()
      const on = opts.on ?? 'local'
      checkPlacement(on)
      if (opts.link !== undefined && typeof opts.link !== 'boolean') throw new InvalidArgument(`threads.spawn: 'link' must be true or false, got ${JSON.stringify(opts.link)}`)
      checkSuccession(opts, on === 'local' || on === w.journal.weaveId)
      const trace = ctx.traceparent
      const here = (): string => {
        // Only the keeper takes what is held (checked before anything is written); a thread held
        // for none (not held, or its keeper ended) is succeeded with nothing to take.
        const keeper = opts.succeeds === undefined ? undefined : w.messages.successions.keeperOf(opts.succeeds)
        if (keeper !== undefined && keeper !== threadId) {
          throw new InvalidArgument(
            `threads.spawn: thread ${opts.succeeds}'s messages and names are held for the successor its keeper ${keeper} spawns, and thread ${threadId} is not that keeper; nothing was spawned. Only the supervisor that spawned a thread restarts it (a fork of that supervisor cannot while the original holds them)`,
          )
        }
        const id = w.spawn(type, params, { parent: threadId, trace })
        // Queued in the spawn's batch: the child and the link are durable together.
        if (opts.link === true) w.messages.watch(threadId, id, 'link')
        // In the spawn's batch too, before the child makes any call: it starts with what it succeeds to.
        if (opts.hold !== undefined) w.messages.successions.plan(id, threadId, opts.hold)
        if (opts.succeeds !== undefined) w.messages.successions.succeed(opts.succeeds, id)
        return id
      }
      if (on === 'local' || on === w.journal.weaveId) return here()
      const remote = w.messages.remote
      if (remote === null) throw new NoBroker(`threads.spawn with on: ${JSON.stringify(on)}`)
      // Taken now: a signal first asked for after an abort would never be aborted.
      const signal = ctx.signal
      const dest = await remote.place(on, 'spawn')
      // The weave let go of the thread meanwhile (a move whose wait ran out, a kill, a reload, a
      // stop): this call's outcome is never recorded, and where the thread resumes it makes the
      // call again, which may place it elsewhere ('any', a key). Spawned here too, it would make two.
      signal.throwIfAborted()
      if (dest === w.journal.weaveId) return here()
      const id = remoteChildId(dest, threadId, ctx.callId)
      w.messages.spawnRemote(dest, id, type, params, threadId, trace)
      // Behind the spawn in the outbox, in its batch: its weave links the child as it starts it.
      if (opts.link === true) w.watches.watch(threadId, id, 'link', ctx.callId)
      return id
    },
    /**
     * Waits for a thread's end, here or on another weave: its result, or throws its error
     * (ThreadKilled if killed).
     * @throws UnknownThread when no thread has that id (on the weave the id names)
     */
    async join(id: string): Promise<unknown> {
      // A wait: a thread that moves (or is passivated) while joining joins again where it resumes.
      const ctx = callContext()
      const w = weave()
      const remote = () => w.watches.join(id, (cancel) => ctx.onAbort(cancel))
      let end
      if (w.messages.isRemote(id)) end = await remote()
      else {
        // Given up when the call is (its thread passivated, moved or ended): nothing is left behind.
        end = await w.joinHere(id, (cancel) => ctx.onAbort(cancel))
      }
      // It moved to another weave while this waited here: its end comes from there.
      while (end.status === 'moved' && w.messages.isRemote(id)) end = await remote()
      if (end.status === 'done') return end.result
      if (end.status === 'failed') throw end.error
      throw new ThreadKilled(id)
    },
    /**
     * Kills a thread; false when it had already ended. A thread of another weave is killed there
     * once the request arrives (durable, like a message): then this resolves true at once; join
     * it to see how it ended.
     */
    async kill(id: string): Promise<boolean> {
      const w = weave()
      if (!w.messages.isRemote(id)) return w.kill(id)
      w.watches.kill(id, callContext().callId)
      return true
    },
    /**
     * Cancels a thread so that it can clean up (a kill ends it where it is): the call it waits on,
     * or else the next it makes, throws ThreadCancelled; false when it had ended. A thread of
     * another weave is cancelled there once the request arrives (durable, like a message): then
     * this resolves true at once; join it to see how it ended.
     */
    async cancel(id: string, reason = 'cancelled'): Promise<boolean> {
      const w = weave()
      if (!w.messages.isRemote(id)) return w.cancel(id, reason)
      w.watches.cancel(id, callContext().callId, reason)
      return true
    },
    /**
     * Sends this thread `{ exit: id, status, result | error }` when thread `id` ends (at once if
     * it has ended already).
     */
    async monitor(id: string): Promise<void> {
      const ctx = callContext()
      const threadId = ctx.threadId
      const w = weave()
      if (w.messages.isRemote(id)) {
        // Its weave answers at once if it has ended already (or never existed: a failed exit).
        w.watches.watch(threadId, id, 'monitor', ctx.callId)
        return
      }
      if (w.isAlive(id)) {
        w.messages.watch(threadId, id, 'monitor')
        return
      }
      const callId = ctx.callId
      const end = await w.join(id)
      const msg = end.status === 'done' ? { exit: id, status: end.status, result: end.result } : end.status === 'failed' ? { exit: id, status: end.status, error: { name: end.error.name, message: end.error.message } } : { exit: id, status: end.status }
      w.messages.send(id, threadId, msg, `exit:${id}:${threadId}:${callId}`)
    },
    /**
     * Links this thread and `id`: when either fails or is killed, the other ends too, unless it
     * traps exits. Returns false when `id` has already ended; for a thread of another weave it
     * returns true, and if that thread has already failed, this one ends as when a linked thread fails.
     */
    async link(id: string): Promise<boolean> {
      const ctx = callContext()
      const threadId = ctx.threadId
      const w = weave()
      if (w.messages.isRemote(id)) {
        w.watches.watch(threadId, id, 'link', ctx.callId)
        return true
      }
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

export const threadSide = {
  /**
   * Ends this run of the thread and goes on as a fresh run of the same thread type, from
   * `params`, under the same id, names, mailbox (the messages waiting stay, in order), parent,
   * links, monitors and trapExits; joiners keep waiting. The current record is discarded in the
   * same commit that records `params`, so a crash resumes either the old run (which comes back
   * here and continues again) or the new one, never neither. Not a call: nothing is recorded.
   * Returns a promise that rejects with ContinueAsNew: return or await it, and do not catch it.
   * Calls the thread still has in flight are abandoned as at its end (a pending receive or sleep
   * is cancelled): await them first.
   * @throws UnrecordableValue (as the rejection) when `params` cannot be recorded
   * @example
   * for (let n = 0; n < 1_000; n++) state = step(state, await this.mailbox.receive())
   * return this.threads.continueAsNew(state)
   */
  continueAsNew(params?: unknown): Promise<never> {
    try {
      return Promise.reject(new ContinueAsNew(params))
    } catch (e) {
      return Promise.reject(e)
    }
  },
}

export type ThreadsApi = LibraryApi<ReturnType<typeof threads>> & {
  continueAsNew(params?: unknown): Promise<never>
}

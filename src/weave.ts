/**
 * A weave: one journal, a set of thread types and I/O libraries, and the threads it runs.
 *
 * Invariants:
 * - A thread starts only once its spawn record is durable, so no I/O is done for a thread the
 *   journal does not know.
 * - On open, every thread recorded as running is resumed (re-run from the start with its
 *   journal as the cache); done, failed and killed threads are never re-run.
 * - A recorded thread whose type this weave cannot run (unknown, or its module failed to load)
 *   waits for it, not run, nothing of it changed (src/weave-parked.ts); it never keeps a weave
 *   from opening. A spawn of such a type is refused before anything is recorded.
 * - A thread's end (result, error, killed) is recorded in the same ordered commit stream as its
 *   outcomes, after all of them.
 *
 * The weave owns its public API and its public fields (journal, config, messages, schedules,
 * clock); what it is made of behind them, and their wiring, is src/weave-parts.ts; its opening
 * sequence src/weave-open.ts; its close src/weave-stop.ts; the runs of its threads (starting,
 * ending, resuming) src/weave-runs.ts.
 */
import { EventEmitter } from 'node:events'
import { randomUUID } from 'node:crypto'
import { newScope, type WeaveConfig } from './call-context.js'
import { leftNoDump } from './dump.js'
import { decodeValue, encodeValue } from './encoding.js'
import { InvalidArgument, LinkedExit, WeaveClosed, type RaimentError } from './errors.js'
import { Journal } from './journal.js'
import { Messages, type SendResult } from './messages.js'
import type { MoveRecord } from './migration.js'
import type { Origin } from './received.js'
import { remoteWatches, type RemoteWatches } from './remote-watches.js'
import type { Schedules } from './schedules/schedules.js'
import type { ScheduleClock } from './schedules/clock.js'
import { spawnedTypeName, weaveTypes, type ThreadTypes } from './thread-types.js'
import type { AnyThreadType, LibraryName, ThreadType } from './thread.js'
import { forkThread, Forks, type RecordEdits } from './check/fork.js'
import type { ReloadReport } from './check/reload.js'
import { MAX_MESSAGE_BYTES } from './message-size.js'
import { checkSendKey, keyedId, type SendOptions } from './send-keys.js'
import { checkOptions, refuseAtOpen, type WeaveOptions } from './weave-options.js'
import type { ResumeProgress, SpawnOptions, ThreadEnd, ThreadId, WeaveEvents } from './weave-types.js'
import { joinLocal } from './weave-join.js'
import type { RefusedMove } from './weave-moves.js'
import { refusedSend, type RefusedRow } from './refused-sends.js'
import { chosenId } from './spawn-ids.js'
import { closeWeave, stopCalls, stopWaitMs } from './weave-stop.js'
import { cannotRunType, weaveParts, type WeaveParts } from './weave-parts.js'
import { openWeave } from './weave-open.js'
import { checkOptions as checkCallOptions } from './option-checks.js'

export type { WeaveOptions } from './weave-options.js'

/** Spawn's options when none are given (not checked); the names of those there are. */
const NO_OPTIONS: SpawnOptions = Object.freeze({})
const SPAWN_OPTIONS = ['id', 'parent', 'trace']
export { rowEnd, type ResumeProgress, type SpawnOptions, type ThreadEnd, type ThreadId, type WeaveEvents } from './weave-types.js'

/**
 * A weave. Open one with `Weave.open()`; it resumes what was running, then runs what you spawn.
 * @example
 * const weave = await Weave.open({ db: 'app.db' })
 * const id = weave.spawn('greet', { name: 'ada' })
 * console.log(await weave.join(id))
 * await weave.close()
 */
export class Weave extends EventEmitter<WeaveEvents> {
  readonly journal: Journal
  readonly config: WeaveConfig
  /** Inboxes, names, monitors and links of this weave's threads. */
  readonly messages: Messages
  /** How many running threads were resumed when the weave opened. */
  resumed = 0
  /** The schedules of this weave's journal: threads spawned at the times of cron expressions (docs/schedules.md). */
  readonly schedules: Schedules
  /** The time its threads see and its schedules go by (`WeaveOptions.clock`; src/time/timers.ts). */
  readonly clock: ScheduleClock
  /** What it is made of behind this API: its runs, types, libraries, dumps, moves… (src/weave-parts.ts). */
  readonly #p: WeaveParts

  private constructor(journal: Journal, types: ThreadTypes, config: WeaveConfig, o: WeaveOptions) {
    super()
    this.journal = journal
    this.config = config
    // Libraries that need the weave (mailbox, threads, registry) find it in their config.
    Object.defineProperty(config, 'weave', { value: this, enumerable: false })
    this.messages = new Messages(journal, (id) => this.isAlive(id))
    this.messages.maxBytes = o.maxMessageBytes ?? MAX_MESSAGE_BYTES
    // What `raiment send` measures a message by while this weave runs, or after (src/cli/messages.ts).
    if (journal.meta('max_message_bytes') !== String(this.messages.maxBytes)) journal.setMeta('max_message_bytes', String(this.messages.maxBytes))
    this.messages.remote = o.remote ?? null
    const { parts, clock, schedules } = weaveParts(this, journal, types, o)
    this.#p = parts
    this.clock = clock
    this.schedules = schedules
  }

  /**
   * Opens the journal, loads thread types and libraries, and resumes every running thread. The
   * weave owns the journal until `close()` (or until its process ends, however it ends): another
   * weave, in this process or another, cannot open it meanwhile.
   *
   * A module of the threads directory that cannot be used (it fails to import, its default
   * export is not a thread type, or it uses a library that does not exist) makes only its own
   * type unavailable: the weave opens, reports it once to `onWarning` (one line: the file and
   * why; `weave.unavailable` has them), refuses spawns of it with ThreadTypeUnavailable, and
   * leaves the threads of it that it finds recorded waiting until a reload loads it (so does a
   * type no module gives: one ThreadsWaitForType warning per type).
   *
   * When it throws, nothing of the weave goes on: what it had opened (threads resumed, timers,
   * the journal and its owner lock) is closed first, and the journal can be opened again at once.
   * @throws JournalOwned when another weave runs on the journal; its message names that weave's pid
   * @throws JournalLinked when the journal file has another name (a hard link), through which a second weave could run it (left untouched)
   * @throws JournalReplaced when another process replaced or deleted the journal file each time this one opened it, before it took the owner lock (nothing written)
   * @throws NotARaimentDb / DbTooNew for a journal it must not touch (left untouched)
   * @throws UnknownLibrary when a thread type passed by name (`threads: { … }`) uses a library that does not exist
   * @throws InvalidLibraryModule for an I/O library module that cannot be used
   */
  static async open(o: WeaveOptions = {}): Promise<Weave> {
    checkOptions(o)
    const loaded = await weaveTypes(o.threads)
    const dbFile = o.db ?? 'raiment.db'
    const journal = new Journal(dbFile, { durability: o.durability ?? 'sync', ...(o.weaveId ? { weaveId: o.weaveId } : {}), beforeOwn: (j) => refuseAtOpen(o, j) })
    let weave: Weave | null = null
    try {
      const config: WeaveConfig = { ...(o.config ?? {}), db: dbFile, weaveId: journal.weaveId, durability: o.durability ?? 'sync' }
      weave = new Weave(journal, loaded, config, o)
      await openWeave(weave, weave.#p, loaded, o)
      return weave
    } catch (e) {
      // Failed midway (a library, a listener, the broker): nothing of it goes on. Threads it may
      // have resumed already, its timers and its observer stop as at a close, with no wait, and
      // the journal, its owner lock and what the libraries made so far hold open (src/weave-open.ts
      // loads them) go; a failure of that close is not what to report.
      if (weave === null) journal.close()
      else await weave.close({ wait: 0 }).catch(() => {})
      throw e
    }
  }

  /** The names of the thread types this weave knows. */
  get types(): string[] {
    return [...this.#p.types.keys()]
  }

  /**
   * The thread types of the threads directory that this weave cannot run, by name, each with
   * why (InvalidThreadModule: the module failed to load; UnknownLibrary: it uses a library that
   * does not exist).
   */
  get unavailable(): ReadonlyMap<string, Error> {
    return this.#p.unavailable
  }

  /** The names of the I/O libraries this weave has. */
  get libraries(): string[] {
    return [...this.#p.libs.keys()]
  }

  /** Threads running in this weave now. */
  get running(): number {
    return this.#p.runs.size
  }

  /** Threads of this weave passivated now: running, out of memory until what they wait for comes (not among `running`). */
  get passivated(): number {
    return this.#p.passivation?.count ?? 0
  }

  /**
   * Records a new thread and runs it once the record is durable. Returns its id at once.
   * Nothing is recorded when it throws. With `opts.id` (a key of your own, such as a request's
   * idempotency key) the thread is spawned once per key: its id is `<weaveId>/<key>` (a key
   * without a `/`), and a spawn of it again, with the same type and params, records nothing and
   * returns that id (docs/threads-and-libraries.md). `type` is a name, or the thread type itself
   * (its module imported): then `params` are checked against it, and `join` of the id returned
   * gives its result's type.
   * @throws UnknownThreadType naming the known types (and the nearest, for a misspelt one)
   * @throws ThreadTypeUnavailable when the type's module failed to load (the load error is its `cause`)
   * @throws UnrecordableValue when params cannot be recorded
   * @throws SpawnIdTaken when thread `opts.id` exists with another type or other params
   * @throws InvalidArgument for options that are not an object or name an unknown option, or an `opts.id` shaped as this weave's own ids (`<weaveId>/<n>`, or a key of digits alone), empty, or over 200 characters
   * @example
   * // Once per request key: a retried request gets the thread the first one spawned.
   * const id = weave.spawn('order', { cart }, { id: `order-${requestKey}` })   // '<weaveId>/order-…'
   * // Typed: import order from './threads/order.js'
   * const end = await weave.join(weave.spawn(order, { cart }))   // end.result: what order returns
   */
  spawn<P, R>(type: ThreadType<readonly LibraryName[], P, R>, ...args: undefined extends P ? [params?: NoInfer<P>, opts?: SpawnOptions] : [params: NoInfer<P>, opts?: SpawnOptions]): ThreadId<R>
  spawn(type: string, params?: unknown, opts?: SpawnOptions): string
  spawn(given: string | AnyThreadType, params?: unknown, opts: SpawnOptions = NO_OPTIONS): string {
    if (opts !== NO_OPTIONS) checkCallOptions('spawn', opts, SPAWN_OPTIONS)
    if (this.#p.closed) throw new WeaveClosed()
    const type = spawnedTypeName(this.#p.types, this.#p.unavailable, given)
    const t = this.#p.types.get(type)
    if (t === undefined) throw cannotRunType(this.#p, type)
    const text = encodeValue(params, 'params')
    // A chosen id (a request's key, a spawn sent by another weave) is spawned once, however often it comes.
    const chosen = opts.id === undefined ? undefined : chosenId(this.journal.weaveId, opts.id)
    if (chosen !== undefined && this.#p.spawnIds.claim(chosen, type, text, this.#p.runs.get(chosen)?.type)) return chosen
    const id = chosen ?? this.journal.nextThreadId()
    const obs = this.#p.observer
    const scope = newScope()
    const run = this.#p.runs.prepare(id, type, opts.parent ?? null, null, obs === null ? null : (opts.trace ?? obs.active()), 0, scope)
    this.journal.insertThread(id, type, text, opts.parent ?? null, 'running', () => {
      if (chosen !== undefined) this.#p.spawnIds.committed(chosen)
      if (!this.#p.closed && !run.ended) this.#p.runs.start(run, t, decodeValue(text), false)
    }, run.obs === null ? null : run.obs.traceparent, scope)
    return id
  }

  /**
   * Resolves once everything recorded so far (spawns, outcomes, ends) is durable.
   * @throws ClosedBeforeDurable (or the JournalWriteFailed) when the weave closes before that
   */
  committed(): Promise<void> {
    return this.journal.committed(true)
  }

  /**
   * Waits for a thread to end and tells how: `done` with its result, `failed` with its error
   * (rebuilt as the class it was thrown as, where registered), or `killed`. With a broker, `id`
   * may name a thread of another weave: its weave is asked, as `threads.join` does (a thread
   * that moved away from here answers `{ status: 'moved', to }`).
   * @throws UnknownThread when no thread has that id (on the weave the id names)
   * @throws WeaveClosed when the weave is closed, or closes before the thread ends
   */
  join<R>(id: ThreadId<R>): Promise<ThreadEnd<R>>
  join(id: string): Promise<ThreadEnd>
  join(id: string): Promise<ThreadEnd> {
    if (this.#p.closed) return Promise.reject(new WeaveClosed(`join thread '${id}'`))
    // A thread that moved away from here answers { status: 'moved', to } below.
    const remote = this.messages.isRemote(id) && this.messages.forwardOf(id) === undefined
    return this.#p.joins.guard(id, remote ? this.watches.join(id) : joinLocal(this.#p.host, id, this.#p.passivation))
  }

  /** @internal `threads.join` of a thread of this weave: `onCancel` gets what gives the join up. */
  joinHere(id: string, onCancel: (cancel: () => void) => void): Promise<ThreadEnd> {
    return joinLocal(this.#p.host, id, this.#p.passivation, onCancel)
  }

  /**
   * Kills a thread: its pending and later weft calls reject with ThreadKilled, and it is recorded
   * as killed. Returns false when the thread had already ended. With a broker, a thread of
   * another weave (or one that moved from here) is killed there (true: the kill is sent).
   * @throws UnknownThread when no thread has that id
   */
  kill(id: string): boolean {
    // Moved to another weave (or moving: its departure queued), or another weave's: the kill goes
    // there, as a message does; that weave kills it if it still runs.
    if (this.#elsewhere(id)) return (this.watches.kill(id, this.#apiCallId()), true)
    return this.#p.runs.kill(id, this.#p.ending)
  }

  /** A thread of another weave, or one that moved from here (with a broker: what is asked of it goes there). */
  #elsewhere(id: string): boolean {
    return this.messages.forwardOf(id) !== undefined || this.messages.isRemote(id)
  }

  /** The call id of a request made from outside any thread (a kill, a cancel sent to another weave). */
  #apiCallId(): string {
    return `api:${this.journal.weaveId}:${randomUUID()}`
  }

  /**
   * Cancels a thread so that it can clean up, where a kill ends it where it is: the call it waits
   * on (or else the next it makes) throws ThreadCancelled, recorded, and its later calls run as
   * any (docs/messages-and-supervision.md). False when it had ended. With a broker, a thread of
   * another weave (or one that moved from here) is cancelled there: true, the request is sent
   * (durable, as a message); join it to see how it ended.
   * @throws UnknownThread when no thread has that id here
   */
  cancel(id: string, reason = 'cancelled'): boolean {
    if (this.#p.closed) throw new WeaveClosed(`cancel thread '${id}'`)
    if (this.#elsewhere(id)) return (this.watches.cancel(id, this.#apiCallId(), reason), true)
    return this.#p.runs.cancel(id, reason)
  }

  /**
   * Sends a message from outside any thread to a thread id or registered name. It is in the
   * receiver's inbox once `committed()` resolves; a message for an ended or unknown thread goes
   * to the dead letters and the result says so.
   *
   * With `opts.key` (an idempotency key: an HTTP request's, say) it reaches its receiver once per
   * (receiver thread, key), however often it is sent: again through this weave, the result is the
   * first send's with `duplicate: true` and nothing is sent; through another weave of the
   * namespace, the receiver's weave drops the copy (that result cannot tell). So across a crash:
   * a send whose commit was lost is sent by the retry; one committed is not sent again. The key
   * is kept 24 hours from the first send, even once the receiver has ended (a retry then is still
   * a duplicate); a retry after that is a new message (delivered, or dead-lettered if the thread
   * has ended). See docs/messages-and-supervision.md#keyed-sends.
   * @throws UnrecordableValue when the message cannot be recorded
   * @throws MessageTooLarge (nothing sent) when the message is bigger than maxMessageBytes
   * @throws InvalidArgument for options that are not an object or name an unknown option, or a key that is empty or longer than 200 characters
   * @example
   * const r = weave.send('orders', { pay: 7 }, { key: req.headers['idempotency-key'] })
   * if (r.duplicate) console.log('already sent')
   */
  send(to: string, message: unknown, opts?: SendOptions): SendResult {
    if (opts !== undefined) checkCallOptions('send', opts, ['key'])
    const key = opts?.key === undefined ? undefined : checkSendKey(opts.key)
    if (this.#p.closed) throw new WeaveClosed()
    const id = `api:${this.journal.weaveId}:${randomUUID()}`
    return this.messages.send(null, to, message, key === undefined ? id : keyedId(key, id), this.#p.observer === null ? null : this.#p.observer.active())
  }

  /** Is the thread recorded as pending or running (here, or waiting to be adopted)? */
  isAlive(id: string): boolean {
    // A thread of another weave: that weave tells (it dead-letters what its threads cannot take).
    if (this.messages.isRemote(id)) return true
    const run = this.#p.runs.get(id)
    if (run !== undefined) return !run.ended
    if (this.#p.ending.has(id)) return false
    const row = this.journal.thread(id)
    return row !== undefined && (row.status === 'running' || row.status === 'pending')
  }

  /**
   * Moves a running thread to weave `to`: it stops at its next call (that call is not made here),
   * once every call it has in flight is answered and recorded here, so none is made twice; a call
   * it is waiting on, such as a receive or a sleep (a call that registered `onAbort`), is abandoned
   * unrecorded and made again on `to`. A call still in flight after `opts.wait` ms (default
   * 10,000) is abandoned too and made again on `to` with the same call id, as after a crash. Its
   * record (spawn record, journal, the messages in its inbox, its
   * names) goes to `to` through the outbox, exactly once, and `to` resumes it by replay under the
   * same id. Here it is then 'moved': not alive, never resumed, and what is sent to it here
   * (from this weave, or from weaves that route by its id to this one) is forwarded to `to`.
   * Resolves to `to` once the move is durable here (the record is in the outbox) and the broker
   * has taken the record (or has not answered within 10 s: it takes it later).
   * @throws NoBroker when this weave is not joined to a broker
   * @throws MoveRefused (`RAIMENT_MOVE_REFUSED`) when the broker refuses the record (bigger than
   *   its max_message_size): the thread is back here and runs on, with what was sent to it meanwhile
   * @throws UnknownWeave when no weave `to` has joined the namespace (the thread keeps running
   *   here); also when it left (its queue deleted) before the record reached it: the thread is back
   *   here and runs on, with what was sent to it meanwhile
   * @throws ThreadNotMovable when the thread is not running here, or `to` is this weave
   * @throws ThreadNotMovable also when the thread ends while its calls in flight finish
   * @throws InvalidArgument for options that are not an object or name an unknown option
   * @example
   * await weave.migrate('orders-1/17', 'orders-2')
   */
  migrate(id: string, to: string, opts: { wait?: number } = {}): Promise<string> {
    try {
      checkCallOptions('migrate', opts, ['wait'])
    } catch (e) {
      return Promise.reject(e)
    }
    if (this.#p.closed) return Promise.reject(new WeaveClosed())
    return this.#p.moves.migrate(id, to, opts)
  }

  /**
   * A thread moved here from another weave (the transport calls this): recorded with its journal
   * and inbox in one batch, taken once per `msgId`, then resumed by replay. `after` runs once that
   * is durable (acknowledge the delivery then). `origin`: where it came from, if the sender said.
   */
  arrive(msgId: string, record: MoveRecord, after: () => void, origin?: Origin): void {
    if (this.#p.closed) return // not acknowledged: redelivered to the next run
    this.#p.moves.arrive(msgId, record, after, origin)
  }

  /** @internal The broker took the record of a move, message id `msgId` (the transport calls this). */
  sentMove(msgId: string): void {
    this.#p.moves.sentMove(msgId)
  }

  /**
   * @internal The broker refused the record of a move, outbox row `move` (the transport calls
   * this): the thread comes back here (src/weave-moves.ts `refused`). Resolves to the outbox rows
   * taken here, or null (closing: nothing done). `err`: what `migrate` rejects with, if not MoveRefused.
   */
  refusedMove(move: RefusedMove, reason: string, err?: RaimentError): Promise<number[] | null> {
    if (this.#p.closed) return Promise.resolve(null)
    return this.#p.moves.refused(move, reason, err)
  }

  /**
   * @internal The broker refused another outbox row for its size (the transport calls this, and
   * dead-letters it): whoever waits for it is told (src/refused-sends.ts).
   */
  refusedSend(row: RefusedRow, reason: string): void {
    if (this.#p.closed) return
    try {
      refusedSend(this.messages, row, reason)
    } catch {
      // Not an envelope this weave reads (nobody waits for it here): its dead letter is all there is.
    }
  }

  /**
   * Forks thread `id`: a new thread of the same type and params replays `id`'s record up to
   * (not including) entry `at`, with the outcomes of `set` replaced, then runs live. The original
   * is only read. The fork is recorded (thread and entries) in one commit and starts once that is
   * durable; a crash after it resumes the fork like any running thread. Its live calls carry
   * their own call ids (its own thread id).
   * @throws UnknownThread when no thread has that id
   * @throws UnknownThreadType / ThreadTypeUnavailable when this weave cannot run its type
   * @throws InvalidArgument for an `at` or a `set` seq the record does not hold (nothing written)
   * @example
   * const id = weave.fork('orders-1/17', { at: 4, set: { 3: { stock: 5 } } })
   */
  fork(id: string, edits: RecordEdits = {}): string {
    if (this.#p.closed) throw new WeaveClosed()
    return forkThread(this.#p.host, (this.#p.forks ??= new Forks(this.journal)), id, edits)
  }

  /**
   * Loads the files of the threads directory that changed since they were loaded: new spawns run
   * the new code; each running thread of a changed type is checked by a strict replay of its
   * record under the new code, and resumed on it from its record when it is compatible (once its
   * calls in flight are answered and recorded, up to 10 s; one still in flight then is made again
   * with the same call id), else left on the code it started with. A file that fails to load
   * changes nothing. Emits 'reload' with the report. The report's `oldCode` lists every thread
   * left on old code (by this reload or an earlier one): a restart or a crash resumes it under the
   * files on disk, where it diverges. Its `waitingForCode` lists every thread that still waits for
   * code that replays its record (`onDivergence: 'wait'`).
   * Only the thread files are loaded again, not modules they import.
   * @throws InvalidArgument when the weave was given its thread types by name (no directory)
   * @example
   * const report = await weave.reload()   // { types: [{ type, file, moved, kept, error? }], oldCode, waitingForCode }
   * if (report.oldCode.length > 0) console.warn('a restart fails', report.oldCode)
   */
  reload(): Promise<ReloadReport> {
    if (this.#p.closed) return Promise.reject(new WeaveClosed())
    if (this.#p.reloads === null) return Promise.reject(new InvalidArgument('reload(): this weave was given its thread types by name (threads: { … }); only a threads directory can be reloaded'))
    return this.#p.reloads.next()
  }

  /** Join, kill, monitor and link across weaves (with a broker). */
  get watches(): RemoteWatches {
    return remoteWatches(this)
  }

  /** @internal True while thread `id` runs in this process (not ended, not passivated, not waiting for its type). */
  inMemory(id: string): boolean {
    const run = this.#p.runs.get(id)
    return run?.ended === false && !this.#p.runs.parked.has(run)
  }

  /** @internal True while thread `id` has ended here and its end record is not yet committed. */
  isEnding(id: string): boolean {
    return this.#p.runs.get(id)?.ended === true
  }

  /** @internal Ends thread `id` because `from`, linked to it, ended with `status` (another weave told). */
  linkedExit(id: string, from: string, status: string, msg: unknown): void {
    this.#p.runs.endLinked(this.#p.runs.woken(id, 'exit'), id, new LinkedExit(id, from, status, msg), this.#p.ending.has(id))
  }

  /**
   * Stops the weave. From now on its threads make no new call (each stops at its next one); the
   * calls they have in flight may finish and be recorded, up to `opts.wait` ms (default 0; `raiment
   * start` waits 10 s at a signal), so the next start does not make them again. Then it commits
   * what is queued, closes the journal and gives it up (its owner lock), and closes what its I/O
   * libraries hold open (the sqlite library's database connections). Threads still running
   * resume when a weave opens this journal again; a call still in flight when the wait ran out is
   * made again then, with the same call id. A close while another waits ends the wait after its
   * own `wait` at most.
   * @throws InvalidArgument for options that are not an object or name an unknown option, or a `wait` that is not a number of ms from 0 up
   * @throws JournalWriteFailed when the last commit fails, else the error of a library's close (all is closed all the same)
   */
  async close(opts?: { wait?: number }): Promise<void> {
    if (opts !== undefined) checkCallOptions('close', opts, ['wait'])
    const wait = stopWaitMs(opts?.wait)
    if (this.#p.stop === null) return (this.#p.stop = closeWeave(this, this.#p, wait))
    // Closed (or closing past its wait): once the first is through, without its failure.
    if (this.#p.closed) return this.#p.stop.catch(() => {})
    await this.stopCalls(wait)
    return this.#p.stop
  }

  /** @internal The wait of `close` alone (the CLI's, before it leaves the broker): threads stop at their next call, and their calls in flight may finish, up to `wait` ms. */
  stopCalls(wait: number): Promise<void> {
    return stopCalls(this, this.#p, wait)
  }

  /**
   * How far the threads resumed when the weave opened have replayed their records: read it
   * while they do (`raiment start` shows it as progress).
   */
  resumeProgress(): ResumeProgress {
    return this.#p.runs.progress()
  }

  /**
   * Where the dump of a failed thread is written: null with no dumps, or for an end that leaves
   * none, `error` the error its end was told with (a thread ended by a linked one: src/dump.ts
   * `leavesDump`).
   */
  dumpPath(id: string, error?: unknown): string | null {
    return leftNoDump(error) ? null : this.#p.dumps.path(id)
  }
}

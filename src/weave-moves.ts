/**
 * Moves of threads between weaves (`Weave.migrate`, `Weave.arrive`): a running thread leaves
 * with its record through the outbox; a thread that arrives is recorded, then resumed by replay;
 * one whose record this weave's code cannot replay goes back where it came from (`diverged`).
 *
 * Invariants:
 * - A thread leaves only once every call it has in flight is answered and recorded here (or the
 *   wait ran out), so no call is made twice; once it has left it is 'moved' here, never resumed.
 * - A thread moves once at a time; one arriving is taken once per message id.
 * - A record no weave takes (the broker refused it for its size, or returned it as no queue is
 *   there for its weave any more: src/amqp/refusals.ts) brings
 *   its thread back here (`refused`), in one batch with the delete of its outbox row and of the
 *   rows for that weave after it that were for the thread (forwarded to it since it left), which
 *   it takes here: nothing of it is lost, and it runs on here.
 */
import { arrivedMarks, dropMarks, inFlightCalls } from './in-flight.js'
import { cancelThread, passCancel, takeCancel } from './cancel.js'
import { randomUUID } from 'node:crypto'
import { decodeValue } from './encoding.js'
import { ownTurn } from './group-commit.js'
import { warnOnce } from './continue/long-record.js'
import { InvalidArgument, MessageTooLarge, RaimentError, ReplayDivergence, UnknownThread, WeaveClosed } from './errors.js'
import { checkRecord, MovedBack, MoveRefused, Moves, ThreadNotMovable, type MoveRecord } from './migration.js'
import type { Envelope, WatchEnvelope } from './message-shapes.js'
import type { Origin } from './received.js'
import { NoBroker, type Remote } from './remote.js'
import type { Run, WeaveHost } from './weave-types.js'
import type Database from 'better-sqlite3'
import type { Weft } from './weft.js'
import { valueText } from './value-text.js'

/** How long a move (or a reload) waits by default for a thread's calls in flight to finish here. */
export const MOVE_WAIT_MS = 10_000
/**
 * How long `migrate` waits, once the move is durable here, for the broker to take the record (or
 * refuse it: then it rejects): a broker that does not answer by then takes it later.
 */
export const MOVE_SENT_WAIT_MS = 10_000

/** An outbox row of a move the broker refused (src/amqp/relay.ts). */
export interface RefusedMove {
  n: number
  msgId: string
  dest: string
  body: string
}

/**
 * Stops `run` at its next call and waits up to `ms` for its calls in flight (not its waits) to
 * finish and be recorded, so that, let go of then, none is made again (see `Weft.hold`).
 */
export async function holdCalls(run: Run, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  await Promise.race([run.weft.hold(), new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))])
  clearTimeout(timer)
}

/**
 * Refuses what is not a weave id as the target of a move: 'any' and 'local' place a spawn (a
 * move there could land on this weave, and a move picked up again after a crash could not tell
 * it had been made).
 * @throws InvalidArgument
 */
export function checkMoveTarget(to: unknown): void {
  if (typeof to !== 'string' || to === '' || to === 'any' || to === 'local') {
    throw new InvalidArgument(`migrate: 'to' must be the id of another weave (not 'any' or 'local', which place a spawn), got ${JSON.stringify(to)}`)
  }
}

export class WeaveMoves {
  readonly #host: WeaveHost
  /** The move records of the journal, made at the first move. */
  #moves: Moves | null = null
  /** Threads being moved (waiting for their calls in flight). */
  readonly #moving = new Set<string>()
  /**
   * Threads that arrived and are replaying the record they came with: where from, and the weft
   * replaying it (null: the first to replay it, for one to send back that a restart found here).
   */
  readonly #arriving = new Map<string, { from: string; weft: Weft | null }>()
  /** Moves whose record is in the outbox, by its message id: the `migrate` waiting for the broker to take it. */
  readonly #sending = new Map<string, { resolve: () => void; reject: (e: Error) => void }>()
  /** The outbox rows for a weave after row n, and the delete of one (made at the first refused move). */
  #outboxRows: Database.Statement<unknown[]> | null = null
  #outboxDelete: Database.Statement<unknown[]> | null = null

  constructor(host: WeaveHost) {
    this.#host = host
    // Threads a weave that stopped was about to send back (meta `back:<id>`): sent back at their first replay here.
    for (const [id, from] of host.weave.journal.metaWithPrefix('back:')) this.#arriving.set(id, { from, weft: null })
  }

  /**
   * `Weave.migrate`, for a weave that is open.
   * @throws MessageTooLarge when the thread's record is bigger than maxMessageBytes (it runs on here)
   * @throws MoveRefused when the broker refuses the record (it comes back, and runs on here)
   * @throws UnknownWeave when the broker returns it (weave `to` left): it comes back, and runs on here
   */
  async migrate(id: string, to: string, opts: { wait?: number }): Promise<string> {
    const weave = this.#host.weave
    const remote = weave.messages.remote
    if (remote === null) throw new NoBroker('moving a thread to another weave')
    checkMoveTarget(to)
    if (to === weave.journal.weaveId) throw new ThreadNotMovable(id, `it already runs on weave '${to}'`)
    const movable = (): Run => {
      // A passivated thread wakes by replay of its record first, and moves as any running one.
      const run = this.#host.wake(id, 'move')
      if (run !== undefined && !run.ended) return run
      const row = weave.journal.thread(id)
      if (row === undefined) throw new UnknownThread(id)
      const where = weave.messages.forwardOf(id)
      throw new ThreadNotMovable(id, where !== undefined ? `it has moved to weave '${where}'` : `it is ${row.status} here; only a running thread moves`)
    }
    const wait = opts.wait ?? MOVE_WAIT_MS
    if (!(Number.isFinite(wait) && wait >= 0)) throw new InvalidArgument(`migrate: 'wait' must be a number of ms from 0 up, got ${valueText(wait)}`)
    movable()
    if (this.#moving.has(id)) throw new ThreadNotMovable(id, 'it is moving already')
    this.#moving.add(id)
    try {
      return await this.#move(id, remote, to, wait, movable)
    } finally {
      this.#moving.delete(id)
    }
  }

  async #move(id: string, remote: Remote, to: string, wait: number, movable: () => Run): Promise<string> {
    const { journal } = this.#host.weave
    const dest = await remote.place(to, 'migrate')
    const run = movable()
    if (this.#host.closed()) throw new WeaveClosed()
    // No call made from here on; those in flight finish and are recorded first (or time out).
    const held = run.weft
    const continued = run.continued
    run.moving = true
    try {
      await holdCalls(run, wait)
      // The flush below in a turn of its own (src/group-commit.ts `ownTurn`).
      await ownTurn()
    } finally {
      run.moving = false
    }
    if (this.#host.closed()) throw new WeaveClosed()
    if (run.ended) throw new ThreadNotMovable(id, 'it ended while its calls in flight finished')
    // A reload moved it to new code meanwhile, or it continued as new: that weft's calls were not waited for.
    if (run.weft !== held) throw new ThreadNotMovable(id, `${run.continued !== continued ? 'it continued as new' : 'a reload moved it to new code'} while its calls in flight finished; ask again`)
    // A record bigger than a message may be (maxMessageBytes) would be refused by the broker:
    // refused here, before it leaves, and it runs on here.
    const record = JSON.stringify({ k: 'move', record: (this.#moves ??= new Moves(journal)).read(id) })
    const bytes = record.length * 3 > this.#host.weave.messages.maxBytes ? Buffer.byteLength(record) : 0
    if (bytes > this.#host.weave.messages.maxBytes) throw new MessageTooLarge(`the record of thread ${id} (its move to weave '${dest}': its journal, inbox and names)`, bytes, this.#host.weave.messages.maxBytes)
    // Stop it, then commit what it (and anyone sending to it) has queued, so the record read
    // below is all of it; from the same synchronous step on, what comes for it is forwarded.
    run.ended = true
    run.weft.detach()
    const sent = this.#sent(this.#leave(run, dest))
    await journal.committed(true)
    await sent
    return dest
  }

  /**
   * Resolves once the broker has taken the record of message id `msgId` (`sentMove`), or after
   * MOVE_SENT_WAIT_MS; rejects with MoveRefused if it refuses it (`refused`).
   */
  #sent(msgId: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => settle(), MOVE_SENT_WAIT_MS)
      timer.unref()
      const settle = (e?: Error): void => {
        clearTimeout(timer)
        this.#sending.delete(msgId)
        if (e === undefined) resolve()
        else reject(e)
      }
      this.#sending.set(msgId, { resolve: () => settle(), reject: settle })
    })
  }

  /** The broker took the record of message id `msgId` (the transport calls this). */
  sentMove(msgId: string): void {
    this.#sending.get(msgId)?.resolve()
  }

  /**
   * The broker refused the record of a move (`reason`: why): its thread comes back here and runs
   * on, with what was forwarded to it since it left (the rows for that weave after the move's, in
   * the outbox), taken here; `migrate` rejects with `err` (by default MoveRefused), and the weave warns. Resolves to
   * the outbox rows taken here (deleted in the batch that brings it back: the relay publishes them
   * no more), or null when the weave is closing (the row stays: the next run publishes it again).
   */
  async refused(move: RefusedMove, reason: string, err?: RaimentError): Promise<number[] | null> {
    // A turn of its own, then what is queued is committed: all that was forwarded to it is in the outbox.
    await ownTurn()
    if (this.#host.closed()) return null
    const weave = this.#host.weave
    const journal = weave.journal
    journal.flushNow()
    const record = (JSON.parse(move.body) as { record: MoveRecord }).record
    const id = record.thread.id
    // Not moved there (any more): nothing to bring back, and the row goes.
    if (journal.thread(id)?.status !== 'moved' || weave.messages.forwardOf(id) !== move.dest) return [move.n]
    const rows = (this.#outboxRows ??= journal.db.prepare('SELECT n, msg_id AS msgId, body, trace FROM outbox WHERE dest = ? AND n > ? ORDER BY n'))
    const later = (rows.all(move.dest, move.n) as Array<{ n: number; msgId: string; body: string; trace: string | null }>)
      .map((r) => ({ ...r, e: JSON.parse(r.body) as Envelope | WatchEnvelope }))
      .filter((r) => concerns(r.e, id))
    const del = (this.#outboxDelete ??= journal.db.prepare('DELETE FROM outbox WHERE n = ?'))
    journal.queue(del, [move.n])
    for (const r of later) journal.queue(del, [r.n])
    this.#take(`${move.msgId}:back`, record, () => {}, undefined, true)
    // What was forwarded to it is taken here, after its inbox: a message as it was sent, the rest as from another weave (once per id).
    for (const { msgId, e, trace } of later) {
      if (e.k === 'msg') weave.messages.takeBack(msgId, e, trace)
      else if (e.k === 'fence') weave.messages.fenceIn(msgId, e, () => {})
      else if (e.k !== 'spawn' && e.k !== 'move') weave.watches.receive(msgId, e, () => {})
    }
    const e = err ?? new MoveRefused(id, move.dest, reason)
    warnOnce(weave.config, id, e)
    this.#sending.get(move.msgId)?.reject(e)
    return [move.n, ...later.map((r) => r.n)]
  }

  /**
   * Sends stopped `run` to weave `dest` with its record, inbox and names (`back`: it is sent back,
   * and why); returns the message id of its record.
   */
  #leave(run: Run, dest: string, back?: string): string {
    const { journal, messages } = this.#host.weave
    const id = run.id
    messages.beforeDeparture(id)
    journal.flushNow()
    const moves = (this.#moves ??= new Moves(journal))
    const record = moves.read(id)
    if (back !== undefined) {
      record.back = back
      this.#unmarkBack(id)
    }
    // Its calls still in flight are made again where it goes, first (their rows go with it), and
    // a cancel put off to its next call is taken there; here both go in the batch it leaves in.
    const inFlight = inFlightCalls(journal, id)
    if (inFlight.length > 0) record.inFlight = inFlight
    const cancel = takeCancel(run.weft, journal, id)
    if (cancel !== undefined) record.cancel = cancel.reason
    messages.departed(id, dest)
    const msgId = `move:${id}:${randomUUID()}`
    messages.outbox(dest, msgId, { k: 'move', record })
    // Out only once the journal's stream has it (under any durability): see holdForStream.
    journal.holdForStream()
    dropMarks(journal, id, run.weft)
    journal.setStatus(id, 'moved', () => this.#host.ended(run, { id, type: run.type, status: 'moved', to: dest }))
    return msgId
  }

  /** A run's replay is over: a thread that arrived and replayed its record runs here for good. */
  replayed(weft: Weft): void {
    const id = weft.threadId
    const a = this.#arriving.get(id)
    // (A divergence stops the replay before it is told: `diverged` looks at it then.)
    if (a === undefined || (a.weft !== null && a.weft !== weft) || weft.stopped instanceof ReplayDivergence) return
    this.#arriving.delete(id)
    if (a.weft === null) this.#unmarkBack(id)
  }

  /** Deletes the mark of a thread to send back (meta `back:<id>`) in the next batch. */
  #unmarkBack(id: string): void {
    const journal = this.#host.weave.journal
    journal.queueMetaDelete(`back:${id}`)
  }

  /**
   * A thread that moved here diverged from this weave's code while replaying the record it came
   * with (this weave runs older or other code, as in a rolling deploy): instead of failing here,
   * it goes back to the weave it came from, which ran it, with its record as it came and what was
   * sent to it since (nothing was recorded for it here). Once: a thread sent back is not sent back
   * again. True when it goes back. A weave that stops before it left sends it back when its
   * replay diverges again after the restart (meta `back:<id>`).
   */
  diverged(run: Run, err: Error): boolean {
    const a = this.#arriving.get(run.id)
    if (a === undefined || (a.weft !== null && a.weft !== run.weft) || !(err instanceof ReplayDivergence)) return false
    this.#arriving.delete(run.id)
    const weave = this.#host.weave
    warnOnce(weave.config, run.id, new MovedBack(run.id, a.from, weave.journal.weaveId, err.message, 'sent'))
    // Kept to send back by a weave that stops first (deleted in the batch it leaves in).
    if (a.weft !== null) weave.journal.queueMeta(`back:${run.id}`, a.from)
    // Until it leaves, in a turn of its own (the flush of #leave: src/group-commit.ts `ownTurn`), it
    // is alive here: what is sent to it goes into its inbox (and leaves with it); a kill, or the end
    // of a thread linked to it, ends it here. Its function, stopped, is let go of (a weft that runs
    // nothing stands in for it), and it is not passivated meanwhile.
    const diverging = run.weft
    run.weft = this.#host.weft(run, null)
    // A cancel put off to its next call goes back with it (#leave takes it off this weft).
    passCancel(diverging, run.weft)
    run.moving = true
    void ownTurn().then(() => {
      run.moving = false
      if (this.#host.closed()) return
      // Ended here meanwhile (killed, or a linked thread's end): it stays, ended.
      if (run.ended) return this.#unmarkBack(run.id)
      run.ended = true
      run.weft.detach()
      this.#leave(run, a.from, err.message)
    })
    return true
  }

  /** `Weave.arrive`, for a weave that is open. */
  arrive(msgId: string, record: MoveRecord, after: () => void, origin?: Origin): void {
    this.#take(msgId, record, after, origin, false)
  }

  /** Takes a thread that arrives (`refused`: that comes back, as no weave took its record). */
  #take(msgId: string, record: MoveRecord, after: () => void, origin: Origin | undefined, refused: boolean): void {
    const host = this.#host
    const weave = host.weave
    const bad = checkRecord(record)
    // Taken as it is (dropped) once: its sender's next envelope follows it (src/received.ts).
    if (!weave.messages.receiveOnce(msgId, after, origin)) return
    if (bad !== null) {
      weave.emit('error', new RaimentError('RAIMENT_BAD_MIGRATION', `a thread moving here from another weave came with an unreadable record (${bad}); it was dropped`))
      return
    }
    const t = record.thread
    const moves = (this.#moves ??= new Moves(weave.journal))
    moves.write(record)
    // Taken (acknowledged) only once the journal's stream has its arrival.
    weave.journal.holdForStream()
    weave.messages.arrived(record, refused)
    const type = host.type(t.type)
    if (type === undefined) {
      // It waits here for its type, as a thread of this weave would (src/weave-parked.ts): a
      // reload that loads it runs it, or it can be moved on; its calls in flight and a put-off
      // cancel are kept for that run.
      const parked = host.park({ id: t.id, type: t.type, parent: t.parent, trace: t.trace ?? null, scope: typeof t.scope === 'string' ? t.scope : null, continued: t.continued ?? 0 })
      if (record.inFlight !== undefined) arrivedMarks(weave.journal, null, t.id, record.inFlight)
      if (record.cancel !== undefined) cancelThread(parked.weft, weave.journal, t.id, record.cancel)
      return
    }
    const entries = record.entries.map(([seq, key, ord, ok, outcome]) => ({ seq, key, ord, ok: ok === 1, text: outcome, call: null }))
    // Its run here goes on the trace of its run where it came from.
    const run = host.prepare(t.id, t.type, t.parent, entries, t.trace ?? null, t.continued ?? 0, typeof t.scope === 'string' ? t.scope : null)
    // (A thread with no record cannot diverge: its replay, which would forget it, never runs.)
    if (record.inFlight !== undefined) arrivedMarks(weave.journal, run.weft, t.id, record.inFlight)
    if (record.cancel !== undefined) cancelThread(run.weft, weave.journal, t.id, record.cancel)
    if (refused) {
      // Its own weave's record: it replays here as after a restart.
    } else if (record.back !== undefined) warnOnce(weave.config, t.id, new MovedBack(t.id, weave.journal.weaveId, record.from, record.back, 'back'))
    else if (entries.length > 0) this.#arriving.set(t.id, { from: record.from, weft: run.weft })
    if (run.obs !== null) {
      host.observer()!.replayed(entries.length)
      weave.journal.setTrace(t.id, run.obs.traceparent)
    }
    void weave.journal.committed().then(() => {
      if (host.closed() || run.ended) return
      weave.resumed++
      host.start(run, type, decodeValue(t.params), true)
    })
  }
}

/** Is envelope `e` for thread `id` (a message, a watch, kill or cancel of it, an end it is told of, a fence toward it)? */
function concerns(e: Envelope | WatchEnvelope, id: string): boolean {
  if (e.k === 'msg') return e.to === id
  if (e.k === 'watch' || e.k === 'kill' || e.k === 'cancel' || e.k === 'fence') return e.target === id
  return e.k === 'exit' && e.watcher === id
}

/**
 * The Replicator: the journal's tap (src/group-commit.ts) that appends every group commit, in order,
 * to the journal's stream (names and record format: src/replication/records.ts), with publisher
 * confirms, on a confirm channel of its own on the weave's broker connection. The records in flight
 * and the callbacks held on them are kept by src/replication/in-flight.ts; this file owns the
 * publishing, the generations and the lease's fencing of them.
 *
 * Invariants:
 * - A batch's callbacks (the outcomes it releases to threads, the acks of messages it took) run
 *   in commit order, and under `hold` (durability 'replicated') only once the batch is confirmed
 *   in the current generation, or covered by the confirmed snapshot of a later one: whatever a
 *   thread has seen is in the stream a rebuild reads. Fenced, they never run.
 * - Each generation starts with a snapshot of the journal taken at a batch boundary (when the
 *   replicator starts; once a generation passes `checkpointBytes` or `checkpointRecords` batches,
 *   and its batches together outweigh its snapshot, so each checkpoint follows at least its
 *   snapshot's bytes of writes; and when a stream was deleted under it or records had to be
 *   dropped); it becomes current when its `generation` record in the head and every part
 *   of its snapshot are confirmed (confirms of records of different streams may come in any
 *   order); the one before is then deleted.
 * - After a reconnect, unconfirmed records are published again with the same headers (readers
 *   drop the duplicates by rseq); a record may thus be in the stream twice, never missing before
 *   a later one that was released.
 */
import type { ChannelModel, ConfirmChannel, ConsumeMessage } from 'amqplib'
import type { BrokerConnection } from '../amqp/connection.js'
import { InvalidArgument } from '../errors.js'
import type { Journal, JournalTap, Write } from '../journal.js'
import { Fenced, ReplicationUnavailable } from './errors.js'
import { encodeWrites } from './codec.js'
import { genStream, headStream, type RecordHeaders } from './records.js'
import { watchHead } from './head-watch.js'
import { snapshotWrites } from './snapshot.js'
import { sendNow } from './socket.js'
import { declareGeneration, deleteGenerations, readHead } from './streams.js'
import { checkSameJournal } from './same-journal.js'
import { logNack, RETRY_MS } from './confirms.js'
import { checkpointDue, limitsOf, MiB, type Item, type Lag, type Limits, type ReplicatorOptions } from './replicator-options.js'
import { InFlight } from './in-flight.js'

export type { Lag, ReplicatorOptions } from './replicator-options.js'

export class Replicator implements JournalTap {
  readonly journal: Journal
  readonly weaveId: string
  readonly namespace: string
  readonly epoch: number
  readonly #broker: BrokerConnection
  readonly #hold: boolean
  readonly #limits: Limits
  readonly #log: (line: string) => void
  readonly #onConnection: ((conn: ChannelModel) => Promise<void>) | undefined
  readonly #gate: ((run: () => void) => void) | undefined
  readonly #onFenced: ((why: string) => void) | undefined
  /** Records published or to publish, and the callbacks held on them, until released. */
  readonly #inFlight = new InFlight()
  /** The generation the head names (confirmed); the one records go to now. */
  #current = 0
  #writing = 0
  /** Generations to delete once a later one is current. */
  #old: number[] = []
  #genBytes = 0
  /** Batch records of the generation records go to now, and the bytes of its snapshot. */
  #genRecords = 0
  #snapshotBytes = 0
  #ch: ConfirmChannel | null = null
  #conn: ChannelModel | null = null
  #pubId = 0
  readonly #returned = new Set<string>()
  /** Stops looking for the head stream (src/replication/head-watch.ts). */
  #unwatch: () => void = () => {}
  #checkpointing = false
  /** The last checkpoint started (settles once it has published its records, or failed): `settled`. */
  #checkpointRun: Promise<void> = Promise.resolve()
  /** A checkpoint is due, starting at the next turn (`write`). */
  #due = false
  #needSnapshot = false
  #fenced: Error | null = null
  #closed = false
  /** Deletions of old generations under way (close waits for them). */
  #deleting: Promise<void> = Promise.resolve()
  readonly #onUp = (conn: ChannelModel): void => void this.#attach(conn)
  readonly #onDown = (): void => {
    this.#ch = null
    this.#conn = null
  }

  private constructor(o: ReplicatorOptions) {
    this.journal = o.journal
    this.weaveId = o.weaveId ?? o.journal.weaveId
    this.namespace = o.namespace ?? 'raiment'
    this.epoch = o.epoch ?? Number(o.journal.meta('repl_epoch') ?? '1')
    if (!(Number.isInteger(this.epoch) && this.epoch >= 1)) throw new InvalidArgument(`epoch must be a whole number from 1 up, got ${String(this.epoch)}`)
    this.#broker = o.broker
    this.#hold = o.hold
    this.#limits = limitsOf(o)
    this.#log = o.log ?? ((l) => process.stderr.write(l + '\n'))
    this.#onConnection = o.onConnection
    this.#gate = o.gate
    this.#onFenced = o.fenced
  }

  /**
   * Becomes the journal's tap: writes a first generation (a snapshot of the journal as it is)
   * and resolves once the broker has confirmed it. Call before the weave resumes its threads.
   * @throws ReplicationUnavailable when the broker is not connected, or the connection goes before the first generation is written
   * @throws Fenced when the journal's stream has a higher epoch than `epoch` (taken over)
   * @example
   * const r = await Replicator.start({ journal: weave.journal, broker: link.broker, hold: true })
   */
  static async start(o: ReplicatorOptions): Promise<Replicator> {
    const r = new Replicator(o)
    const conn = o.broker.connection
    if (conn === null) throw new ReplicationUnavailable(`cannot replicate journal '${r.weaveId}': the broker connection is down`)
    await r.#onConnection?.(conn)
    const head = await readHead(conn, r.namespace, r.weaveId)
    if (head !== null && head.epoch > r.epoch) throw new Fenced(r.weaveId, `its stream has epoch ${head.epoch}, this weave ${r.epoch}`)
    // Against the file's own epoch, not the one it writes from now on (a start takes a new one,
    // src/replication/host.ts): a stream at the file's epoch must not hold batches it lacks.
    if (head !== null) await checkSameJournal(conn, head, { namespace: r.namespace, weaveId: r.weaveId, epoch: Number(o.journal.meta('repl_epoch') ?? '1') }, o.journal)
    if (head !== null) {
      r.#current = r.#writing = head.gen
      // And the one before: a weave that stopped after its head moved on may not have deleted it.
      r.#old.push(...(head.gen > 1 ? [head.gen - 1] : []), head.gen)
    }
    o.journal.setMeta('repl_epoch', String(r.epoch))
    r.#ch = await r.#channel(conn)
    r.#conn = conn
    const ready = r.#checkpoint(conn, true)
    o.broker.on('up', r.#onUp)
    o.broker.on('down', r.#onDown)
    await ready
    // Not written (the connection went meanwhile): no thread may resume before its first
    // generation is in the stream (a takeover's fencing counts on it), so the open fails.
    if (r.#needSnapshot) {
      await r.close(0)
      throw new ReplicationUnavailable(`cannot replicate journal '${r.weaveId}': the broker connection went while its first generation was written; nothing was resumed: start it again`)
    }
    await r.flushed()
    r.#unwatch = watchHead({
      ns: r.namespace,
      weaveId: r.weaveId,
      conn: () => (r.#closed || r.#fenced !== null ? null : r.#conn),
      busy: () => r.#checkpointing,
      gone: (c) => {
        r.#log(`raiment: RAIMENT_JOURNAL_STREAM_GONE: the head stream ${headStream(r.namespace, r.weaveId)} of journal '${r.weaveId}' was deleted; writing a new generation from this weave's journal (left untouched)`)
        r.#checkpointSoon(c)
      },
    })
    return r
  }

  /** The tap: inside the batch's transaction. */
  write(rseq: number, writes: Write[]): void {
    if (this.#fenced !== null || this.#closed) return
    const body = encodeWrites(writes)
    this.#push(this.#writing, { weave: this.weaveId, epoch: this.epoch, rseq, kind: 'batch', gen: this.#writing }, body, writes.length)
    this.#genRecords++
    const due = checkpointDue(this.#limits, this.#genBytes, this.#genRecords, this.#snapshotBytes)
    if (due && !this.#checkpointing && !this.#due && this.#conn !== null) {
      const conn = this.#conn
      this.#due = true
      setImmediate(() => {
        this.#due = false
        if (!this.#closed && this.#fenced === null) this.#checkpointSoon(conn)
      })
    }
    if (this.#inFlight.lag().bytes > this.#limits.maxLagBytes && !this.#needSnapshot) this.#dropBodies()
  }

  /** The tap: after COMMIT. */
  release(run: () => void, hold = false): void {
    // Fenced, or closed under 'replicated' (its batches are no longer published): never released.
    if (this.#fenced !== null || (this.#closed && this.#hold)) return
    if (this.#gate !== undefined) {
      const gate = this.#gate
      const inner = run
      run = () => gate(inner)
    }
    // Without `hold`, at the local commit, unless a batch held for the stream waits before it.
    if ((!this.#hold && ((!hold && !this.#inFlight.holding) || this.#closed)) || this.#inFlight.empty) {
      run()
      return
    }
    this.#inFlight.hold(run)
  }

  /** The tap's gate: the fencing gate's, or none (at once); never once fenced. */
  gate(run: () => void): void {
    if (this.#fenced !== null) return
    if (this.#gate !== undefined) this.#gate(run)
    else run()
  }

  /** Entries and bytes committed here that the broker has not confirmed yet. */
  lag(): Lag {
    return this.#inFlight.lag()
  }

  /** Bytes of the generation records go to now (its snapshot and batches since). */
  streamBytes(): number {
    return this.#genBytes
  }

  /** The current generation (the head names it). */
  get generation(): number {
    return this.#current
  }

  /** Resolves once every record so far is confirmed (or the replicator is fenced or closed). */
  flushed(): Promise<void> {
    if (this.#fenced !== null || this.#closed) return Promise.resolve()
    return this.#inFlight.flushed()
  }

  /**
   * Resolves once no checkpoint is under way or due and every record so far is confirmed: a
   * checkpoint the last batches started has become current, unless it failed (its retry is not
   * waited for) or found no channel. At once when fenced or closed.
   */
  async settled(): Promise<void> {
    for (;;) {
      await this.flushed()
      if (this.#fenced !== null || this.#closed || (!this.#checkpointing && !this.#due)) return
      await (this.#checkpointing ? this.#checkpointRun.catch(() => {}) : new Promise<void>((r) => setImmediate(r)))
    }
  }

  /**
   * Stops for good: publishes nothing more and never runs a held callback (this weave lost its
   * lease). `why` is kept as the reason.
   */
  fence(why: Error = new Fenced(this.weaveId, 'fenced')): void {
    if (this.#fenced !== null) return
    this.#fenced = why
    this.#inFlight.takeRuns()
    const ch = this.#ch
    this.#ch = null
    void ch?.close().catch(() => {})
    this.#inFlight.wake()
  }

  get fenced(): Error | null {
    return this.#fenced
  }

  /** Waits up to `waitMs` for the records in flight to be confirmed, then stops. */
  async close(waitMs = 2_000): Promise<void> {
    if (this.#closed) return
    let timer: NodeJS.Timeout | undefined
    await Promise.race([this.flushed(), new Promise<void>((r) => (timer = setTimeout(r, waitMs)))])
    clearTimeout(timer)
    await this.#deleting
    this.#closed = true
    // Without `hold`, batches held for the stream (a move) that it did not confirm in time go
    // now, before any later batch (released at once from here on): in commit order.
    if (!this.#hold && this.#inFlight.holding) for (const run of this.#inFlight.takeRuns()) run()
    this.#unwatch()
    this.#broker.off('up', this.#onUp)
    this.#broker.off('down', this.#onDown)
    const ch = this.#ch
    this.#ch = null
    await ch?.close().catch(() => {})
    this.#inFlight.wake()
  }

  #push(gen: number, headers: RecordHeaders, body: Buffer, entries: number): void {
    const item: Item = { gen, queue: headers.kind === 'generation' ? headStream(this.namespace, this.weaveId) : genStream(this.namespace, this.weaveId, gen), headers, body, entries, bytes: body.length, confirmed: false, runs: null }
    this.#inFlight.add(item)
    if (headers.kind !== 'generation') this.#genBytes += item.bytes
    if (this.#ch !== null) {
      this.#publish(this.#ch, item)
      if (headers.kind === 'batch') sendNow(this.#ch)
    }
  }

  #publish(ch: ConfirmChannel, item: Item): void {
    if (item.body === null) return
    const id = String(++this.#pubId)
    try {
      ch.publish('', item.queue, item.body, { mandatory: true, messageId: id, headers: item.headers }, (err: unknown) => this.#confirmed(ch, item, id, err))
    } catch {
      // The channel is closing: the next one publishes what is unconfirmed.
    }
  }

  #confirmed(ch: ConfirmChannel, item: Item, id: string, err: unknown): void {
    const returned = this.#returned.delete(id)
    if (this.#ch !== ch || this.#fenced !== null) return
    if (err) {
      logNack(this.#log, this.weaveId, err)
      this.#reopen(ch)
      return
    }
    if (returned) {
      // No such stream any more: deleted by an operator. A new generation starts from a snapshot.
      if (item.gen >= this.#writing && !this.#checkpointing && this.#conn !== null) {
        this.#log(`raiment: RAIMENT_JOURNAL_STREAM_GONE: the stream ${item.queue} of journal '${this.weaveId}' was deleted; writing a new generation from this weave's journal (left untouched)`)
        this.#checkpointSoon(this.#conn)
      }
      return
    }
    item.confirmed = true
    if ((item.headers.kind === 'generation' || item.headers.kind === 'snapshot') && item.gen > this.#current) this.#advance()
    this.#inFlight.drain(this.#current)
  }

  /**
   * The latest generation whose `generation` record and snapshot are all confirmed becomes
   * current. (Its records are all at or after the head of the list: none of a generation later
   * than the current one is released.)
   */
  #advance(): void {
    const gen = this.#inFlight.latestWhole()
    if (gen <= this.#current) return
    this.#current = gen
    this.#deleteOld()
  }

  async #channel(conn: ChannelModel): Promise<ConfirmChannel> {
    const ch = await conn.createConfirmChannel()
    ch.on('error', () => {})
    ch.on('return', (m: ConsumeMessage) => this.#returned.add(String(m.properties.messageId)))
    ch.on('close', () => {
      if (this.#ch === ch) this.#ch = null
    })
    return ch
  }

  /** A new connection: the lease first, then what is unconfirmed again (or a new snapshot). */
  async #attach(conn: ChannelModel): Promise<void> {
    if (this.#fenced !== null || this.#closed) return
    try {
      await this.#onConnection?.(conn)
    } catch (e) {
      this.fence(e as Error)
      return
    }
    await this.#resume(conn)
  }

  /**
   * On connection `conn`: what is unconfirmed published again, or a new snapshot. Tried again
   * every RETRY_MS while `conn` stays the broker's: a node just started answers NOT_FOUND for its
   * streams until it has recovered them, and nothing else would try again (no new connection
   * comes), so batches a snapshot must cover waited forever.
   */
  async #resume(conn: ChannelModel): Promise<void> {
    if (this.#fenced !== null || this.#closed || this.#broker.connection !== conn) return
    try {
      // A channel of this connection kept from a try before (`#onDown` lets go of the others).
      const ch = this.#ch ?? (await this.#channel(conn))
      if (this.#broker.connection !== conn) return
      this.#ch = ch
      this.#conn = conn
      if (this.#needSnapshot) {
        await this.#checkpoint(conn, false)
        // Not written (its channel went meanwhile, or another checkpoint was under way): again.
        if (this.#needSnapshot && !this.journal.closed) throw new Error('the snapshot was not written')
      } else for (const it of this.#inFlight.pending()) if (!it.confirmed && it.gen >= this.#current) this.#publish(ch, it)
    } catch (e) {
      if (this.#broker.connection !== conn || this.#closed || this.#fenced !== null || this.journal.closed) return
      this.#log(`raiment: journal replication could not resume on the new connection (${(e as Error).message}); trying again in ${RETRY_MS} ms`)
      setTimeout(() => void this.#resume(conn), RETRY_MS).unref()
    }
  }

  #reopen(ch: ConfirmChannel): void {
    this.#ch = null
    void ch.close().catch(() => {})
    setTimeout(() => {
      const conn = this.#broker.connection
      if (conn !== null && this.#ch === null) void this.#attach(conn)
    }, RETRY_MS).unref()
  }

  /** Too much unconfirmed: keep the callbacks, drop the bodies; a snapshot will cover them. */
  #dropBodies(): void {
    this.#needSnapshot = true
    for (const it of this.#inFlight.pending()) if (!it.confirmed) it.body = null
    this.#log(`raiment: journal '${this.weaveId}' has more than ${Math.round(this.#limits.maxLagBytes / MiB)} MiB unconfirmed by the broker; a snapshot replaces those records once it confirms again`)
  }

  /** Starts a new generation (`#startGeneration`) unless one is being started. */
  #checkpoint(conn: ChannelModel, first: boolean): Promise<void> {
    if (this.#checkpointing) return Promise.resolve()
    return (this.#checkpointRun = this.#startGeneration(conn, first))
  }

  /**
   * Starts generation `#writing + 1`: declares it (deleting a leftover of a start that died),
   * then, in one synchronous step, snapshots the journal and switches records to it, then
   * appends its `generation` record to the head. Resolves once that is published (not confirmed).
   */
  async #startGeneration(conn: ChannelModel, first: boolean): Promise<void> {
    this.#checkpointing = true
    try {
      // Never over a head another weave moved on: a stale writer that still has a connection
      // (it should not: the lease goes with it) finds a higher epoch here, or a generation it did
      // not write (one of another weave at its own epoch: its streams deleted by that one's
      // checkpoint, which is why this one is writing a new generation), and stops.
      const head = first ? null : await readHead(conn, this.namespace, this.weaveId)
      const moved = head === null ? null : head.epoch > this.epoch ? `its stream has epoch ${head.epoch}, this weave ${this.epoch}` : head.gen > this.#writing ? `its stream's head names generation ${head.gen} (epoch ${head.epoch}), which this weave did not write (it writes generation ${this.#writing}): another weave ran its journal` : null
      if (moved !== null) {
        this.fence(new Fenced(this.weaveId, moved))
        this.#onFenced?.(moved)
        return
      }
      const gen = Math.max(this.#writing, head?.gen ?? 0) + 1
      await declareGeneration(conn, this.namespace, this.weaveId, gen)
      if (this.#fenced !== null || this.#closed || this.journal.closed) return
      // The tap first, even when the channel went meanwhile (then `start` fails): before, a first
      // generation whose channel went left the journal with no tap, and the weave ran on.
      if (first) this.journal.setTap(this)
      if (this.#ch === null) {
        this.#needSnapshot = true
        return
      }
      // One synchronous step: the state after exactly the last committed batch.
      const rseq = this.journal.rseq
      const parts = snapshotWrites(this.journal.db)
      if (this.#writing > 0 && !this.#old.includes(this.#writing)) this.#old.push(this.#writing)
      this.#writing = gen
      this.#genBytes = 0
      this.#genRecords = 0
      this.#needSnapshot = false
      // Records that were dropped are covered by this snapshot: publish none of them again, and
      // release them when it counts (its generation record confirmed), not before.
      for (const it of this.#inFlight.pending()) {
        if (it.body !== null) continue
        it.gen = gen
        it.confirmed = true
      }
      const base = { weave: this.weaveId, epoch: this.epoch, rseq, gen }
      parts.forEach((w, part) => this.#push(gen, { ...base, kind: 'snapshot', part, ...(part === parts.length - 1 ? { end: 1 } : {}) }, encodeWrites(w), w.length))
      this.#snapshotBytes = this.#genBytes
      const journal = this.journal.meta('journal_id')
      this.#push(gen, { ...base, kind: 'generation', ...(journal !== undefined ? { journal } : {}) }, Buffer.alloc(0), 0)
    } finally {
      this.#checkpointing = false
    }
  }

  /**
   * A checkpoint in the background. One that fails is tried again: on the next connection if
   * this one went, else after a pause (the streams changed under it, e.g. an operator deleting them).
   */
  #checkpointSoon(conn: ChannelModel): void {
    this.#checkpoint(conn, false).catch((e: unknown) => {
      this.#needSnapshot = true
      if (this.#broker.connection !== conn || this.#closed || this.#fenced !== null) return
      this.#log(`raiment: a checkpoint of journal '${this.weaveId}' failed (${(e as Error).message}); trying again in ${RETRY_MS} ms`)
      setTimeout(() => {
        if (this.#broker.connection === conn && this.#needSnapshot) this.#checkpointSoon(conn)
      }, RETRY_MS).unref()
    })
  }

  #deleteOld(): void {
    const conn = this.#conn
    const old = this.#old.filter((g) => g < this.#current)
    this.#old = this.#old.filter((g) => g >= this.#current)
    if (conn === null || old.length === 0) return
    const before = this.#deleting
    // One that could not be deleted (the connection went) is tried again at the next checkpoint.
    this.#deleting = before.then(() => deleteGenerations(conn, this.namespace, this.weaveId, old)).catch(() => {
      for (const g of old) if (!this.#old.includes(g)) this.#old.push(g)
    })
  }
}


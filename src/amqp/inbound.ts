/**
 * The inbound consumer: takes what other weaves sent this one from its quorum queue.
 *
 * Invariant: a delivery is acknowledged only after what it carries is committed here (a message
 * in an inbox or the dead letters, keyed by its id; a spawn as a thread row, keyed by the thread
 * id; for a batch, every envelope in it), so a crash at any instant leads to a redelivery that is
 * then ignored, never to a loss.
 *
 * Cost: deliveries are acknowledged with `multiple`, one frame for every delivery up to the
 * newest whose predecessors are all committed too, sent once per turn of the event loop rather
 * than once per message; a delivery committed ahead of an older one waits for it (one never
 * committed, as when the weave closes mid-way, holds the later ones back until the channel
 * closes, and the broker redelivers them all).
 *
 * Each envelope is taken with its origin where the sender gave one (headers `src`, `sn`, `prev`;
 * see src/received.ts), so that its id can later be pruned from `received`; envelopes of senders
 * of earlier builds have none and are taken by id alone, as before. One that comes ahead of the
 * row before it from its sender waits for it (src/amqp/resequence.ts).
 */
import type { Channel, ChannelModel, ConsumeMessage } from 'amqplib'
import { decodeValue } from '../encoding.js'
import type { Envelope, WatchEnvelope } from '../messages.js'
import type { Origin } from '../received.js'
import type { Weave } from '../weave.js'
import { Resequencer } from './resequence.js'
import type { Topology } from './topology.js'
import type { BatchEnvelope } from './wire.js'

/**
 * Unacknowledged deliveries the broker may send ahead. Each is acknowledged only after a commit
 * here (a few ms), so this covers a couple of commits' worth, or the broker waits on the acks.
 */
export const PREFETCH = 2_000

/** A delivery and whether what it carries is committed. */
interface Pending {
  m: ConsumeMessage
  done: boolean
}

/** The deliveries of one channel not yet acknowledged, in delivery order. */
class Acks {
  readonly ch: Channel
  readonly #pending: Pending[] = []
  #head = 0
  #queued = false

  constructor(ch: Channel) {
    this.ch = ch
  }

  /** Tracks a delivery; call the function returned once what it carries is committed. */
  track(m: ConsumeMessage, live: () => boolean): () => void {
    const p: Pending = { m, done: false }
    this.#pending.push(p)
    return () => {
      p.done = true
      if (this.#queued) return
      this.#queued = true
      // After the other callbacks of this commit: one ack for all of them.
      process.nextTick(() => {
        this.#queued = false
        if (live()) this.#flush()
      })
    }
  }

  #flush(): void {
    const q = this.#pending
    let last: Pending | null = null
    let i = this.#head
    while (i < q.length && q[i]!.done) last = q[i++]!
    if (last === null) return
    if (i === q.length) {
      q.length = 0
      this.#head = 0
    } else if (i > 1_024 && i * 2 > q.length) {
      q.splice(0, i)
      this.#head = 0
    } else this.#head = i
    try {
      this.ch.ack(last.m, true)
    } catch {
      // A channel closing: the broker redelivers, and the copies are ignored.
    }
  }
}

export class Inbound {
  readonly #weave: Weave
  readonly #topology: Topology
  readonly #seq: Resequencer
  #acks: Acks | null = null

  constructor(weave: Weave, topology: Topology, log: (line: string) => void) {
    this.#weave = weave
    this.#topology = topology
    this.#seq = new Resequencer(weave.journal, weave.messages.received, (msgId, e, after, from, trace) => this.#dispatch(msgId, e, after, from, trace), log)
  }

  async attach(conn: ChannelModel): Promise<void> {
    const ch = await conn.createChannel()
    ch.on('error', () => {})
    const acks = new Acks(ch)
    ch.on('close', () => {
      if (this.#acks === acks) this.#acks = null
    })
    const id = this.#weave.journal.weaveId
    await this.#topology.exchanges(ch)
    await this.#topology.weaveQueue(ch, id)
    await ch.prefetch(PREFETCH)
    this.#acks = acks
    // A channel closed since (or closing) is never acknowledged on: the broker redelivers what
    // it had in flight there, and the copies are ignored.
    const live = (): boolean => this.#acks === acks
    // A delivery that comes as the weave closes is left unacknowledged: the broker gives it to the
    // weave's next run (a throw here, inside amqplib's frame handling, would wedge the channel).
    await ch.consume(this.#topology.queue(id), (m) => m && !this.#weave.journal.closed && this.#take(m, acks.track(m, live)), { noAck: false })
  }

  #take(m: ConsumeMessage, ack: () => void): void {
    let e: Envelope | WatchEnvelope | BatchEnvelope
    try {
      e = JSON.parse(m.content.toString()) as Envelope | WatchEnvelope | BatchEnvelope
    } catch {
      ack() // not ours: nothing could ever take it
      return
    }
    const h = (m.properties.headers ?? {}) as Record<string, unknown>
    if (typeof e !== 'object' || e === null || e.k !== 'batch') {
      this.#one(String(m.properties.messageId), e, ack, origin(h['src'], h['sn'], h['prev']), traceOf(h['traceparent']), h['pend'] === 1)
      return
    }
    // Each envelope of a batch is taken as if it had come alone, in order; the delivery is
    // acknowledged once every one of them is committed.
    const { ids, items } = e
    if (!Array.isArray(ids) || !Array.isArray(items) || ids.length !== items.length || ids.length === 0) {
      ack() // as above
      return
    }
    let left = items.length
    const one = (): void => {
      if (--left === 0) ack()
    }
    const sns = Array.isArray(h['sn']) && h['sn'].length === ids.length ? (h['sn'] as unknown[]) : null
    const prevs = Array.isArray(h['prev']) ? (h['prev'] as unknown[]) : []
    const tps = Array.isArray(h['traceparents']) ? (h['traceparents'] as unknown[]) : []
    // (The row before each envelope but the first is the one before it in the batch.)
    for (let i = 0; i < items.length; i++) this.#one(String(ids[i]), items[i]!, one, sns === null ? undefined : origin(h['src'], sns[i], prevs[i]), traceOf(tps[i]), i > 0 || h['pend'] === 1)
  }

  /**
   * Takes one envelope whose id is `msgId`, or parks it; `after` runs once what it carries is
   * committed. `pend`: the row before it was not confirmed when it was sent (it may come later).
   */
  #one(msgId: string, e: Envelope | WatchEnvelope, after: () => void, from: Origin | undefined, trace: string | null, pend: boolean): void {
    if (typeof e !== 'object' || e === null) {
      after() // not ours: nothing could ever take it
      return
    }
    if (from === undefined || !this.#seq.parks(msgId, e, from, trace, pend, after)) this.#dispatch(msgId, e, after, from, trace)
  }

  /** Takes one envelope whose id is `msgId`; `after` runs once what it carries is committed. */
  #dispatch(msgId: string, e: Envelope | WatchEnvelope, after: () => void, from: Origin | undefined, trace: string | null): void {
    const w = this.#weave
    if (e.k === 'msg') {
      w.messages.receive(msgId, e.from, e.to, e.body, after, from, typeof e.name === 'string' ? e.name : undefined, trace)
      return
    }
    if (e.k === 'move') {
      w.arrive(msgId, e.record, after, from)
      return
    }
    if (e.k === 'fence') {
      w.messages.fenceIn(msgId, e, after, from)
      return
    }
    if (e.k === 'watch' || e.k === 'exit' || e.k === 'kill' || e.k === 'cancel' || e.k === 'unwatch') {
      w.watches.receive(msgId, e, after, from)
      return
    }
    let failed: Error | null = null
    try {
      // Spawned once by its thread id (a copy finds it there).
      w.spawn(e.type, decodeValue(e.params), { id: e.id, trace, ...(e.parent !== null ? { parent: e.parent } : {}) })
    } catch (err) {
      // Closing: nothing is recorded, and the envelope is redelivered to the next run.
      if ((err as { code?: string }).code === 'RAIMENT_WEAVE_CLOSED') return
      failed = err as Error
    }
    // Taken once, in the batch of the spawn (a copy, redelivered, must not tell the parent of an
    // unknown type again), and recorded so that the chain of its sender goes on past it.
    if (!w.messages.received.once(msgId, from, after)) return
    if (failed !== null && e.parent !== null) {
      // An unknown type here: tell the parent, as for a thread that failed at once.
      const msg = { exit: e.id, status: 'failed', error: { name: failed.name, message: failed.message } }
      w.messages.send(e.id, e.parent, msg, `exit:${e.id}:${e.parent}`)
    }
  }

  detach(): void {
    this.#acks = null
  }

  /** The link closes: nothing parked is taken any more by this run. */
  close(): void {
    this.detach()
    this.#seq.stop()
  }
}

/** The origin the headers give, or undefined if they give none (an older sender) or a malformed one. */
function origin(src: unknown, sn: unknown, prev: unknown): Origin | undefined {
  if (typeof src !== 'string' || src === '' || !Number.isSafeInteger(sn) || (sn as number) < 1) return undefined
  if (prev === undefined || prev === null) return { src, sn: sn as number, prev: null }
  if (!Number.isSafeInteger(prev) || (prev as number) < 1 || (prev as number) >= (sn as number)) return undefined
  return { src, sn: sn as number, prev: prev as number }
}

/** A trace context header (W3C traceparent) as sent, or null for none or anything malformed. */
function traceOf(v: unknown): string | null {
  return typeof v === 'string' && v.length === 55 ? v : null
}

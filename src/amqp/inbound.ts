/**
 * The inbound consumer: takes what other weaves sent this one from its quorum queue.
 *
 * Invariant: a delivery is acknowledged only after what it carries is committed here (a message
 * in an inbox or the dead letters, keyed by its id; a spawn as a thread row, keyed by the thread
 * id), so a crash at any instant leads to a redelivery that is then ignored, never to a loss.
 */
import type { Channel, ChannelModel, ConsumeMessage } from 'amqplib'
import { decodeValue } from '../encoding.js'
import type { Envelope, WatchEnvelope } from '../messages.js'
import type { Weave } from '../weave.js'
import type { Topology } from './topology.js'

const PREFETCH = 500

export class Inbound {
  readonly #weave: Weave
  readonly #topology: Topology
  #ch: Channel | null = null

  constructor(weave: Weave, topology: Topology) {
    this.#weave = weave
    this.#topology = topology
  }

  async attach(conn: ChannelModel): Promise<void> {
    const ch = await conn.createChannel()
    ch.on('error', () => {})
    ch.on('close', () => {
      if (this.#ch === ch) this.#ch = null
    })
    const id = this.#weave.journal.weaveId
    await this.#topology.exchanges(ch)
    await this.#topology.weaveQueue(ch, id)
    await ch.prefetch(PREFETCH)
    this.#ch = ch
    await ch.consume(this.#topology.queue(id), (m) => m && this.#take(ch, m), { noAck: false })
  }

  #take(ch: Channel, m: ConsumeMessage): void {
    const ack = (): void => {
      // A channel closed since (or closing): the broker redelivers, and the copy is ignored.
      if (this.#ch !== ch) return
      try {
        ch.ack(m)
      } catch {
        // closing: as above
      }
    }
    let e: Envelope | WatchEnvelope
    try {
      e = JSON.parse(m.content.toString()) as Envelope | WatchEnvelope
    } catch {
      ack() // not ours: nothing could ever take it
      return
    }
    const w = this.#weave
    if (e.k === 'msg') {
      w.messages.receive(String(m.properties.messageId), e.from, e.to, e.body, ack)
      return
    }
    if (e.k === 'move') {
      w.arrive(String(m.properties.messageId), e.record, ack)
      return
    }
    if (e.k === 'watch' || e.k === 'exit' || e.k === 'kill') {
      w.watches.receive(String(m.properties.messageId), e, ack)
      return
    }
    try {
      w.spawn(e.type, decodeValue(e.params), { id: e.id, ...(e.parent !== null ? { parent: e.parent } : {}) })
    } catch (err) {
      if ((err as { code?: string }).code === 'RAIMENT_WEAVE_CLOSED') return // redelivered to the next run
      // An unknown type here: tell the parent, as for a thread that failed at once.
      const msg = { exit: e.id, status: 'failed', error: { name: (err as Error).name, message: (err as Error).message } }
      if (e.parent !== null) w.messages.send(e.id, e.parent, msg, `exit:${e.id}:${e.parent}`)
    }
    void w.committed().then(ack)
  }

  detach(): void {
    this.#ch = null
  }
}

/**
 * A process that runs replicated weaves: its own, and those it took over (hosted).
 *
 * Each replicated weave here has its own AmqpLink (its own connection: the one holding its
 * lease and writing its journal stream), its own Fencing and its own replication. The process's
 * own weave watches the heartbeats (src/replication/takeover.ts) and, when it is the candidate for
 * a silent weave, takes it over: its lease on a new connection, its journal rebuilt from its
 * stream beside this weave's own (`<dir>/<id>.taken.db`), then a second Weave on it, with the
 * epoch after the stream's. The lost weave's queue, names, timers, supervisors, links, monitors
 * and joins all go on, as it is the same weave id with the same journal.
 *
 * A weave fenced here (src/replication/fencing.ts) releases and publishes nothing more: the own
 * weave's fencing ends the process (exit 3, via `fenced`); a hosted one's is dropped.
 */
import { existsSync, rmSync } from 'node:fs'
import { dirname, join } from 'node:path'
import type { ChannelModel } from 'amqplib'
import { AmqpLink } from '../amqp/link.js'
import { DEFAULT_NAMESPACE } from '../amqp/topology.js'
import type { Weave, WeaveOptions } from '../weave.js'
import { streamEpoch } from './epoch.js'
import { Fenced, Fencing } from './fencing.js'
import { leaseUrl, LeaseHeld, takeLease } from './lease.js'
import { DEFAULT_TAKEOVER_AFTER_MS, Takeovers } from './takeover.js'
import { appendTakeover, journalEpoch, setJournalEpoch, weaveIdOf } from './journal-epoch.js'
import { crashPoint } from '../crash-points.js'

/** What this file needs of the journal replication (src/replication/replicator.ts, rebuild.ts). */
export interface ReplicationCore {
  /** The journal stream of weave `id` (its current generation). */
  stream(conn: ChannelModel, ns: string, id: string): Promise<string>
  /**
   * Opens a weave on `db` whose journal is replicated through `link`'s broker, writing `epoch`,
   * every batch's callbacks released through `gate` after the replication's own condition.
   * `takeover`: the first record written says the journal was taken over.
   */
  open(o: WeaveOptions & { db: string; weaveId?: string; link: AmqpLink; epoch: number; gate: (run: () => void) => void; takeover: boolean }): Promise<Replicated>
  /** Rebuilds weave `weaveId`'s journal from its stream into a new file `file`. */
  rebuild(o: { url: string; namespace: string; weaveId: string; file: string; log: (l: string) => void }): Promise<{ epoch: number; entries: number; ms: number }>
}

/** A weave opened by `ReplicationCore.open`. */
export interface Replicated {
  weave: Weave
  /** The epoch the journal was at when opened (its meta), for the own weave. */
  epoch: number
  /** Stops publishing for good; held callbacks never run. */
  fence(): void
  /** Entries and bytes not yet confirmed by the broker. */
  lag(): { entries: number; bytes: number }
  close(): Promise<void>
}

export interface HostOptions {
  url: string
  namespace?: string
  /** The own weave: its journal file and the rest of its options. */
  weave: WeaveOptions & { db: string }
  heartbeatMs?: number
  takeoverAfterMs?: number
  core: ReplicationCore
  log: (line: string) => void
  /** The own weave (or the process) is fenced: stop everything, recording nothing, exit 3. */
  fenced: (err: Fenced) => void
  /** A weave is open here (the own one, or one taken over), before it takes messages from the broker. */
  opened?: (weave: Weave, own: boolean) => void
  /** A weave was taken over and runs here now. */
  tookOver?: (id: string, info: { epoch: number; entries: number; rebuildMs: number; totalMs: number }) => void
}

interface RunOptions extends WeaveOptions {
  db: string
  weaveId: string
  own: boolean
  hostedBy?: string
  /** For a takeover: runs under the lease, before the journal is opened; returns the epoch to write. */
  prepare?: (conn: ChannelModel) => Promise<number>
}

interface Running {
  replicated: Replicated
  link: AmqpLink
  fencing: Fencing
}

export class ReplicatedHost {
  readonly #o: HostOptions
  readonly ns: string
  readonly takeoverAfterMs: number
  #own: Running | null = null
  readonly #hosted = new Map<string, Running>()
  #takeovers: Takeovers | null = null
  #closed = false

  private constructor(o: HostOptions) {
    this.#o = o
    this.ns = o.namespace ?? DEFAULT_NAMESPACE
    this.takeoverAfterMs = o.takeoverAfterMs ?? DEFAULT_TAKEOVER_AFTER_MS
  }

  /**
   * Opens the own weave (its lease first: refused if held) and starts watching for weaves to
   * take over.
   * @throws LeaseHeld when another connection holds this weave's lease (it was taken over, or runs elsewhere)
   */
  static async start(o: HostOptions): Promise<ReplicatedHost> {
    const host = new ReplicatedHost(o)
    const takeovers = new Takeovers({
      takeoverAfterMs: host.takeoverAfterMs,
      takeOver: (id) => host.#takeOver(id),
      hosted: () => new Set(host.#hosted.keys()),
      log: o.log,
    })
    host.#takeovers = takeovers
    const weaveId = o.weave.weaveId ?? weaveIdOf(o.weave.db, o.weave.durability)
    await host.#run({ ...o.weave, weaveId, own: true })
    return host
  }

  /** The own weave. */
  get weave(): Weave {
    return this.#own!.replicated.weave
  }

  get link(): AmqpLink {
    return this.#own!.link
  }

  /** The weaves this process hosts besides its own, by id. */
  get hosted(): ReadonlyMap<string, Weave> {
    return new Map([...this.#hosted].map(([id, r]) => [id, r.replicated.weave]))
  }

  /**
   * Opens one replicated weave with its link, lease and fencing. The lease is taken on the
   * link's connection first, before the journal is opened or rebuilt, and stays there.
   * Null: the lease of a weave to take over was held by another.
   */
  async #run(o: RunOptions): Promise<Running | null> {
    const ns = this.ns
    const takeovers = this.#takeovers!
    let fencing: Fencing | null = null
    const link = await AmqpLink.connect({
      url: leaseUrl(this.#o.url),
      namespace: ns,
      ...(this.#o.heartbeatMs !== undefined ? { heartbeatMs: this.#o.heartbeatMs } : {}),
      log: this.#o.log,
      replication: {
        announce: () => ({
          ...(fencing !== null ? { replicated: { epoch: fencing.epoch, takeoverAfterMs: this.takeoverAfterMs } } : {}),
          ...(o.own && this.#hosted.size > 0 ? { hosts: [...this.#hosted.keys()] } : {}),
          ...(o.hostedBy !== undefined ? { hostedBy: o.hostedBy } : {}),
        }),
        acquire: (conn) => (fencing === null ? Promise.resolve(true) : fencing.acquire(conn)),
        heard: (b, own) => {
          if (own) fencing?.echo(b.at)
          else if (o.own) takeovers.heard(b)
        },
        members: (m) => {
          if (o.own) takeovers.start(m)
        },
      },
    })
    try {
      const conn = link.broker.connection
      if (conn === null || !(await takeLease(conn, ns, o.weaveId))) {
        if (o.own) throw new LeaseHeld(ns, o.weaveId)
        await link.close()
        return null
      }
      const epoch = o.prepare !== undefined ? await o.prepare(conn) : journalEpoch(o.db)
      let replicated: Replicated | null = null
      const id = o.weaveId
      const f = (fencing = new Fencing({
        ns,
        weaveId: id,
        epoch,
        takeoverAfterMs: this.takeoverAfterMs,
        streamEpoch: async (c) => streamEpoch(c, await this.#o.core.stream(c, ns, id)),
        fenced: (err) => {
          replicated?.fence()
          if (o.own) this.#o.fenced(err)
          else this.#dropHosted(id, err)
        },
        log: this.#o.log,
      }))
      const { prepare: _, own: __, hostedBy: ___, ...weaveOptions } = o
      replicated = await this.#o.core.open({ ...weaveOptions, link, epoch, gate: (run) => f.release(run), takeover: o.prepare !== undefined })
      const running = { replicated, link, fencing: f }
      if (o.own) {
        this.#own = running
        takeovers.setSelf(id)
      } else this.#hosted.set(id, running)
      this.#o.opened?.(replicated.weave, o.own)
      await link.start(replicated.weave)
      return running
    } catch (e) {
      await link.close()
      throw e
    }
  }

  /** Takes weave `id` over (see the top of this file). False: its lease is held by another. */
  async #takeOver(id: string): Promise<boolean> {
    if (this.#closed || this.#own === null) return false
    const began = Date.now()
    const own = this.#own.replicated.weave
    const file = join(dirname(own.journal.file), `${id}.taken.db`)
    let info = { epoch: 0, entries: 0, rebuildMs: 0 }
    const running = await this.#run({
      ...this.#o.weave,
      db: file,
      weaveId: id,
      own: false,
      hostedBy: own.journal.weaveId,
      // Under the lease (held on the hosted weave's own connection from here on).
      prepare: async (conn) => {
        this.#o.log(`raiment: weave ${id} stopped heartbeating over ${(this.takeoverAfterMs / 1000).toFixed(1)} s ago; taking it over (rebuilding its journal from its stream)`)
        if (existsSync(file)) rmSync(file) // a rebuild of an earlier attempt by this process that did not finish
        const rebuilt = await this.#o.core.rebuild({ url: this.#o.url, namespace: this.ns, weaveId: id, file, log: this.#o.log })
        const epoch = rebuilt.epoch + 1
        crashPoint('takeover-rebuilt')
        setJournalEpoch(file, epoch)
        // The stream says it was taken over before anything of the new epoch runs: a weave at
        // an older epoch that gets the lease back later finds it and stops (fencing).
        await appendTakeover(conn, await this.#o.core.stream(conn, this.ns, id), id, epoch, own.journal.weaveId)
        info = { epoch, entries: rebuilt.entries, rebuildMs: rebuilt.ms }
        return epoch
      },
    })
    if (running === null) return false
    this.#o.log(`raiment: took over weave ${id} at epoch ${info.epoch}: ${info.entries} entries rebuilt in ${info.rebuildMs} ms, its threads run here (${Date.now() - began} ms)`)
    this.#o.tookOver?.(id, { ...info, totalMs: Date.now() - began })
    return true
  }

  #dropHosted(id: string, err: Fenced): void {
    const r = this.#hosted.get(id)
    this.#hosted.delete(id)
    this.#o.log(`raiment: ${err.code}: ${err.message}`)
    void r?.link.close()
  }

  async close(): Promise<void> {
    this.#closed = true
    this.#takeovers?.stop()
    for (const r of [...this.#hosted.values(), ...(this.#own ? [this.#own] : [])]) {
      r.fencing.close()
      await r.link.close()
      await r.replicated.close()
    }
  }
}

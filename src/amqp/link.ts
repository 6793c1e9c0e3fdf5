/**
 * The RabbitMQ transport: joins a weave to the other weaves on a broker. It plugs into the core
 * through the `Remote` hook (`WeaveOptions.remote`); the core never imports it.
 *
 * @example
 * const link = await AmqpLink.connect({ url: 'amqp://guest:guest@127.0.0.1:5672' })
 * const weave = await Weave.open({ db: 'a.db', weaveId: 'a', remote: link })
 * await link.start(weave)
 * // ... threads on 'a' now reach threads on every weave of namespace 'raiment'
 * await link.close()
 * await weave.close()
 */
import { hostname } from 'node:os'
import type { ChannelModel } from 'amqplib'
import { InvalidArgument, WeaveClosed } from '../errors.js'
import { UnknownWeave, type NameLookup, type Placement, type PlacementUse, type Remote } from '../remote.js'
import type { Weave } from '../weave.js'
import { BrokerConnection } from './connection.js'
import { Inbound } from './inbound.js'
import { Membership, type Beat, type Seen } from './membership.js'
import { NameOwners } from './name-owners.js'
import { BATCH_ROWS, Relay } from './relay.js'
import { Ring } from './ring.js'
import { enroll } from './roster.js'
import { DEFAULT_NAMESPACE, Topology } from './topology.js'
import type { Journal } from '../journal.js'
import { Replicator, type ReplicatorOptions } from '../replication/replicator.js'
import { LEASE_HEARTBEAT_S, takeLease, WeaveIdInUse } from '../replication/lease.js'
import { queueCheck } from '../replication/streams.js'

export interface AmqpOptions {
  /** amqp://USER:PASSWORD@HOST:PORT */
  url: string
  /**
   * The AMQP heartbeat (s) this weave's connections ask of the broker (default: the URL's
   * `?heartbeat=`, else 2). A replicated weave's host sets it (src/replication/lease.ts).
   */
  amqpHeartbeatS?: number
  /** Prefix of every queue and exchange (default 'raiment'). */
  namespace?: string
  /** How often this weave announces itself (default 1000 ms). */
  heartbeatMs?: number
  /** Where state changes are logged, one line each (default stderr). */
  log?: (line: string) => void
  /**
   * At most this many consecutive outbound messages for one weave travel in one AMQP message
   * (default 250; each is still taken once, by its own id, in order). 1 sends each alone, which
   * is what weaves of Raiment versions before batching can read.
   */
  batch?: number
  /**
   * How the journal is replicated when the weave is opened with `replicate: true`: the epoch,
   * the checkpoint size, what to do on each connection first (the lease), the gate its
   * callbacks pass. See src/replication/.
   */
  replication?: Pick<ReplicatorOptions, 'epoch' | 'checkpointBytes' | 'checkpointRecords' | 'maxLagBytes' | 'onConnection' | 'gate' | 'fenced'>
  /** The lease and takeover hooks of a replicated weave (src/replication/host.ts); none without them. */
  lease?: LinkHooks
  /**
   * Whether the weave writes itself in the namespace's roster (`up` as it joins, `down` as it
   * closes: src/amqp/roster.ts); default true. False for a weave hosted by another process (a
   * takeover): its own process writes it.
   */
  roster?: boolean
}

/** What the lease and takeover ask of the link, so the link knows nothing of them. */
export interface LinkHooks {
  /** Fields added to every heartbeat of this weave (they override the link's own). */
  announce?(): Pick<Beat, 'journals' | 'hostedBy' | 'leased' | 'takeoverAfterMs' | 'declines' | 'streamGone'>
  /** Runs first on every new connection; false: nothing is consumed or published on it. */
  acquire?(conn: ChannelModel): Promise<boolean>
  /** A heartbeat arrived: this weave's own (`own`: it came back through the broker) or another's. */
  heard?(b: Beat, own: boolean): void
  /** The membership, once started (for the view's completeness). */
  members?(m: Membership): void
  /** A process starting weave `id` again asks the one that hosts it to hand it back. */
  reclaim?(id: string): void
  /** The journal's stream holds its first generation, and no thread of the weave has resumed yet. */
  replicated?(conn: ChannelModel): Promise<void>
}

/**
 * How long a weave waits for its id's lease held by another connection: a process just killed
 * frees it in ~50 ms; one whose host was lost (or froze) once the broker's heartbeat timeout has
 * passed, ~5.5 s at the 2 s heartbeat weaves ask for (`heartbeatOf`).
 */
const CLAIM_MS = 8_000

/**
 * The AMQP heartbeat (s) a weave's connections ask for: `amqpHeartbeatS`, else the URL's
 * `?heartbeat=`, else the lease's 2 s, so that a lost host frees its weave id within CLAIM_MS
 * (the broker's own default, 60 s, held it for minutes).
 */
function heartbeatOf(o: AmqpOptions): number | undefined {
  if (o.amqpHeartbeatS !== undefined) return o.amqpHeartbeatS
  try {
    if (new URL(o.url).searchParams.has('heartbeat')) return undefined
  } catch {
    // Not a URL: BrokerConnection.open says so.
  }
  return LEASE_HEARTBEAT_S
}

export class AmqpLink implements Remote {
  readonly topology: Topology
  readonly broker: BrokerConnection
  readonly #heartbeatMs: number
  readonly #batch: number
  readonly #log: (line: string) => void
  readonly #hooks: LinkHooks
  #weave: Weave | null = null
  #relay: Relay | null = null
  #inbound: Inbound | null = null
  #members: Membership | null = null
  #owners: NameOwners | null = null
  #ring: { key: string; ring: Ring } | null = null
  /** Weaves whose queue `joined` found (they have joined: a weave's queue outlives it). */
  readonly #queued = new Set<string>()
  #closed = false
  readonly #replication: AmqpOptions['replication']
  #replicator: Replicator | null = null
  readonly #roster: boolean
  /** The weave wrote `up` in the roster (once per link: it then writes `down` as it closes). */
  #enrolled = false

  private constructor(broker: BrokerConnection, o: AmqpOptions) {
    this.broker = broker
    if (o.lease?.acquire !== undefined) {
      // Fenced by its lease: its outcomes wait while the lease is not held on a live connection.
      broker.whileDown = {
        lost: 'its threads wait (their outcomes are held) until it has its lease again on a new connection; outbound messages wait in the outbox',
        // Not a recovery yet: a weave taken over meanwhile finds its lease held, and is fenced.
        restored: '; taking its lease again, unless another weave took this one over meanwhile: then RAIMENT_FENCED follows, and it exits 3',
      }
    }
    this.topology = new Topology(o.namespace ?? DEFAULT_NAMESPACE)
    this.#heartbeatMs = o.heartbeatMs ?? 1_000
    this.#batch = o.batch ?? BATCH_ROWS
    this.#log = o.log ?? ((l) => process.stderr.write(l + '\n'))
    this.#hooks = o.lease ?? {}
    this.#replication = o.replication
    this.#roster = o.roster ?? true
  }

  /** Replicates the weave's journal to its stream (see `Remote.replicate`). */
  async replicate(journal: Journal, o: { hold: boolean }): Promise<void> {
    this.broker.label = `weave '${journal.weaveId}': `
    this.#replicator = await Replicator.start({ journal, broker: this.broker, namespace: this.topology.ns, hold: o.hold, log: this.#log, ...this.#replication })
    const conn = this.broker.connection
    if (conn !== null) await this.#hooks.replicated?.(conn)
  }

  /** The journal's replicator, when the weave was opened with `replicate: true`. */
  get replicator(): Replicator | null {
    return this.#replicator
  }

  /**
   * Connects to the broker; a weave opened with this link as `remote` queues its outbound
   * messages until `start`.
   * @throws BrokerUnreachable, BrokerLoginRefused, InvalidBrokerUrl: at once, no retry
   * @throws InvalidArgument for a `batch` that is not a whole number from 1 up
   */
  static async connect(o: AmqpOptions): Promise<AmqpLink> {
    if (o.batch !== undefined && !(Number.isInteger(o.batch) && o.batch >= 1)) {
      throw new InvalidArgument(`batch must be a whole number from 1 up (1 sends each message alone), got ${String(o.batch)}`)
    }
    const log = o.log ?? ((l: string) => process.stderr.write(l + '\n'))
    return new AmqpLink(await BrokerConnection.open(o.url, log, heartbeatOf(o)), o)
  }

  /**
   * Claims weave id `weaveId` on the broker, before the weave resumes anything: its lease (an
   * exclusive queue, src/replication/lease.ts), held by this connection until it closes. Another
   * process that runs the id holds it: a copy of the journal started under it, the same id given
   * to another journal, a weave that took it over. A replicated weave's host takes the lease itself.
   * Without a connection now, the claim is made when one comes (`#attach`).
   * @throws WeaveIdInUse when another connection still holds it after CLAIM_MS (a process just
   *   killed frees it within ~50 ms)
   */
  async claim(weaveId: string): Promise<void> {
    if (this.#hooks.acquire !== undefined) return
    const conn = this.broker.connection
    if (conn === null) return
    const since = Date.now()
    for (;;) {
      try {
        if (await takeLease(conn, this.topology.ns, weaveId)) return
      } catch {
        // The connection went: the next one claims the id before anything is taken or sent on it (`#attach`).
        return
      }
      if (Date.now() - since >= CLAIM_MS) throw new WeaveIdInUse(this.topology.ns, weaveId, Date.now() - since)
      await new Promise((r) => setTimeout(r, 100))
    }
  }

  /** Declares this weave's queue, then relays its outbox, consumes its queue and announces it. */
  async start(weave: Weave): Promise<void> {
    this.#weave = weave
    this.broker.label = `weave '${weave.journal.weaveId}': `
    // The journal's weave talks to other weaves: what `raiment send` puts in it for another
    // weave's thread, with no weave running, waits for a relay (src/cli/messages.ts).
    if (weave.journal.meta('amqp') === undefined) weave.journal.queueMeta('amqp', this.topology.ns)
    this.#relay = new Relay(weave.journal, this.topology, this.#log, this.#batch, {
      sent: (id) => weave.sentMove(id),
      refusedMove: (m, why, gone) => weave.refusedMove(m, why, gone ? new UnknownWeave(m.dest, this.live().map((b) => b.id), 'migrate') : undefined),
      refused: (row, why) => weave.refusedSend(row, why),
    })
    this.#inbound = new Inbound(weave, this.topology, this.#log)
    const owners = (this.#owners = new NameOwners(weave.journal))
    const hooks = this.#hooks
    this.#members = new Membership(
      this.topology,
      () => {
        const moved = weave.messages.nameSends.moved()
        return {
          id: weave.journal.weaveId,
          host: hostname(),
          pid: process.pid,
          threads: weave.running,
          passivated: weave.passivated,
          // The leaving beat of a link closed after its weave: the journal is closed, nothing to count.
          outbox: weave.journal.closed ? 0 : (this.#relay?.pending() ?? 0),
          names: weave.messages.names(),
          types: weave.types,
          ...(moved !== undefined ? { moved } : {}),
          ...replicationBeat(this.#replicator),
          ...hooks.announce?.(),
          at: Date.now(),
          intervalMs: this.#heartbeatMs,
        }
      },
      this.#heartbeatMs,
      {
        // Messages waiting for a name go as soon as it can be placed; names that moved from here
        // are announced until their new weave announces them.
        beat: (b) => {
          owners.heard(b)
          weave.messages.nameSends.claimed(b.names)
          weave.messages.retryNames()
          hooks.heard?.(b, false)
        },
        own: (b) => hooks.heard?.(b, true),
        complete: () => weave.messages.retryNames(),
        reclaim: (id) => hooks.reclaim?.(id),
      },
    )
    hooks.members?.(this.#members)
    // Names whose weave the journal knows need no broker to be placed.
    weave.messages.retryNames()
    this.broker.on('up', (conn) => void this.#attach(conn))
    this.broker.on('down', () => {
      this.#relay?.detach()
      this.#inbound?.detach()
    })
    const conn = this.broker.connection
    if (conn !== null) await this.#attach(conn)
  }

  async #attach(conn: ChannelModel): Promise<void> {
    try {
      if (this.#hooks.acquire !== undefined ? !(await this.#hooks.acquire(conn)) : !(await this.#claimed(conn))) return
      // The queue first: a weave that is up can always be sent to.
      await this.#inbound!.attach(conn)
      await this.#relay!.attach(conn)
      await this.#members!.attach(conn)
      if (this.#roster && !this.#enrolled) await this.#enroll(conn)
    } catch (e) {
      // The connection went while setting up: the next 'up' does it again.
      if (this.broker.connection === conn && !this.#closed) this.#log(`raiment: broker setup failed (${(e as Error).message}); retrying with the next connection`)
    }
  }

  /** Writes `up` in the namespace's roster; a broker that cannot (no streams: RabbitMQ before 3.9) only costs the listing. */
  async #enroll(conn: ChannelModel): Promise<void> {
    const w = this.#weave!
    try {
      await enroll(conn, this.topology.ns, w.journal.weaveId, 'up', { host: hostname(), pid: process.pid, db: w.journal.path })
      this.#enrolled = true
    } catch (e) {
      if (this.broker.connection !== conn || this.#closed) throw e
      this.#enrolled = true
      this.#log(`raiment: cannot write this weave in the roster of namespace '${this.topology.ns}' (${(e as Error).message}); 'raiment weaves' will not list it once it stops`)
    }
  }

  /**
   * This weave's id is its own again on a new connection (`claim`). Its lease may still be held
   * by its own connection that went (until the broker notices: up to its heartbeat timeout), or
   * by another process that claimed the id meanwhile: it is asked again every second while this
   * connection lasts, and the weave takes and sends nothing on the broker until it has it.
   */
  async #claimed(conn: ChannelModel): Promise<boolean> {
    const id = this.#weave!.journal.weaveId
    let said = false
    while (this.broker.connection === conn && !this.#closed) {
      if (await takeLease(conn, this.topology.ns, id)) {
        if (said) this.#log(`raiment: weave id '${id}' is this weave's again on the broker: it takes and sends messages`)
        return true
      }
      if (!said) {
        said = true
        this.#log(
          `raiment: ${new WeaveIdInUse(this.topology.ns, id, 0).code}: the lease of weave id '${id}' is held by another connection: this weave's own, lost, until the broker notices it is gone, or another process that claimed the id meanwhile ('raiment weaves' shows it); this weave takes and sends no messages until it has it again (asked every second)`,
        )
      }
      await new Promise((r) => setTimeout(r, 1_000))
    }
    return false
  }

  wake(): void {
    this.#relay?.wake()
  }

  /** Where a name of another weave is registered (the rule is in src/amqp/name-owners.ts). */
  resolveName(name: string): NameLookup {
    return this.#owners === null ? 'unknown' : this.#owners.resolve(name, this.#members)
  }

  namesChanged(): void {
    this.#members?.beat()
  }

  /** The live weaves (this one included). */
  live(): Seen[] {
    return this.#members?.live() ?? []
  }

  isLive(id: string): boolean {
    return id === this.#weave?.journal.weaveId || this.live().some((b) => b.id === id)
  }

  /** Outbox rows not yet confirmed by the broker, and messages waiting for their name's weave. */
  pending(): number {
    return this.#relay?.pending() ?? 0
  }

  /**
   * Resolves once every outbound message and spawn committed so far is confirmed by the broker
   * (messages waiting for their name's weave included).
   */
  outboxEmpty(): Promise<void> {
    return this.#relay?.empty() ?? Promise.resolve()
  }

  async place(on: Placement, use: PlacementUse = 'spawn'): Promise<string> {
    const self = this.#weave!.journal.weaveId
    if (on === 'local') return self
    const live = this.live()
    if (on === 'any') {
      // The fewest threads of its own, passivated ones included: a thread stays on the weave that
      // runs it, and one passivated comes back into memory there when what it waits for comes
      // (docs/many-weaves.md, Placement). Ties: the fewest in memory, then the first id.
      let best = live[0]
      for (const b of live) if (best === undefined || fewerThreads(b, best)) best = b
      return best?.id ?? self
    }
    if (typeof on === 'object') {
      const ids = live.map((b) => b.id)
      const key = ids.join('\n')
      if (this.#ring?.key !== key) this.#ring = { key, ring: new Ring(ids) }
      return this.#ring.ring.owner(on.key) ?? self
    }
    if (on === self || live.some((b) => b.id === on) || this.#members?.heard(on)) return on
    // Not heard from lately: it has joined if its queue exists (it may be restarting).
    if (await this.#queueExists(on)) return on
    throw new UnknownWeave(on, live.map((b) => b.id), use)
  }

  async joined(id: string): Promise<boolean | null> {
    if (id === this.#weave?.journal.weaveId || this.#members?.heard(id) === true || this.#queued.has(id)) return true
    const conn = this.broker.connection
    if (conn === null || this.#closed) return null
    const r = await queueCheck(conn, this.topology.queue(id))
    if (r !== true) return r.code === 404 ? false : null // (anything but not found, the connection going or another refusal, tells nothing)
    this.#queued.add(id)
    return true
  }

  /**
   * Whether weave `id`'s queue exists. With the broker out of reach it waits for it (a weave
   * restarting during an outage has joined all the same): only the broker's "not found" is a no.
   * @throws WeaveClosed when this link closes meanwhile
   */
  async #queueExists(id: string): Promise<boolean> {
    for (;;) {
      if (this.#closed) throw new WeaveClosed()
      const conn = this.broker.connection
      if (conn === null) {
        await new Promise<void>((res) => {
          const up = (): void => {
            clearInterval(closed)
            this.broker.off('up', up)
            res()
          }
          // A close emits nothing here: look now and then.
          const closed = setInterval(() => this.#closed && up(), 200)
          this.broker.once('up', up)
        })
        continue
      }
      const r = await queueCheck(conn, this.topology.queue(id))
      if (r === true) return true
      // Not found: no. Another refusal of the broker's: say it. The connection going is no
      // answer: ask again on the next.
      if (r.code === 404) return false
      if (typeof r.code === 'number') throw r
      if (this.broker.connection === conn) await new Promise((res) => setTimeout(res, 100))
    }
  }

  /**
   * Stops consuming and announcing, says goodbye, closes the connection. Outbox rows stay. With
   * `retire` false (a weave whose `start --weaves` died under it) it says no goodbye and writes
   * no `down` in the roster: it goes as if killed, listed silent (and, replicated, taken over).
   */
  async close(o: { retire?: boolean } = {}): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    const retire = o.retire ?? true
    this.#inbound?.close()
    this.#relay?.detach()
    await this.#members?.leave(retire)
    // Stopped on purpose: `raiment weaves` says so, not that it went silent.
    const conn = this.broker.connection
    if (retire && this.#enrolled && conn !== null) await enroll(conn, this.topology.ns, this.#weave!.journal.weaveId, 'down').catch(() => {})
    await this.#replicator?.close()
    await this.broker.close()
  }
}

/** What a heartbeat says of the journal's replication (`raiment weaves` shows it). */
function replicationBeat(r: Replicator | null): Pick<Beat, 'replication' | 'journals'> {
  if (r === null) return {}
  return { replication: { epoch: r.epoch, generation: r.generation, lag: r.lag(), streamBytes: r.streamBytes() }, journals: [r.weaveId] }
}

/** Whether live weave `a` is home to fewer threads than `b` (for `on: 'any'`). */
function fewerThreads(a: Beat, b: Beat): boolean {
  const ta = a.threads + (a.passivated ?? 0)
  const tb = b.threads + (b.passivated ?? 0)
  return ta < tb || (ta === tb && a.threads < b.threads)
}

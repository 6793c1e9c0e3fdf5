/**
 * A process that runs replicated weaves: its own, and those it took over (hosted).
 *
 * Each replicated weave here has its own AmqpLink (its own connection: the one holding its
 * lease and writing its journal stream), its own Fencing and its own Replicator. The process's
 * own weave watches the heartbeats (src/replication/takeover.ts) and, when it is the candidate for
 * a silent weave, takes it over: its lease on a new connection, its journal rebuilt from its
 * stream beside this weave's own (`<dir>/<id>.taken.db`), then a second Weave on it, replicating
 * with the epoch after the stream's (the Replicator's first generation record, confirmed before
 * any of its threads runs, says so: a weave of an older epoch that gets the lease back later
 * finds it and stops). The lost weave's queue, names, timers, supervisors, links, monitors and
 * joins all go on, as it is the same weave id with the same journal.
 *
 * A weave fenced here (src/replication/fencing.ts) releases and publishes nothing more: the own
 * weave's fencing ends the process (`fenced`: exit 3); a hosted one's is dropped.
 */
import { dirname, join } from 'node:path'
import type { ChannelModel } from 'amqplib'
import { BrokerLost, isClosedUnder } from '../amqp/connection.js'
import { AmqpLink } from '../amqp/link.js'
import { askHandBack } from '../amqp/membership.js'
import { DEFAULT_NAMESPACE } from '../amqp/topology.js'
import { crashArmed, crashPoint } from '../crash-points.js'
import { Weave, type WeaveOptions } from '../weave.js'
import { Fenced, TakeoverLacksTypes } from './errors.js'
import { Fencing } from './fencing.js'
import { LEASE_HEARTBEAT_S, LeaseHeld, takeLease } from './lease.js'
import { clearRebuild, freeName, journalDurability, journalEpoch, lockJournal, missingTypes, refuseOwned, removeJournal, swapInRebuilt, weaveIdOf } from './host-files.js'
import { rebuildJournal } from './rebuild.js'
import { register, registeredUp } from './registry.js'
import type { ReplicatorOptions } from './replicator.js'
import { readHead } from './streams.js'
import { DEFAULT_TAKEOVER_AFTER_MS, Takeovers } from './takeover.js'

export interface HostOptions {
  url: string
  namespace?: string
  /** The own weave: its journal file and the rest of its options (`remote` and `replicate` are set here). */
  weave: Omit<WeaveOptions, 'remote' | 'replicate'> & { db: string }
  heartbeatMs?: number
  takeoverAfterMs?: number
  log: (line: string) => void
  /** The own weave is fenced: stop everything, recording nothing (the CLI exits 3). */
  fenced: (err: Fenced) => void
  /** A weave is open here (the own one, or one taken over), before it takes messages from the broker. */
  opened?: (weave: Weave, own: boolean) => void
  /** A weave was taken over and runs here now. */
  tookOver?: (id: string, info: TakeoverInfo) => void
  /** A weave taken over here was handed back to a process that started it again. */
  handedBack?: (id: string) => void
  /**
   * How long the own weave, its lease held as it starts, waits for the process that took it
   * over to hand it back (ms; default 15,000; 0: it does not ask, and is refused at once).
   */
  reclaimMs?: number
}

export interface TakeoverInfo {
  epoch: number
  /** Journal entries rebuilt from the stream. */
  entries: number
  rebuildMs: number
  /** From the decision to take it over to its threads running here (ms). */
  totalMs: number
}

/** How long a weave handed back waits at most for its stream to confirm what it wrote (ms). */
const HAND_BACK_FLUSH_MS = 8_000
/** How long a weave handed back lets its calls in flight finish (ms): with the flush, within the 15 s the starting weave waits for its lease. */
const HAND_BACK_STOP_WAIT_MS = 5_000
/** How long a host closing waits at most for each weave's stream to confirm what it wrote (ms), as a replicator's close does. */
const CLOSE_FLUSH_MS = 2_000
/** How long a weave starting again waits for the one that took it over to hand it back (ms): longer than that. */
const RECLAIM_MS = 15_000

interface RunOptions {
  db: string
  weaveId: string
  own: boolean
  /** For a takeover: runs under the lease, before the journal is opened; returns the epoch to write. */
  prepare?: (conn: ChannelModel) => Promise<number>
}

interface Running {
  weave: Weave
  link: AmqpLink
  fencing: Fencing
}

export class ReplicatedHost {
  readonly #o: HostOptions
  readonly ns: string
  readonly takeoverAfterMs: number
  #own: Running | null = null
  readonly #hosted = new Map<string, Running>()
  readonly #takeovers: Takeovers
  /** Hand-backs under way (a close waits for them). */
  readonly #handingBack = new Set<Promise<void>>()
  #closed = false

  private constructor(o: HostOptions) {
    this.#o = o
    this.ns = o.namespace ?? DEFAULT_NAMESPACE
    this.takeoverAfterMs = o.takeoverAfterMs ?? DEFAULT_TAKEOVER_AFTER_MS
    this.#takeovers = new Takeovers({
      takeoverAfterMs: this.takeoverAfterMs,
      takeOver: (id) => this.#takeOver(id),
      hosted: () => new Set(this.#hosted.keys()),
      types: () => this.#own?.weave.types ?? [],
      log: o.log,
    })
  }

  /**
   * Opens the own weave and starts watching for weaves to take over. Its lease first: if another
   * process holds it, having taken the weave over, that one is asked to hand it back
   * (`reclaimMs`); a journal whose stream was taken over since it was written is rebuilt from
   * the stream (the file set aside as `<db>.epoch-N`).
   * @throws LeaseHeld when another connection holds this weave's lease and does not hand it back (it runs the weave on its own)
   * @throws JournalOwned when the journal, to be rebuilt, is open in another process
   * @example
   * const host = await ReplicatedHost.start({ url, weave: { db: 'a.db', weaveId: 'a', durability: 'replicated' }, log: console.error, fenced: () => process.exit(3) })
   */
  static async start(o: HostOptions): Promise<ReplicatedHost> {
    const host = new ReplicatedHost(o)
    const weaveId = weaveIdOf(o.weave.db, o.weave.weaveId)
    try {
      await host.#run({ db: o.weave.db, weaveId, own: true })
    } catch (e) {
      // Nothing of a host that did not start goes on (its watch of the heartbeats included).
      host.stopTakeovers()
      throw e
    }
    return host
  }

  /** The own weave. */
  get weave(): Weave {
    return this.#own!.weave
  }

  get link(): AmqpLink {
    return this.#own!.link
  }

  /** The weaves this process hosts besides its own, by id. */
  get hosted(): ReadonlyMap<string, Weave> {
    return new Map([...this.#hosted].map(([id, r]) => [id, r.weave]))
  }

  /**
   * Opens one replicated weave with its link, lease and fencing. The lease is taken on the
   * link's connection first, before the journal is opened or rebuilt, and stays there.
   * Null: the lease of a weave to take over was held by another.
   */
  async #run(o: RunOptions): Promise<Running | null> {
    const ns = this.ns
    const takeovers = this.#takeovers
    let fencing: Fencing | null = null
    // Read by the link when the weave opens (after `prepare` has set the epoch of a takeover).
    const replication: Pick<ReplicatorOptions, 'epoch' | 'onConnection' | 'gate' | 'fenced'> = {
      onConnection: async (conn) => {
        if (fencing !== null && !(await fencing.acquire(conn)) && fencing.fenced !== null) throw fencing.fenced
      },
      gate: (run) => (fencing === null ? run() : fencing.release(run)),
      // Its stream moved past it (found by the replicator as it starts a generation): stopped as a fence.
      fenced: (why) => fencing?.fence(why),
    }
    const link = await AmqpLink.connect({
      url: this.#o.url,
      amqpHeartbeatS: LEASE_HEARTBEAT_S,
      namespace: ns,
      ...(this.#o.heartbeatMs !== undefined ? { heartbeatMs: this.#o.heartbeatMs } : {}),
      log: this.#o.log,
      replication,
      // A weave taken over is not written in the roster by the process hosting it: its own `up`
      // stays there (it is hosted, so live; once its host stops, it is silent again).
      roster: o.own,
      lease: {
        announce: () => ({ ...(o.own ? { journals: [o.weaveId, ...this.#hosted.keys()], ...takeovers.declines(), ...takeovers.streamGone() } : { hostedBy: this.#own?.weave.journal.weaveId ?? '' }), leased: true, takeoverAfterMs: this.takeoverAfterMs }),
        acquire: (conn) => (fencing === null ? Promise.resolve(true) : fencing.acquire(conn)),
        heard: (b, own) => {
          if (own) fencing?.echo(b.at)
          else if (o.own) takeovers.heard(b)
        },
        members: (m) => {
          if (o.own) takeovers.start(m)
        },
        // Written before any thread resumes (not only once the weave runs): a weave lost while its
        // threads run is in the registry, for a weave that never heard it to take over.
        ...(o.own ? { replicated: (conn: ChannelModel) => this.#registerUp(conn, o.weaveId) } : {}),
        reclaim: (id) => {
          if (!o.own) return
          const p = this.#handBack(id)
          this.#handingBack.add(p)
          void p.finally(() => this.#handingBack.delete(p))
        },
      },
    })
    // Set once the weave is open: a failure after that closes it (below), or it would hold the
    // journal's owner lock, its timers and its threads in this process with no one to close it.
    let weave: Weave | null = null
    try {
      const conn = link.broker.connection
      if (conn === null || !((await takeLease(conn, ns, o.weaveId)) || (o.own && (await this.#reclaimLease(conn, link, o.db, o.weaveId))))) {
        if (o.own) throw new LeaseHeld(ns, o.weaveId, conn === null ? 0 : Math.max(0, this.#o.reclaimMs ?? RECLAIM_MS))
        await link.close()
        return null
      }
      const self = o.own && o.prepare === undefined ? await this.#ownEpoch(conn, o.db, o.weaveId) : null
      const epoch = o.prepare !== undefined ? await o.prepare(conn) : self !== null ? self.epoch : journalEpoch(o.db)
      // Taken over (by another, or by itself from its stream), or started at a new epoch over a
      // stream that exists: a lost connection before its first generation is confirmed gives it
      // up (see Fencing's `takenOn`): another start may have picked the same epoch meanwhile.
      const taken = !o.own || self?.taken === true
      replication.epoch = epoch
      const id = o.weaveId
      fencing = new Fencing({
        ns,
        weaveId: id,
        epoch,
        takeoverAfterMs: this.takeoverAfterMs,
        streamEpoch: async (c) => (await readHead(c, ns, id))?.epoch ?? 0,
        fenced: (err) => {
          link.replicator?.fence(err)
          if (o.own) this.#o.fenced(err)
          else this.#dropHosted(id, err)
        },
        log: this.#o.log,
        ...(taken ? { takenOn: conn } : {}),
      })
      // A weave taken over keeps the durability it ran with, not the host's: a 'replicated' one
      // hosted by a 'sync' weave must not release what the stream has not confirmed.
      const durability = o.own ? undefined : journalDurability(o.db)
      // Opening replicates the journal (its first generation confirmed) before any thread resumes.
      weave = await Weave.open({ ...this.#o.weave, ...(durability !== undefined ? { durability } : {}), db: o.db, weaveId: id, remote: link, replicate: true })
      fencing.opened()
      const running = { weave, link, fencing }
      // The host closed while the takeover ran, or it was fenced meanwhile: nothing of it is left running here.
      if (!o.own && (this.#closed || fencing.fenced !== null)) return await abandon(running)
      if (o.own) {
        this.#own = running
        takeovers.setSelf(id)
      }
      this.#o.opened?.(weave, o.own)
      await link.start(weave)
      if (!o.own) {
        // Hosted once started (a hand-back, or the host's close, finds it whole), unless the
        // host closed or it was fenced meanwhile.
        if (this.#closed || fencing.fenced !== null) return await abandon(running)
        this.#hosted.set(id, running)
      }
      if (o.own && crashArmed) crashPoint('replicated-started')
      if (o.own) await this.#register(link, id)
      return running
    } catch (e) {
      fencing?.close()
      if (weave !== null && this.#own?.weave === weave) this.#own = null
      await link.close()
      // Opened, then failed (its start on the broker, the `opened` listener): it runs nowhere,
      // closed as one fenced is (`abandon`, whose close, if it came first, makes this one nothing).
      if (weave !== null) await weave.close({ wait: 0 }).catch(() => {})
      // The connection closed under the start, before the weave opened (asking for the lease
      // back, reading the stream): a clear line, not a bug's.
      if (o.own && weave === null && isClosedUnder(e)) throw new BrokerLost(this.#o.url, `weave ${o.weaveId} started`, e)
      throw e
    }
  }

  /** Takes weave `id` over (see the top of this file). False: its lease is held by another. */
  async #takeOver(id: string): Promise<boolean> {
    if (this.#closed || this.#own === null) return false
    const began = performance.now()
    const own = this.#own.weave
    const file = join(dirname(own.journal.file), `${id}.taken.db`)
    let info = { epoch: 0, entries: 0, rebuildMs: 0 }
    const running = await this.#run({
      db: file,
      weaveId: id,
      own: false,
      // Under the lease, held on the hosted weave's own connection from here on.
      prepare: async (conn) => {
        this.#o.log(`raiment: weave ${id} stopped heartbeating over ${(this.takeoverAfterMs / 1000).toFixed(1)} s ago; taking it over (rebuilding its journal from its stream)`)
        // Left by an attempt of this process that did not finish (or an earlier hosting of it),
        // with its WAL and lock beside it: none of it may meet the new file.
        removeJournal(file)
        const rebuilt = await rebuildJournal({ url: this.#o.url, namespace: this.ns, weaveId: id, file, conn, log: () => {} })
        crashPoint('takeover-rebuilt')
        // Threads of a type not run here would end failed, for good: the lease goes back (this
        // throws; the link closes), and the takeover waits for a weave that runs them all.
        const missing = missingTypes(file, own.types)
        if (missing.length > 0) {
          removeJournal(file)
          throw new TakeoverLacksTypes(id, missing)
        }
        info = { epoch: rebuilt.epoch + 1, entries: rebuilt.entries, rebuildMs: Math.round(rebuilt.ms) }
        return rebuilt.epoch + 1
      },
    })
    if (running === null) return false
    const totalMs = Math.round(performance.now() - began)
    this.#o.log(`raiment: took over weave ${id} at epoch ${info.epoch}: ${info.entries} entries rebuilt in ${info.rebuildMs} ms; its threads run here (${totalMs} ms in all)`)
    this.#o.tookOver?.(id, { ...info, totalMs })
    return true
  }

  /**
   * The lease of the own weave is held as it starts: if another process hosts it (took it over
   * while this weave was down), asks that one to hand it back (again each second, should the
   * ask come while it is still taking it over), and waits for the lease. False: not released in
   * time (another process runs this weave: it hands nothing back).
   */
  async #reclaimLease(conn: ChannelModel, link: AmqpLink, db: string, id: string): Promise<boolean> {
    const wait = this.#o.reclaimMs ?? RECLAIM_MS
    if (wait <= 0) return false
    // Before the host gives it up: this journal may be one it cannot use.
    refuseOwned(db)
    this.#o.log(`raiment: the lease of weave ${id} is held by another process (a weave that took it over, or one that runs it); asking for it back`)
    const until = Date.now() + wait
    let asked = 0
    while (Date.now() < until && !this.#closed) {
      if (Date.now() - asked >= 1_000) {
        await askHandBack(conn, link.topology, id)
        asked = Date.now()
      }
      await new Promise((r) => setTimeout(r, 100))
      if (await takeLease(conn, this.ns, id)) return true
    }
    return false
  }

  /**
   * The epoch the own weave writes, under its lease. A new journal (no stream yet): its own, 1.
   * Else always a new one (`taken`), written by its first generation before any thread resumes:
   * the one after its journal's, or, when its stream was taken over since (a higher epoch there:
   * this file's threads ran on elsewhere, and what only this file holds was never released), the
   * one after the stream's, its journal rebuilt from the stream and the file set aside beside it:
   * a takeover of itself (`rebuilt`). A new epoch at each start: a file restored from the stream
   * (`raiment restore`) and started while the weave that wrote it is frozen, or cut off, writes
   * above that weave's epoch, so that one is fenced when it runs again (its epoch no longer the
   * stream's), rather than going on under the same epoch as the journal's new owner.
   */
  async #ownEpoch(conn: ChannelModel, db: string, id: string): Promise<{ epoch: number; rebuilt: boolean; taken: boolean }> {
    const mine = journalEpoch(db)
    const head = await readHead(conn, this.ns, id)
    if (head === null) return { epoch: mine, rebuilt: false, taken: false }
    if (head.epoch <= mine) return { epoch: mine + 1, rebuilt: false, taken: true }
    // Its owner lock, until the rebuilt file is in place: no weave starts on the file replaced.
    const lock = lockJournal(db)
    const aside = freeName(`${db}.epoch-${mine}`)
    let rebuilt
    try {
      this.#o.log(`raiment: weave ${id} was taken over (its stream is at epoch ${head.epoch}, ${db} at ${mine}); rebuilding ${db} from its stream (the old file is kept as ${aside})`)
      // Rebuilt beside it first: a rebuild that fails leaves the file where it was. Then the old
      // one, made one file (its WAL checkpointed into it), is copied aside, and the rebuilt
      // one replaces it in one rename: a crash at any point leaves `db` whole (old or new).
      const fresh = `${db}.rebuilding`
      clearRebuild(fresh)
      rebuilt = await rebuildJournal({ url: this.#o.url, namespace: this.ns, weaveId: id, file: fresh, conn, log: () => {} })
      swapInRebuilt(db, fresh, aside)
    } finally {
      lock.release()
    }
    this.#o.log(`raiment: rebuilt ${db} from the stream of weave ${id}: ${rebuilt.entries} entries in ${Math.round(rebuilt.ms)} ms; its threads run here again at epoch ${rebuilt.epoch + 1}`)
    return { epoch: rebuilt.epoch + 1, rebuilt: true, taken: true }
  }

  /**
   * Another process starts weave `id` again, which this one hosts: stops it here, as a close of
   * this process would (its threads stop; what they did is in its stream), letting go of its
   * lease, which that process then takes. Were that one to die before it runs `id`, `id` falls
   * silent and is taken over again.
   */
  async #handBack(id: string): Promise<void> {
    const r = this.#hosted.get(id)
    if (r === undefined || this.#closed) return
    this.#hosted.delete(id)
    this.#o.log(`raiment: weave ${id} is starting again in another process; handing it back`)
    const inTime = await stopFlushed(r, HAND_BACK_FLUSH_MS, HAND_BACK_STOP_WAIT_MS)
    const file = r.weave.journal.file
    if (!inTime) {
      this.#o.log(
        `raiment: RAIMENT_HAND_BACK_LAG: weave ${id}: its stream did not confirm all it wrote within ${HAND_BACK_FLUSH_MS / 1000} s; handing it back anyway: ` +
          `the calls whose outcomes the stream lacks run again there, with the same call ids (as after a host loss under sync); its copy here is kept, ${file}`,
      )
    } else {
      // Its copy here is stale from now on. Deleted while the lease is still held here, so no
      // takeover of it by this process can have written a new one yet.
      try {
        removeJournal(file)
      } catch (e) {
        this.#o.log(`raiment: weave ${id} was handed back; its copy ${file} could not be deleted (${(e as Error).message})`)
      }
    }
    r.fencing.close()
    await r.link.close().catch(() => {})
    this.#o.handedBack?.(id)
  }

  /**
   * Says in the registry that this weave runs (with its thread types once it knows them: `types`),
   * so that a weave that never heard it takes it over should it be lost.
   */
  async #registerUp(conn: ChannelModel, id: string, types?: string[]): Promise<void> {
    try {
      await register(conn, this.ns, id, 'up', { afterMs: this.takeoverAfterMs, ...(types !== undefined ? { types } : {}) })
    } catch (e) {
      this.#o.log(`raiment: cannot write this weave's record in the registry of replicated weaves (${(e as Error).message}); lost before another weave hears it, it is not taken over`)
    }
  }

  /** Says in the registry that this weave runs, now with its thread types, and learns which others should be running. */
  async #register(link: AmqpLink, id: string): Promise<void> {
    const conn = link.broker.connection
    if (conn === null) return
    await this.#registerUp(conn, id, this.#own?.weave.types ?? [])
    try {
      const up = await registeredUp(conn, this.ns)
      up.delete(id)
      this.#takeovers.registered(up)
    } catch (e) {
      this.#o.log(`raiment: cannot read the registry of replicated weaves (${(e as Error).message}); only weaves heard from will be taken over`)
    }
  }

  #dropHosted(id: string, err: Fenced): void {
    const r = this.#hosted.get(id)
    this.#hosted.delete(id)
    this.#o.log(`raiment: ${err.code}: ${err.message}`)
    if (r === undefined) return
    // Its threads stop here (they released nothing since the fence): its file and lock are let go.
    r.fencing.close()
    void (async () => {
      await r.link.close().catch(() => {})
      await r.weave.close({ wait: 0 }).catch(() => {})
    })()
  }

  /** Takes no weave over from now on (a stop: before its weaves' calls in flight finish). */
  stopTakeovers(): void {
    this.#closed = true
    this.#takeovers.stop()
  }

  /**
   * Closes every weave here (hosted ones included): their threads resume where they are taken over or started again.
   * With `retire` false the own weave says no `down` (nor goodbye): flushed, it is taken over once silent, as if killed.
   */
  async close(o: { retire?: boolean } = {}): Promise<void> {
    const retire = o.retire ?? true
    this.stopTakeovers()
    await Promise.all(this.#handingBack)
    // Stopped on purpose: not to be taken over. (Hosted weaves are, once silent.)
    const conn = this.#own?.link.broker.connection
    if (retire && conn && this.#own?.fencing.fenced === null) await register(conn, this.ns, this.#own.weave.journal.weaveId, 'down').catch(() => {})
    for (const r of [...this.#hosted.values(), ...(this.#own ? [this.#own] : [])]) {
      // As a hand-back: under `sync` a batch committed after the stream closed would be released
      // to its threads and never reach the stream, so a weave taking this one over later would
      // make its calls again.
      await stopFlushed(r, CLOSE_FLUSH_MS)
      r.fencing.close()
      await r.link.close({ retire })
    }
  }
}

/**
 * Stops `r`'s threads (their calls in flight may finish, up to `stopWait`), then waits up to `ms` for its stream to confirm their last batch (under
 * `sync` too: not left as a lag); the lease goes later, with the link. False: not in time.
 */
async function stopFlushed(r: Running, ms: number, stopWait?: number): Promise<boolean> {
  await r.weave.close({ wait: stopWait }).catch(() => {})
  const flushed = (r.link.replicator?.flushed() ?? Promise.resolve()).then(() => true)
  let timer: NodeJS.Timeout | undefined
  const inTime = await Promise.race([flushed, new Promise<boolean>((res) => (timer = setTimeout(() => res(false), ms)))])
  clearTimeout(timer)
  return inTime
}

/** Stops a weave of this process that must not run here after all (closed, or fenced); throws its fence. */
async function abandon(r: Running): Promise<null> {
  r.fencing.close()
  await r.link.close()
  await r.weave.close({ wait: 0 }).catch(() => {})
  if (r.fencing.fenced !== null) throw r.fencing.fenced
  return null
}

/**
 * The commands that run a weave or talk to one: `start`, `kill` (and `spawn`, src/cli/spawn.ts).
 *
 * Another process talks to a running weave only through the journal file: `spawn` inserts a
 * thread as 'pending' (the weave notices the commit within its poll interval and adopts it), and
 * `kill` inserts a control row that the weave answers in the same table.
 */
import { existsSync } from 'node:fs'
import { RaimentError, ThreadMoved, UnknownThread } from '../errors.js'
import type { Durability } from '../journal.js'
import { Weave, type ThreadEnd, type WeaveOptions } from '../weave.js'
import { weaveOfThread, type Remote } from '../remote.js'
import type { BrokerOptions } from './amqp-commands.js'
import { logReloads, reloadTriggers } from './reload.js'
import { redact } from '../amqp/connection.js'
import { parseSecretOptions } from '../secrets/rules.js'
import {
  CHILD_OF_WEAVES,
  complain,
  displayPath,
  errorLine,
  errorText,
  logValue,
  movedTo,
  note,
  openExisting,
  redactUrls,
  refuseEmpty,
  say,
  toText,
  undoFreshJournal,
  withOwner,
  type DbOptions,
  type ProjectOptions,
} from './common.js'
import { askTimeout, askWeave, busyHint, CONTROL_TIMEOUT_MS, waitText, type AskOptions } from './ask-weave.js'
import { trackResume } from './progress.js'
import { parsePassivateAfter } from '../passivation/options.js'
import { parseDuration } from '../durations.js'
import { parseBytes } from '../message-size.js'
import { STOP_WAIT_MS } from '../weave-stop.js'
import { endedOffline } from '../successions.js'
import { logOpened, logResumed, logStopWait, logWeave, weaveLog, type LogFormat } from './weave-log.js'
import { flushOtel } from './telemetry-flush.js'

export interface StartOptions extends ProjectOptions, BrokerOptions {
  /** Reload changed thread files as they change. */
  watch?: boolean
  durability: Durability
  dumps?: string
  onDivergence: 'fail' | 'continue' | 'wait'
  /** `--secret LIB.KIND=VALUE`, repeated. */
  secret?: string[]
  logFormat?: LogFormat
  /** `--passivate-after`: a duration, or `never`. */
  passivateAfter?: string
  /** `--module-schedules-on`: the weave that brings in the schedules thread modules declare. */
  moduleSchedulesOn?: string
  /** `--stop-wait`: a duration. */
  stopWait?: string
  /** `--max-message-bytes`: bytes, or with KiB, MiB or GiB. */
  maxMessageBytes?: string
}

/** `--stop-wait`, as runUntilSignal takes it. */
export function stopWaitOf(o: { stopWait?: string }): { stopWait?: number } {
  return o.stopWait === undefined ? {} : { stopWait: parseDuration(o.stopWait, '--stop-wait') }
}

/**
 * Opens a weave with the CLI's options.
 * @throws JournalOwned when another weave runs on the journal
 */
export async function openWeave(o: StartOptions, remote?: Remote): Promise<Weave> {
  refuseEmpty(o.db)
  return Weave.open({
    ...(remote !== undefined ? { remote } : {}),
    ...(o.replicate !== undefined ? { replicate: o.replicate } : {}),
    ...weaveOptions(o),
  })
}

/** The weave options the CLI's `start` gives (without a transport). */
export function weaveOptions(o: StartOptions): WeaveOptions & { db: string } {
  return {
    ...(o.id !== undefined ? { weaveId: o.id } : {}),
    db: o.db,
    threads: o.threads,
    ioLibs: o.ioLibs,
    durability: o.durability,
    onDivergence: o.onDivergence,
    ...(o.passivateAfter !== undefined ? { passivateAfter: parsePassivateAfter(o.passivateAfter) } : {}),
    ...(o.moduleSchedulesOn !== undefined ? { moduleSchedulesOn: o.moduleSchedulesOn } : {}),
    ...(o.maxMessageBytes !== undefined ? { maxMessageBytes: parseBytes(o.maxMessageBytes, '--max-message-bytes') } : {}),
    ...(o.dumps !== undefined ? { dumps: o.dumps } : {}),
    ...(o.secret !== undefined && o.secret.length > 0 ? { secrets: parseSecretOptions(o.secret) } : {}),
    onWarning: (w) => weaveLog.warn(`raiment: ${(w as { code?: string }).code ?? w.name}: ${w.message}`, { event: 'warning', code: (w as { code?: string }).code ?? w.name }),
    // With --log-format json, the log library's lines go through the weave's logger.
    ...(weaveLog.logger !== null ? { config: { logger: weaveLog.logger } } : {}),
  }
}

/** `raiment start`: runs a weave in the foreground until SIGINT or SIGTERM. */
export async function start(o: StartOptions, argv: readonly string[] = []): Promise<number> {
  const amqp = await import('./amqp-commands.js')
  ;(await import('./replication-commands.js')).checkReplicate(o)
  ;(await import('./replicated-start.js')).checkTakeover(o)
  stopWaitOf(o)
  weaveLog.use(o.logFormat)
  if (o.weaves !== undefined) return amqp.startMany(o, argv)
  if (o.replicate === true) return (await import('./replicated-start.js')).startReplicated(o)
  const stop = new StopSignals()
  let link: Awaited<ReturnType<typeof amqp.joinBroker>> = null
  let weave: Weave
  const since = performance.now()
  const undo = undoFreshJournal(o.db)
  try {
    link = await amqp.joinBroker(o)
    weave = await openWeave(o, link ?? undefined)
  } catch (e) {
    stop.release()
    await link?.close()
    undo()
    throw e
  }
  logWeave(weave, endLine)
  logReloads(weave)
  const stopReloads = reloadTriggers(() => [weave], o)
  logOpened(weave, o.db)
  void trackResume(weave, since)
  if (!existsSync(o.threads)) complain('RAIMENT_NO_THREADS_DIR', `there is no directory '${o.threads}', so only built-in thread types can run; pass --threads DIR`)
  // Resumed threads started inside Weave.open, before these listeners existed; threads spawned
  // while no weave ran are still 'pending' until their start commits, and print 'started' then.
  // (A thread of a type this weave cannot run is ending failed instead: it prints 'failed' then.)
  logResumed(weave)
  if (link !== null) {
    await link.start(weave)
    weaveLog.info(`joined namespace '${link.topology.ns}' on ${redact(link.broker.url)} as ${weave.journal.weaveId}`, { event: 'joined', namespace: link.topology.ns, broker: redact(link.broker.url), weave: weave.journal.weaveId })
    const r = link.replicator
    if (r !== null) weaveLog.info(`replicating the journal to ${link.topology.ns}.journal.${r.weaveId} (generation ${r.generation}, epoch ${r.epoch}, durability ${o.durability})`, { event: 'replicating', generation: r.generation, epoch: r.epoch })
  }
  const beforeClose = (): Promise<void> | undefined => {
    stopReloads()
    // Its `start --weaves` died under it: not retired, it is listed silent (its queue keeps what comes).
    return link?.close({ retire: stop.reason !== 'disconnect' })
  }
  return runUntilSignal(weave, () => new Promise<never>(() => {}), { beforeClose, stop, ...stopWaitOf(o) })
}

/** One line telling how a thread ended. */
export function endLine(weave: Weave, end: ThreadEnd): string {
  switch (end.status) {
    case 'done':
      return `done ${end.id} ${end.type} → ${logValue(toText(end.result), end.id)}`
    case 'failed': {
      const dump = weave.dumpPath(end.id, end.error)
      return `failed ${end.id} ${end.type}: ${logValue(errorText(end.error), end.id)}${dump ? ` (dump: ${displayPath(dump)})` : ''}`
    }
    case 'killed':
      return `killed ${end.id} ${end.type}`
    case 'moved':
      return `moved ${end.id} ${end.type} → weave ${end.to}`
  }
}

/**
 * What stops a weave that the CLI runs: SIGINT or SIGTERM, or, in a weave of
 * `raiment start --weaves N`, the end of its IPC channel to that process (it died, even by
 * SIGKILL: then the weave closes without retiring, `reason` 'disconnect', as a weave killed
 * does not say it stopped on purpose, so a replicated one is taken over). Caught from construction on, so a signal that comes while the weave is still opening
 * stops it once it is open. A second signal while stopping exits at once, with status 1.
 *
 * A weave of `--weaves N` runs in its own process group, so a signal meant for the group of
 * `raiment start --weaves N` (Ctrl-C, `kill -- -PGID`) reaches it once, forwarded by that process.
 */
export class StopSignals {
  /** Resolves with what asked the weave to stop. */
  readonly stopped: Promise<string>
  /** What asked the weave to stop (`'disconnect'`: its `start --weaves` died), once something did. */
  reason: string | null = null
  #stopping = false
  readonly #onSignal: (sig: NodeJS.Signals) => void
  readonly #onDisconnect: () => void

  constructor() {
    let resolve: (why: string) => void = () => {}
    this.stopped = new Promise((r) => (resolve = r))
    this.#onSignal = (sig) => {
      if (this.#stopping) {
        complain('RAIMENT_FORCED_EXIT', `${sig} again; exiting without waiting for the weave to close`)
        process.exit(1)
      }
      this.#stopping = true
      this.reason = sig
      weaveLog.warn(`${sig}: closing the weave; running threads resume at the next start`, { event: 'stopping', signal: sig })
      resolve(sig)
    }
    this.#onDisconnect = () => {
      if (this.#stopping) return
      this.#stopping = true
      this.reason = 'disconnect'
      weaveLog.warn(
        'the raiment start --weaves that ran this weave has gone (no signal came through it): closing the weave without retiring it (no down in the roster or registry), so it is listed silent and, if replicated, a live weave takes it over; running threads resume there or at the next start',
        { event: 'stopping', signal: 'disconnect' },
      )
      resolve('disconnect')
    }
    process.on('SIGINT', this.#onSignal)
    process.on('SIGTERM', this.#onSignal)
    process.on('uncaughtException', fatal)
    if (process.env[CHILD_OF_WEAVES] === '1' && process.channel !== undefined) {
      // The channel only tells when the parent goes; it must not keep this process alive.
      process.channel.unref()
      process.on('disconnect', this.#onDisconnect)
    }
  }

  release(): void {
    process.off('SIGINT', this.#onSignal)
    process.off('SIGTERM', this.#onSignal)
    process.off('disconnect', this.#onDisconnect)
    process.off('uncaughtException', fatal)
  }
}

/**
 * An error nothing caught ends the weave's process (fail-stop: a batch the journal could not
 * commit, RAIMENT_JOURNAL_WRITE_FAILED, is one), a Raiment error in one line with its code.
 */
function fatal(e: unknown): never {
  const code = (e as { code?: unknown } | null)?.code
  if (typeof code === 'string' && code.startsWith('RAIMENT_')) note(redactUrls(errorLine(e)))
  else process.stderr.write(`${(e as Error | null)?.stack ?? String(e)}\n`)
  process.exit(1)
}

export interface RunOptions {
  /** Before the weave closes (after its calls in flight finished): leave the broker. */
  beforeClose?: () => Promise<void> | undefined
  stop?: StopSignals
  /** The exit status when a signal stopped it (0 by default). */
  stopped?: () => number | Promise<number>
  /** `--stop-wait`: how long the calls in flight may finish (ms; default STOP_WAIT_MS). */
  stopWait?: number
  /** The weaves whose calls in flight it waits for, all at once (default: `weave`). */
  weaves?: () => Iterable<Weave>
  /** Before that wait (a replicated host stops taking weaves over). */
  beforeWait?: () => void
}

/**
 * Runs `work` with the weave open, keeping the process alive (the weave's own timers do not),
 * and closes the weave when the work ends or when `stop` fires (SIGINT / SIGTERM), which exits
 * with `stopped()`: first the threads' calls in flight may finish, up to `stopWait`, with the
 * broker still joined; threads still running stay recorded and resume when a weave opens the
 * journal again.
 */
export async function runUntilSignal(weave: Weave, work: () => Promise<number>, o: RunOptions = {}): Promise<number> {
  const stop = o.stop ?? new StopSignals()
  const keepAlive = setInterval(() => {}, 1 << 30)
  let signalled = false
  try {
    const byStop = stop.stopped.then(() => {
      signalled = true
      return (o.stopped ?? (() => 0))()
    })
    return await Promise.race([work(), byStop])
  } finally {
    try {
      try {
        // Stopped by a signal: the calls in flight may finish first (the work's own end needs no wait).
        if (signalled) {
          o.beforeWait?.()
          const weaves = [...(o.weaves?.() ?? [weave])]
          for (const w of weaves) logStopWait(w)
          await Promise.all(weaves.map((w) => w.stopCalls(o.stopWait ?? STOP_WAIT_MS)))
        }
        await o.beforeClose?.()
      } finally {
        // The SDK flushed even when closing throws: its spans tell what went wrong.
        await weave.close({ wait: 0 }).finally(flushOtel)
      }
    } finally {
      // Even when closing throws (a batch the journal could not commit): nothing keeps the
      // process alive, and the signal handlers are let go.
      clearInterval(keepAlive)
      stop.release()
    }
  }
}

/** What a kill did: the thread was killed now, or it had already ended (with that status). */
export type KillOutcome = { killed: true; forwardedTo?: string; heldFor?: string } | { killed: false; status: string }

/**
 * Kills thread `id` of journal `db`, the way `raiment kill` does: with a weave running on the
 * journal, a control request it answers (waiting up to `waitMs`, 5 s); with none, the thread is marked
 * killed in the transaction that found no weave. The UI's kill is this too.
 * @throws UnknownThread, ThreadMoved (moved away, and no weave runs here to send the kill after it), RaimentError (`RAIMENT_KILL_TIMEOUT`, `RAIMENT_KILL_FAILED`)
 */
export async function killThread(db: string, id: string, waitMs = CONTROL_TIMEOUT_MS): Promise<KillOutcome> {
  const journal = openExisting(db)
  try {
    const row = journal.thread(id)
    if (row === undefined) {
      // An id of another weave's thread (`raiment send` sends to it through the outbox; a kill is
      // not sent so, with no thread here to record it against).
      const home = weaveOfThread(id)
      if (home !== null && home !== journal.weaveId) {
        throw new RaimentError('RAIMENT_UNKNOWN_THREAD', `no thread with id '${id}' in this journal: it is a thread of weave '${home}' (this journal's is '${journal.weaveId}'); kill it with that weave's journal (raiment kill ${id} --db FILE), or from a thread (this.threads.kill)`)
      }
      throw new UnknownThread(id)
    }
    // A thread that moved away is killed where it runs: the weave running here sends the kill after it.
    const moved = row.status === 'moved'
    if (row.status !== 'running' && row.status !== 'pending' && !moved) return { killed: false, status: row.status }
    // With no weave running the kill is written here, in the transaction that found none, with
    // its hold as a weave plans it at a kill: a supervised child its supervisor will restart keeps
    // its names and inbox for its successor, so what is sent to it meanwhile waits too.
    let killed = false
    let heldFor: string | undefined
    const owner = withOwner(journal, (owner) => {
      if (owner === null && !moved) {
        killed = journal.killNow(id)
        if (killed) heldFor = endedOffline(journal.db, id, 'killed')
      }
      return owner
    })
    if (owner === null && moved) {
      // Nothing here can send it after the thread: saying it had ended would be wrong, it runs on.
      const to = movedTo(journal.db, id) ?? 'another weave'
      throw new ThreadMoved(id, to, `no weave runs on ${db} to send the kill after it: kill it on the journal of the weave it runs on, or start a weave here with a broker (raiment start --db ${db} --amqp URL) and kill it again`)
    }
    if (owner === null) return killed ? (heldFor === undefined ? { killed: true } : { killed: true, heldFor }) : { killed: false, status: journal.thread(id)?.status ?? 'ended' }
    const reply = await askWeave(journal, 'kill', id, null, false, { waitMs })
    if (reply === null) {
      throw new RaimentError(
        'RAIMENT_KILL_TIMEOUT',
        `the weave (pid ${owner.pid}) did not answer the kill of ${id} within ${waitText(waitMs)}; the request stays queued and it acts on it when it polls. ${busyHint(waitMs)}`,
      )
    }
    if (reply === 'killed') return { killed: true }
    if (reply.startsWith('forwarded ')) return { killed: true, forwardedTo: reply.slice('forwarded '.length) }
    if (reply === 'already ended') return { killed: false, status: journal.thread(id)?.status ?? 'ended' }
    throw new RaimentError('RAIMENT_KILL_FAILED', `the weave (pid ${owner.pid}) could not kill ${id}: ${reply}`)
  } finally {
    journal.close()
  }
}

/** `raiment kill ID`. */
export async function kill(id: string, o: DbOptions & AskOptions): Promise<number> {
  const r = await killThread(o.db, id, askTimeout(o))
  say(r.killed ? (r.forwardedTo !== undefined ? `kill of ${id} sent to weave ${r.forwardedTo}, where it moved (that weave kills it if it still runs)` : `killed ${id}`) : `${id} had already ended (${r.status})`)
  if (r.killed && r.heldFor !== undefined) note(`no weave runs on ${o.db}; its supervisor ${r.heldFor} is to restart it: its messages and names are held for its successor, and what is sent to them meanwhile waits too, until a weave runs on this journal`)
  return 0
}

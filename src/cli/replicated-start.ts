/**
 * `raiment start --replicate`: the weave runs in a ReplicatedHost (src/replication/host.ts), which
 * holds its lease, fences it, and takes over the replicated weaves of the namespace that stop
 * heartbeating for `--takeover-after` ms. A weave taken over runs in this process from then on;
 * its threads print as the own weave's do.
 *
 * Fenced (its lease lost to a takeover), the process prints one line `raiment: RAIMENT_FENCED: ...`
 * and exits 3 at once: closing the weave would record more (a last commit), which it must not.
 */
import { writeSync } from 'node:fs'
import { redact } from '../amqp/connection.js'
import { InvalidArgument } from '../errors.js'
import { MIN_TAKEOVER_AFTER_MS } from '../replication/fencing.js'
import { Fenced, StreamAhead } from '../replication/errors.js'
import type { ReplicatedHost } from '../replication/host.js'
import { LeaseHeld } from '../replication/lease.js'
import { DEFAULT_TAKEOVER_AFTER_MS } from '../replication/takeover.js'
import type { Weave } from '../weave.js'
import { brokerUrl, FENCED_EXIT, heartbeatOf, namespaceOf } from './amqp-commands.js'
import { CHILD_OF_WEAVES, errorLine, note, refuseEmpty, undoFreshJournal } from './common.js'
import { logReloads, reloadTriggers } from './reload.js'
import { endLine, runUntilSignal, StopSignals, stopWaitOf, weaveOptions, type StartOptions } from './weave-commands.js'
import { trackResume } from './progress.js'
import { logOpened, logResumed, logWeave, weaveLog } from './weave-log.js'

export function takeoverAfterOf(o: { takeoverAfter?: string }): number {
  const ms = o.takeoverAfter === undefined ? DEFAULT_TAKEOVER_AFTER_MS : Number(o.takeoverAfter)
  if (!(Number.isInteger(ms) && ms >= MIN_TAKEOVER_AFTER_MS)) {
    throw new InvalidArgument(`--takeover-after must be a whole number of ms from ${MIN_TAKEOVER_AFTER_MS} up (default ${DEFAULT_TAKEOVER_AFTER_MS}), got ${JSON.stringify(o.takeoverAfter)}`)
  }
  return ms
}

/** `--takeover-after` belongs with `--replicate`. */
export function checkTakeover(o: { takeoverAfter?: string; replicate?: boolean }): void {
  if (o.takeoverAfter !== undefined && o.replicate !== true) {
    throw new InvalidArgument('--takeover-after is for replicated weaves (only those can be taken over): add --replicate --amqp URL, or drop --takeover-after')
  }
  if (o.takeoverAfter !== undefined) takeoverAfterOf(o)
}

export async function startReplicated(o: StartOptions & { takeoverAfter?: string }): Promise<number> {
  refuseEmpty(o.db)
  const takeoverAfterMs = takeoverAfterOf(o)
  const url = brokerUrl(o)!
  const stop = new StopSignals()
  const since = performance.now()
  const { ReplicatedHost } = await import('../replication/host.js')
  // A pending thread can start (its start committed and, under 'replicated', confirmed) before
  // the listing of running threads: logWeave keeps what it said until logResumed lists them.
  const watch = (weave: Weave): void => logWeave(weave, endLine)
  const sayResumed = (weave: Weave): void => logResumed(weave)
  let host: ReplicatedHost
  const undo = undoFreshJournal(o.db)
  try {
    host = await ReplicatedHost.start({
      url,
      namespace: namespaceOf(o),
      heartbeatMs: heartbeatOf(o),
      takeoverAfterMs,
      log: (line) => weaveLog.warn(line),
      weave: weaveOptions(o),
      fenced: (err) => {
        writeSync(2, errorLine(err) + '\n')
        process.exit(FENCED_EXIT)
      },
      opened: (weave, own) => {
        watch(weave)
        logReloads(weave)
        if (!own) sayResumed(weave)
      },
    })
  } catch (e) {
    stop.release()
    undo()
    // Taken over while it was away: the same one line and status as a weave fenced while running.
    if (e instanceof LeaseHeld || e instanceof Fenced) {
      note(errorLine(e))
      return FENCED_EXIT
    }
    // In a slot of `start --weaves N`, which recovers by itself: say so, not what to do.
    if (e instanceof StreamAhead && process.env[CHILD_OF_WEAVES] === '1') throw new StreamAhead(e.namespace, e.weaveId, e.why, true)
    throw e
  }
  const weave = host.weave
  logOpened(weave, o.db)
  void trackResume(weave, since)
  sayResumed(weave)
  weaveLog.info(`joined namespace '${host.ns}' on ${redact(url)} as ${weave.journal.weaveId}, replicated; takes over silent replicated weaves after ${takeoverAfterMs / 1000} s`, { event: 'joined', namespace: host.ns, broker: redact(url), weave: weave.journal.weaveId, replicated: true })
  const stopReloads = reloadTriggers(() => [host.weave, ...host.hosted.values()], o)
  // The host closes every weave it runs; runUntilSignal closes the own one again (a no-op).
  const beforeClose = (): Promise<void> => {
    stopReloads()
    // Its `start --weaves` died under it: flushed, but not retired, so a live weave takes it over.
    return host.close({ retire: stop.reason !== 'disconnect' })
  }
  return runUntilSignal(weave, () => new Promise<never>(() => {}), { beforeClose, stop, weaves: () => [weave, ...host.hosted.values()], beforeWait: () => host.stopTakeovers(), ...stopWaitOf(o) })
}

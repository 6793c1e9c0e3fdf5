/**
 * The lines a running weave prints (`raiment start`): threads started, resumed and ended, the
 * broker joined, signals, errors; and, only with `RAIMENT_LOG_LEVEL=debug`, passivated threads
 * woken (a timer storm wakes thousands at once). `--log-format pretty` (default) prints them as they always
 * were: one human line each, events on stdout, warnings and errors on stderr. `--log-format json`
 * prints one JSON object per line through pino (`level`, `time`, `pid`, `hostname`, `msg`, and
 * the event's fields: `event`, `thread`, `type`, …), info on stdout, warn and error on stderr;
 * the `log` library's lines (io-libs/log.ts) go through the same logger, with `thread` and `call`.
 */
import { pino, type Logger } from 'pino'
import { InvalidArgument } from '../errors.js'
import type { ThreadEnd, Weave } from '../weave.js'
import type { WokenBy } from '../weave-types.js'
import { errorLine, LOG_VALUE_CHARS, logValue, note, plural, say, toText } from './common.js'
import { firstFew } from '../first-few.js'
import { duration } from './progress.js'

export const LOG_FORMATS = ['pretty', 'json'] as const
export type LogFormat = (typeof LOG_FORMATS)[number]

type Fields = Record<string, unknown>

class WeaveLog {
  #logger: Logger | null = null

  /** The pino logger of `--log-format json`, or null for pretty lines. */
  get logger(): Logger | null {
    return this.#logger
  }

  /** Chooses the format (once, before the weave opens). */
  use(format: string | undefined): void {
    if (format === undefined || format === 'pretty') {
      this.#logger = null
      return
    }
    if (format !== 'json') throw new InvalidArgument(`--log-format must be one of ${LOG_FORMATS.join(', ')}, got ${JSON.stringify(format)}`)
    // Synchronous writes: a line is out before the process exits, in the order it was logged.
    this.#logger = pino(
      { level: 'trace' },
      pino.multistream(
        [
          { level: 'trace', stream: pino.destination({ fd: 1, sync: true }) },
          { level: 'warn', stream: pino.destination({ fd: 2, sync: true }) },
        ],
        { dedupe: true },
      ),
    )
  }

  /** Whether debug lines are printed: `RAIMENT_LOG_LEVEL=debug` (read once). */
  #debug: boolean | undefined

  /** An event too frequent for the default log (stdout, or level 20 in JSON): only with `RAIMENT_LOG_LEVEL=debug`. */
  debug(msg: string, fields?: Fields): void {
    this.#debug ??= process.env.RAIMENT_LOG_LEVEL?.trim().toLowerCase() === 'debug'
    if (!this.#debug) return
    if (this.#logger === null) say(msg)
    else this.#logger.debug(fields ?? {}, msg)
  }

  /** An event (stdout). */
  info(msg: string, fields?: Fields): void {
    if (this.#logger === null) say(msg)
    else this.#logger.info(fields ?? {}, msg)
  }

  /** Something to look at (stderr). */
  warn(msg: string, fields?: Fields): void {
    if (this.#logger === null) note(msg)
    else this.#logger.warn(fields ?? {}, msg)
  }

  /** Something that went wrong (stderr). */
  error(msg: string, fields?: Fields): void {
    if (this.#logger === null) note(msg)
    else this.#logger.error(fields ?? {}, msg)
  }
}

/** The running weave's log (one per process). */
export const weaveLog = new WeaveLog()

/** The fields of a thread's end, for a JSON line. */
function endFields(weave: Weave, end: ThreadEnd): Fields {
  const f: Fields = { event: 'thread-end', thread: end.id, type: end.type, status: end.status }
  if (end.status === 'done') {
    // A long result is not copied into the line (`msg` holds its start): how long it is instead.
    const text = toText(end.result)
    if (text.length <= LOG_VALUE_CHARS) f['result'] = end.result
    else f['resultBytes'] = Buffer.byteLength(text)
  } else if (end.status === 'failed') {
    const e = end.error as Error & { code?: unknown }
    f['error'] = { name: e.name, message: typeof e.message === 'string' ? logValue(e.message, end.id) : e.message, ...(e.code !== undefined ? { code: e.code } : {}) }
    const dump = weave.dumpPath(end.id, end.error)
    if (dump !== null) f['dump'] = dump
  } else if (end.status === 'moved') f['to'] = end.to
  return f
}

/** What woke a passivated thread, in the words of its line. */
const WOKEN_BY: Record<WokenBy, string> = {
  message: 'a message',
  timer: 'its timer',
  join: 'the end of the thread it joins',
  kill: 'a kill',
  exit: 'an exit signal',
  cancel: 'a cancel',
  move: 'a move',
  reload: 'a reload',
}

/** Per weave, the ids said started or resumed until `logResumed` lists its threads (not after: a weave may start millions). */
const saidBefore = new WeakMap<Weave, Set<string>>()

/**
 * Logs what `weave` does: its errors, and each thread's start and end (`endLine`: the pretty line
 * of an end). Call `logResumed` for it next.
 */
export function logWeave(weave: Weave, endLine: (weave: Weave, end: ThreadEnd) => string): void {
  saidBefore.set(weave, new Set())
  weave.on('error', (e) => weaveLog.error(errorLine(e), { event: 'error', code: (e as { code?: unknown }).code ?? e.name }))
  weave.on('thread-start', ({ id, type, resumed, continued, woke }) => {
    saidBefore.get(weave)?.add(id)
    if (woke !== undefined) weaveLog.debug(`woke ${id} ${type} (${WOKEN_BY[woke]})`, { event: 'thread-woke', thread: id, type, by: woke })
    else if (continued !== undefined && !resumed) weaveLog.info(`continued ${id} ${type} as new (${continued})`, { event: 'thread-continued', thread: id, type, continued })
    else weaveLog.info(`${resumed ? 'resumed' : 'started'} ${id} ${type}`, { event: resumed ? 'thread-resumed' : 'thread-start', thread: id, type })
  })
  weave.on('thread-end', (end) => weaveLog.info(endLine(weave, end), endFields(weave, end)))
}

/** The wait of a stop for the calls in flight (src/weave-stop.ts), when there were some. */
export function logStopWait(weave: Weave): void {
  const w = weave.journal.weaveId
  weave.on('stop-wait', ({ threads, wait, oldCode }) => {
    if (oldCode.length > 0) {
      const one = oldCode.length === 1
      weaveLog.warn(`stopping: ${plural(oldCode.length, 'thread')} ${one ? 'runs' : 'run'} the code a reload kept ${one ? 'it' : 'them'} on (${firstFew(oldCode)}): at the next start ${one ? 'it resumes' : 'they resume'} under the files on disk and ${one ? 'diverges' : 'diverge'} (raiment check says where), unless the change is put behind patch.patched first`, { event: 'stop-old-code', weave: w, threads: oldCode })
    }
    if (threads > 0 && wait > 0) weaveLog.info(`stopping: the calls in flight of ${plural(threads, 'thread')} may finish, up to ${seconds(wait)} (a second signal exits now)`, { event: 'stop-wait', weave: w, threads, wait })
  })
  weave.on('stop-waited', ({ threads, left, ms }) => {
    if (threads === 0) return
    if (left === 0) weaveLog.info(`stopping: the calls in flight finished in ${seconds(ms)}`, { event: 'stop-waited', weave: w, threads, left, ms: Math.round(ms) })
    else weaveLog.warn(`stopping: after ${seconds(ms)}, ${plural(left, 'thread')} still had calls in flight: those calls are made again at the next start, with the same call ids`, { event: 'stop-waited', weave: w, threads, left, ms: Math.round(ms) })
  })
}

const seconds = (ms: number): string => (ms === Infinity ? 'no limit' : duration(ms))

/**
 * Logs the threads `weave` resumed as it opened (before `logWeave` listened), but those said
 * started or resumed since: those running in memory, not the passivated ones left asleep (a
 * million of them, maybe).
 */
export function logResumed(weave: Weave): void {
  const said = saidBefore.get(weave)
  saidBefore.delete(weave)
  // Running rows, those in memory: a passivated one is not (unless the open woke it); a pending
  // one whose start has not committed yet says 'started' then.
  const rows = weave.journal.db.prepare("SELECT id, type FROM threads WHERE status = 'running' ORDER BY rowid").raw(true).iterate() as IterableIterator<[string, string]>
  for (const [id, type] of rows) {
    if (weave.inMemory(id) && !said?.has(id)) weaveLog.info(`resumed ${id} ${type}`, { event: 'thread-resumed', thread: id, type })
  }
}

/** The line a weave logs once it is open. */
export function logOpened(weave: Weave, db: string, extra = ''): void {
  const unavailable = [...weave.unavailable.keys()]
  weaveLog.info(
    `weave ${weave.journal.weaveId} on ${db} (pid ${process.pid}): ${plural(weave.types.length, 'thread type')}, ` +
      `${unavailable.length > 0 ? `${unavailable.length} unavailable (${unavailable.join(', ')}), ` : ''}` +
      `resumed ${plural(weave.resumed, 'thread')}${extra}`,
    { event: 'weave-open', weave: weave.journal.weaveId, db, types: weave.types.length, unavailable, resumed: weave.resumed },
  )
}

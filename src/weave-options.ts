/**
 * What `Weave.open` takes: the options, their checks, and the I/O libraries they name.
 */
import { fileURLToPath } from 'node:url'
import type { WeaveConfig } from './call-context.js'
import { InvalidArgument, ReplicationRequired } from './errors.js'
import type { Durability, Journal } from './journal.js'
import { BUILTIN_DIR, disposeLibraries, libraryFiles, loadLibraryFile, makeLibrary, type Library, type LibrarySpec } from './libraries.js'
import type { ObservedWeave, Observer } from './observer.js'
import type { Remote } from './remote.js'
import type { ScheduleClock } from './schedules/clock.js'
import { clockOption } from './time/timers.js'
import { bindSecrets, checkWeaveSecrets, type WeaveSecrets } from './secrets/rules.js'
import type { AnyThreadType } from './thread.js'
import { valueText } from './value-text.js'
import { checkMaxMessageBytes } from './message-size.js'

export interface WeaveOptions {
  /** The journal file (default `./raiment.db`); `:memory:` for a throwaway weave. */
  db?: string
  /** A directory of thread types (default `./threads`), or thread types by name. */
  threads?: string | Record<string, AnyThreadType>
  /** A directory of the project's I/O libraries (default `./io-libs`; false for none). */
  ioLibs?: string | false
  /** More I/O libraries by name: plain objects of async methods, or module-shaped objects. */
  libraries?: Record<string, LibrarySpec>
  /** `sync` (fsync per commit, default), `batched` (WAL, synchronous=NORMAL), `memory` (no fsync). */
  durability?: Durability
  /** Where failed threads' dumps go (default `./dumps`; false for none). */
  dumps?: string | false
  /**
   * On resume, a thread whose record no longer matches its code fails (default), continues live,
   * or waits, nothing recorded, until code that replays its record is loaded (a reload of its
   * type's file, or a restart): docs/changing-code.md.
   */
  onDivergence?: 'fail' | 'continue' | 'wait'
  /** This weave's id, used as the prefix of thread ids (default: host name and db file name). */
  weaveId?: string
  /** How often (ms) to look for threads spawned and killed by other processes (default 50). */
  pollMs?: number
  /** Passed to library factories as part of their config. */
  config?: Record<string, unknown>
  /**
   * Test mode: after every live outcome is durable, the thread is re-run from the start with its
   * journal as the cache instead of being handed the outcome. Results must not change.
   */
  alwaysReplay?: boolean
  /** A transport joining this weave to others (see `raiment start --amqp`); none by default. */
  remote?: Remote
  /**
   * Replicate the journal to the broker of `remote` (its journal stream; docs/replication.md):
   * every group commit is also appended there, in order, before the threads resume. With
   * `durability: 'replicated'` an outcome reaches its thread only once the broker has it too;
   * otherwise replication runs behind the local commits (see `raiment weaves` for the lag).
   * A journal its last weave replicated is refused unless this is given: false stops replicating
   * it (ReplicationRequired says why: it may have been taken over).
   */
  replicate?: boolean
  /**
   * Told of what does not stop the weave but should be fixed: a thread type that cannot run
   * (its module failed to load), once each when the weave opens; the first throw of an
   * OpenTelemetry SDK (a span processor, an exporter: `RAIMENT_TELEMETRY_FAILED`), once. Default:
   * `process.emitWarning`.
   */
  onWarning?: (warning: Error) => void
  /**
   * What else is secret in the calls of this weave's threads, by library, added to what each
   * library declares (docs/secrets.md): `{ fetch: { headers: ['x-api-key'], body: ['password'] } }`.
   * Secret values are recorded as markers, never as they are.
   */
  secrets?: WeaveSecrets
  /**
   * The time the weave's threads see and schedules go by (`{ now(), setTimer(at, fire) }`):
   * `clock.now()` and `clock.sleep`, a receive's timeout, a retry's wait, the wake of a
   * passivated thread at its due time. The real clock by default; for tests, `testClock()` of
   * raiment/testing, moved by hand (docs/testing.md).
   */
  clock?: ScheduleClock
  /** The older name of `clock` (it was the time of schedules alone): the same option. */
  scheduleClock?: ScheduleClock
  /**
   * OpenTelemetry (docs/observability.md): by default on when `@opentelemetry/api` is installed
   * and an SDK is registered before the weave opens; true: on whenever the API is installed
   * (spans go wherever a provider registered later sends them); false: off.
   */
  telemetry?: boolean
  /**
   * Passivation (docs/passivation.md): a thread that has waited this many ms in `receive`,
   * `clock.sleep` or a join, and does nothing else, leaves memory; a message, its due time, the
   * joined thread's end, a kill or a linked exit wakes it by replay of its record. 0: as soon as it
   * waits; `false` or `Infinity`: never. Default 30,000.
   */
  passivateAfter?: number | false
  /**
   * Several weaves loading the same thread modules (one app, `raiment start --weaves N`): the id
   * of the one weave that brings in the schedules those modules declare (docs/schedules.md); every
   * other weave removes them from its journal, so each time fires once in all. Default: this
   * weave brings them in (one weave per app).
   */
  moduleSchedulesOn?: string
  /**
   * The largest message a send takes, in bytes as it travels (its encoded body; default 16 MiB,
   * RabbitMQ 4's default max_message_size). A bigger one is refused at the send with
   * MessageTooLarge, nothing sent, inside one weave too. Across weaves keep it within the broker's
   * max_message_size: a message the broker refuses for its size goes to the dead letters.
   */
  maxMessageBytes?: number
}

/**
 * Not public: an option of a weave given its thread types as objects, which says where another
 * type is given (record()'s `threads` option), for the UnknownThreadType of a spawn of a type it
 * does not know. A symbol key, so no program passes it by mistake.
 */
export const HOW_TO_ADD_TYPE = Symbol('raiment.how-to-add-type')
export type HowToAddType = (type: string) => string
/** The options with that one. */
export type InternalWeaveOptions = WeaveOptions & { [HOW_TO_ADD_TYPE]?: HowToAddType }

/** Where a weave given its thread types as objects takes another, unless HOW_TO_ADD_TYPE says. */
export const givenTypes: HowToAddType = (type) => `This weave was given its thread types as objects (Weave.open's threads: { … }) and knows those alone: give it '${type}' there too.`

export const KNOWN_OPTIONS = new Set(['db', 'threads', 'ioLibs', 'libraries', 'durability', 'dumps', 'onDivergence', 'weaveId', 'pollMs', 'config', 'alwaysReplay', 'remote', 'replicate', 'onWarning', 'secrets', 'clock', 'scheduleClock', 'telemetry', 'passivateAfter', 'moduleSchedulesOn', 'maxMessageBytes'])

export function checkOptions(o: WeaveOptions): void {
  for (const k of Object.keys(o)) {
    if (!KNOWN_OPTIONS.has(k)) throw new InvalidArgument(`unknown weave option '${k}'; the options are: ${[...KNOWN_OPTIONS].join(', ')}`)
  }
  if (o.onDivergence !== undefined && o.onDivergence !== 'fail' && o.onDivergence !== 'continue' && o.onDivergence !== 'wait') {
    throw new InvalidArgument(`onDivergence must be 'fail', 'continue' or 'wait', got ${JSON.stringify(o.onDivergence)}`)
  }
  if (o.onWarning !== undefined && typeof o.onWarning !== 'function') {
    throw new InvalidArgument(`onWarning must be a function, got ${typeof o.onWarning}`)
  }
  if (o.replicate !== undefined && typeof o.replicate !== 'boolean') throw new InvalidArgument(`replicate must be true or false, got ${JSON.stringify(o.replicate)}`)
  if (o.durability === 'replicated' && o.replicate !== true) {
    throw new InvalidArgument("durability 'replicated' needs replicate: true (and a remote joined to a broker: raiment start --amqp URL --replicate)")
  }
  if (o.replicate === true && o.remote?.replicate === undefined) {
    throw new InvalidArgument('replicate: true needs a remote that can replicate the journal (an AmqpLink: raiment start --amqp URL --replicate)')
  }
  if (o.secrets !== undefined) checkWeaveSecrets(o.secrets)
  clockOption(o)
  if (o.telemetry !== undefined && typeof o.telemetry !== 'boolean') throw new InvalidArgument(`telemetry must be true or false, got ${JSON.stringify(o.telemetry)}`)
  const pa = o.passivateAfter
  if (pa !== undefined && pa !== false && !(typeof pa === 'number' && pa >= 0)) {
    throw new InvalidArgument(`passivateAfter must be a number of milliseconds >= 0, Infinity or false, got ${valueText(pa)}`)
  }
  checkMaxMessageBytes(o.maxMessageBytes)
  if (o.pollMs !== undefined && !(Number.isFinite(o.pollMs) && o.pollMs > 0)) {
    throw new InvalidArgument(`pollMs must be a number of milliseconds above 0, got ${valueText(o.pollMs)}`)
  }
}


export async function loadLibraries(o: WeaveOptions, config: WeaveConfig): Promise<Map<string, Library>> {
  const files = libraryFiles(fileURLToPath(BUILTIN_DIR))
  if (o.ioLibs !== false) {
    for (const [name, file] of libraryFiles(o.ioLibs ?? 'io-libs')) files.set(name, file)
  }
  const libs = new Map<string, Library>()
  // Made so far: let go of again when a later one cannot be made, or when replaced (an inline library replaces a file's).
  const made: Library[] = []
  try {
    const add = (name: string, lib: Library): void => void (made.push(lib), libs.set(name, lib))
    for (const [name, file] of files) add(name, await loadLibraryFile(name, file, config))
    for (const [name, spec] of Object.entries(o.libraries ?? {})) add(name, await makeLibrary(name, spec, config, `library '${name}'`))
    for (const lib of o.secrets === undefined ? [] : Object.keys(o.secrets)) {
      if (!libs.has(lib)) throw new InvalidArgument(`secrets: there is no library '${lib}'; the libraries are: ${[...libs.keys()].join(', ')}`)
    }
    for (const lib of libs.values()) lib.secrets = bindSecrets(lib.name, lib.methods, lib.declaredSecrets, o.secrets?.[lib.name])
  } catch (e) {
    await disposeLibraries(made).catch(() => {})
    throw e
  }
  await disposeLibraries(made.filter((lib) => libs.get(lib.name) !== lib))
  return libs
}

/**
 * What a weave refuses of a journal before its owner writes anything (Journal `beforeOwn`): one
 * its last weave replicated, unless opened replicated or with `replicate: false` said (it may
 * have been taken over elsewhere); one of another weave id than `weaveId`.
 * @throws ReplicationRequired, InvalidArgument
 */
export function refuseAtOpen(o: WeaveOptions, journal: Journal): void {
  if (o.replicate === undefined && journal.meta('replicating') !== undefined) throw new ReplicationRequired(journal.file, journal.weaveId)
  // A journal keeps the weave id it was made with (its thread ids name it): another one asked for
  // is refused, as the CLI's --id is (a user trial's weave took the file's id silently).
  if (o.weaveId !== undefined && o.weaveId !== '' && o.weaveId !== journal.weaveId) {
    throw new InvalidArgument(`${journal.file} belongs to weave '${journal.weaveId}' (its thread ids name it): pass weaveId '${journal.weaveId}', or another db for weave '${o.weaveId}'`)
  }
}

/** With `replicate`: the journal's commits reach the remote's journal stream from here on. */
export async function replicateJournal(o: WeaveOptions, journal: Journal): Promise<void> {
  if (o.replicate === true) {
    await o.remote!.replicate!(journal, { hold: o.durability === 'replicated' })
    // What the CLI reads to refuse writing here while no weave runs (src/cli/common.ts).
    journal.setMeta('replicating', '1')
  } else if (journal.meta('replicating') !== undefined) journal.setMeta('replicating', null)
}

/** The weave's observer: OpenTelemetry's (src/otel/), loaded only if telemetry may be on. */
export async function loadObserver(o: WeaveOptions): Promise<Observer | null> {
  if (o.telemetry === false) return null
  const { otelObserver } = await import('./otel/index.js')
  return otelObserver(o.telemetry, o.onWarning ?? ((w: Error) => process.emitWarning(w)))
}

/** What an observer's gauges read of a journal (when a metric reader collects). */
export function observed(journal: Journal): ObservedWeave {
  const db = journal.db
  const byStatus = db.prepare('SELECT status, count(*) FROM threads GROUP BY status').raw(true)
  const depths = db.prepare('SELECT (SELECT count(*) FROM inbox), (SELECT count(*) FROM outbox)').raw(true)
  return {
    weaveId: journal.weaveId,
    threadsByStatus: () => (journal.closed ? [] : (byStatus.all() as Array<[string, number]>)),
    depths: () => {
      if (journal.closed) return { mailbox: 0, outbox: 0 }
      const [mailbox, outbox] = depths.get() as [number, number]
      return { mailbox, outbox }
    },
  }
}

/**
 * The error classes Raiment throws, each a `RaimentError` with a stable `code`
 * (src/raiment-error.ts); errors of loading modules and of `raiment init` are in errors-modules.ts.
 */
import { closest, oneLine } from './near-names.js'
import { RaimentError } from './raiment-error.js'

export { RaimentError }

/**
 * Where a replay left its record, as data (`raiment check` reports it):
 * - `unexpected`: the thread asked for a call the record does not hold where it holds `recorded`;
 * - `reordered`: the thread waits on calls the record holds later, not on `recorded`;
 * - `missing`: the thread made no further request where the record holds `recorded`;
 * - `ended`: the thread ended where the record holds `recorded`;
 * - `beyond`: every recorded outcome was released, and the thread asked for more (`made`): the
 *   end of the record, which a thread that has not ended yet reaches where it goes on live.
 */
export interface DivergenceDetail {
  readonly kind: 'unexpected' | 'reordered' | 'missing' | 'ended' | 'beyond'
  /** The index (0-based, in completion order) of the recorded entry where the replay left the record. */
  readonly index: number
  /** The recorded entry there (none for `beyond`). */
  readonly recorded?: { readonly seq: number; readonly key: string; readonly ord: number }
  /** The call the thread made there (none for `missing` and `ended`); `stack` where stacks were kept. */
  readonly made?: { readonly key: string; readonly ord: number; readonly stack?: string }
  /** What the thread threw, for `ended` when it ended by a throw: `Name: message (at file:line:column)`. */
  readonly threw?: string
}

/** A replayed thread asked for something its record does not hold, or skipped what it holds. */
export class ReplayDivergence extends RaimentError {
  /** Where the replay left the record, as data (set by the weft). */
  readonly detail: DivergenceDetail | undefined
  constructor(message: string, detail?: DivergenceDetail) {
    super('RAIMENT_REPLAY_DIVERGENCE', message)
    this.detail = detail
  }
}

/** The thread was killed: every pending and later weft call rejects with this. */
export class ThreadKilled extends RaimentError {
  readonly threadId: string
  constructor(threadId: string) {
    super('RAIMENT_THREAD_KILLED', `thread ${threadId} was killed; it can make no more I/O calls`)
    this.threadId = threadId
  }
}

/**
 * The thread was cancelled (`Weave.cancel`, `threads.cancel`, `raiment cancel`): thrown once, from
 * the call it waited on (src/cancel.ts). Its later calls run as any, so it can clean up.
 */
export class ThreadCancelled extends RaimentError {
  readonly threadId: string
  readonly reason: string
  constructor(threadId: string, reason: string) {
    super('RAIMENT_THREAD_CANCELLED', `thread ${threadId} was cancelled (${reason}); its calls from here on are made as any: catch this to clean up`)
    this.threadId = threadId
    this.reason = reason
  }
}

/** A thread type no module in the weave's threads directory provides (misspelt, or added since the weave started). */
export class UnknownThreadType extends RaimentError {
  readonly type: string
  readonly known: readonly string[]
  /**
   * `declaredIn`: the type was given as an object (`Weave.spawn(checkout, …)`), declared in that module file.
   * `howToAdd`: where a weave that was given its types (not a directory) takes another, in place of the threads directory.
   */
  constructor(type: string, known: readonly string[], declaredIn?: string, howToAdd?: string) {
    const near = closest(type, known)
    const knownText = known.length ? known.join(', ') : '(none)'
    super(
      'RAIMENT_UNKNOWN_THREAD_TYPE',
      declaredIn !== undefined
        ? `the thread type given (declared in ${declaredIn}) is not one of this weave's; known types: ${knownText}. ` +
            `A weave knows a thread type given as an object when it is the very object it loaded (from its threads directory, or threads: { … }), not another instance of its module ` +
            `(a program whose module loader is not the weave's, as under vitest): spawn the type by its name, or give the weave the types as objects (threads: { … }).`
        : `unknown thread type '${type}'${near !== undefined ? ` (did you mean '${near}'?)` : ''}; known types: ${knownText}. ` +
            (howToAdd ??
              `A thread type is a module in the threads directory whose default export is thread({ uses, does }); ` +
                `a weave knows the modules that were there when it started or last reloaded (raiment reload).`),
    )
    this.type = type
    this.known = [...known]
  }
}

/**
 * Threads recorded in the journal whose type this weave cannot run (no module for it in its
 * threads directory, or one that failed to load): they wait, not run, until a reload loads it.
 */
export class ThreadsWaitForType extends RaimentError {
  readonly type: string
  readonly threads: string[]
  /** `why`: why the weave cannot run the type, in a few words (`cause`: the module's load error). */
  constructor(type: string, threads: string[], why: string, cause?: Error) {
    const one = threads.length === 1
    super(
      'RAIMENT_THREADS_WAIT_FOR_TYPE',
      `${one ? `thread ${threads[0]}` : `${threads.length} threads`} of type '${type}' ${one ? 'waits' : 'wait'}, not run: ${why}. ` +
        `${one ? 'It resumes' : 'They resume'} where ${one ? 'it' : 'they'} stopped once the weave loads the type (put its module in the threads directory, or fix it, then raiment reload; or start the weave with the right --threads); raiment kill ID ends one.`,
      cause === undefined ? undefined : { cause },
    )
    this.type = type
    this.threads = threads
  }
}

/** A thread type whose module is there but failed to load; `cause` is the load error. */
export class ThreadTypeUnavailable extends RaimentError {
  readonly type: string
  constructor(type: string, cause: Error) {
    super(
      'RAIMENT_THREAD_TYPE_UNAVAILABLE',
      `thread type '${type}' is unavailable: ${cause.message.replace(/\.$/, '')}. A weave loads its thread types when it starts or reloads: fix this, then run raiment reload (or start it again).`,
      { cause },
    )
    this.type = type
  }
}

export class UnknownLibrary extends RaimentError {
  /** `added`: its file is there now, added after the weave started (a reload loads no new library). */
  constructor(name: string, where: string, known: readonly string[], added = false) {
    super(
      'RAIMENT_UNKNOWN_LIBRARY',
      added
        ? `${where} uses I/O library '${name}', added after this weave started: a weave loads its libraries when it starts, not at a reload. Restart the weave to load it`
        : `${where} uses unknown I/O library '${name}'; libraries that exist: ${known.join(', ')}. ` + `Add io-libs/${name}.ts or fix the name in 'uses'.`,
    )
  }
}

export class UnknownMethod extends RaimentError {
  constructor(lib: string, method: string, known: readonly string[]) {
    super(
      'RAIMENT_UNKNOWN_METHOD',
      `I/O library '${lib}' has no method '${method}'; it has: ${known.join(', ')}`,
    )
  }
}

/** A thread reached for a library (`this.log`) that its type does not name in `uses`. */
export class NotInUses extends RaimentError {
  constructor(lib: string, type: string, uses: readonly string[]) {
    super(
      'RAIMENT_NOT_IN_USES',
      `'${lib}' is not in the uses of thread type '${type}': add it to uses ` +
        `(thread({ uses: [${[...uses, lib].map((u) => `'${u}'`).join(', ')}], ... })); a thread reaches only the I/O libraries its type names there.`,
    )
  }
}

/**
 * A message bigger than the weave's `maxMessageBytes` (default 16 MiB, RabbitMQ 4's default
 * max_message_size): refused at the send, nothing sent. The same limit holds for a send inside
 * one weave, so a program does not break when its threads later spread over weaves.
 */
export class MessageTooLarge extends RaimentError {
  /** The message's size as it travels (its encoded body, in JSON), in bytes. */
  readonly bytes: number
  readonly limit: number
  constructor(what: string, bytes: number, limit: number) {
    super(
      'RAIMENT_MESSAGE_TOO_LARGE',
      `${what} is ${bytes} bytes encoded, more than the limit of ${limit} bytes (maxMessageBytes), and was not sent. ` +
        `Store the payload elsewhere (a file, a database, an object store) and send a reference to it; or raise the limit ` +
        `(Weave.open's maxMessageBytes, raiment start --max-message-bytes) on every weave, within the broker's max_message_size.`,
    )
    this.bytes = bytes
    this.limit = limit
  }
}

/**
 * A message between weaves that fits maxMessageBytes but that the broker refused (bigger than its
 * max_message_size): what waited for it is told so with this (a join of a thread of another
 * weave, a parent waiting for its child's exit message), not left waiting.
 */
export class MessageRefused extends RaimentError {
  constructor(what: string, why: string) {
    super('RAIMENT_MESSAGE_REFUSED', `${what}: ${why}`)
  }
}

/** A value that cannot be recorded faithfully: a function, a symbol, an unregistered class instance. */
export class UnrecordableValue extends RaimentError {
  readonly path: string
  /** @param todo what to do instead, when passing plain data or registering a class is not it */
  constructor(path: string, what: string, todo?: string) {
    super(
      'RAIMENT_UNRECORDABLE',
      `${path} is ${what}, which cannot be recorded in the journal. ` +
        (todo ?? `Pass plain data (objects, arrays, strings, numbers, Date, Map, Set, BigInt, typed arrays, Buffer), or register the class with registerClass().`),
    )
    this.path = path
  }
}

export class InvalidArgument extends RaimentError {
  constructor(message: string) {
    super('RAIMENT_INVALID_ARGUMENT', message)
  }
}

/** A module in the threads directory that cannot be a thread type: it failed to import, or exports no thread. */
export class InvalidThreadModule extends RaimentError {
  readonly file: string
  constructor(file: string, why: string, options?: { cause?: unknown }) {
    super('RAIMENT_INVALID_THREAD_MODULE', oneLine(`${file}: ${why}`), options)
    this.file = file
  }
}

export class InvalidLibraryModule extends RaimentError {
  constructor(file: string, why: string) {
    super('RAIMENT_INVALID_LIBRARY', `${file}: ${why}`)
  }
}

export class NotARaimentDb extends RaimentError {
  constructor(file: string, why: string) {
    super(
      'RAIMENT_NOT_A_RAIMENT_DB',
      `${file} is not a Raiment journal (${why}); it was left untouched. Pass another journal file.`,
    )
  }
}

/** A journal SQLite finds damaged (SQLITE_CORRUPT): a file cut short, a page overwritten. */
export class JournalDamaged extends RaimentError {
  constructor(file: string | null, why: string, cause?: unknown) {
    super(
      'RAIMENT_JOURNAL_DAMAGED',
      `${file ?? 'the journal'} is damaged (${why}); nothing more was written to it. Restore it from a backup, or, ` +
        `if its weave replicated it, rebuild it from its stream: raiment restore --from WEAVE_ID --db NEW_FILE (docs/host-loss.md).`,
      { cause },
    )
  }
}

/** An empty file where a journal was expected. */
export class EmptyDb extends RaimentError {
  constructor(file: string) {
    super(
      'RAIMENT_EMPTY_DB',
      `${file} is empty, not a Raiment journal; it was left untouched. Pass a journal with --db FILE, ` +
        `or remove the empty file: 'raiment start' and 'raiment spawn' create a journal where there is none.`,
    )
  }
}

export class DbTooNew extends RaimentError {
  constructor(file: string, version: number, supported: number) {
    super(
      'RAIMENT_DB_TOO_NEW',
      `${file} has journal schema version ${version}, but this Raiment knows versions up to ${supported}; ` +
        `it was left untouched. Upgrade raiment to open it.`,
    )
  }
}

/** The process running threads on a journal, as it recorded itself when it took the journal. */
export interface JournalOwner {
  pid: number
  host: string
  /** When it took the journal (ms since the epoch). */
  since: number
  /** Set when its durability is 'replicated' (absent in records of older Raiments). */
  replicated?: true
}

/**
 * A batch of the journal could not be committed (the disk full, the file locked by another
 * process for longer than the busy timeout, a write refused): what it held was never released,
 * and the journal commits nothing after it, so no later write can depend on what it lost.
 */
export class JournalWriteFailed extends RaimentError {
  constructor(file: string, cause: unknown) {
    super(
      'RAIMENT_JOURNAL_WRITE_FAILED',
      `a batch could not be committed to ${file} (${(cause as Error)?.message ?? String(cause)}); nothing after it is committed, and nothing of it reached a thread. Stop this weave and start it again: it resumes from what the journal holds`,
      { cause },
    )
  }
}

/**
 * Another weave runs threads on this journal (one owner at a time): a second `raiment start`, a
 * second `Weave.open()`, in another process or in this one.
 */
export class JournalOwned extends RaimentError {
  readonly file: string
  /** The owner as it recorded itself; null while it is still opening the journal. */
  readonly owner: JournalOwner | null
  constructor(file: string, owner: JournalOwner | null, here: boolean) {
    const who =
      owner === null
        ? 'another process that is opening it now'
        : here
          ? `another weave in this process (pid ${owner.pid}), open since ${new Date(owner.since).toISOString()}`
          : `a weave in pid ${owner.pid} on host ${owner.host}, open since ${new Date(owner.since).toISOString()}`
    super(
      'RAIMENT_JOURNAL_OWNED',
      `${file} is already run by ${who}; one weave runs a journal at a time. ` +
        (here
          ? 'Close that weave first (await weave.close()), or use another journal file.'
          : `Stop that weave first (SIGTERM or Ctrl-C closes it cleanly), talk to it with 'raiment spawn', 'raiment send' and 'raiment kill', or use another journal file.`),
    )
    this.file = file
    this.owner = owner
  }
}

/**
 * A journal file with more than one name (a hard link: `ln a.db b.db`): refused by whatever
 * would write it. SQLite keeps a journal's -wal and Raiment its owner lock beside the name it is
 * opened by, so through a second name a second weave (or a CLI's write) would run it beside the
 * first, each with a WAL of its own, and corrupt it (SQLite does not support hard links).
 */
export class JournalLinked extends RaimentError {
  readonly file: string
  /** How many names (hard links) the file has. */
  readonly links: number
  constructor(file: string, links: number) {
    super(
      'RAIMENT_JOURNAL_LINKED',
      `${file} has ${links} hard links (names of the one file), so it could be run through two of them at once, by two owners that do not see each other, and be corrupted; it was left untouched. ` +
        `Remove the other names (ls -i shows the file's inode number; find / -samefile ${file} lists its names), keeping one; to have a second journal, copy the file (cp) rather than link it.`,
    )
    this.file = file
    this.links = links
  }
}

/**
 * A journal file that another process replaced or deleted, holding its owner lock (a `raiment
 * restore --db FILE`, a takeover rebuilding it, a refused start removing the journal it made),
 * between each of a weave's opens of it and its taking that lock: the weave gave up after `tries`
 * opens, having written nothing (src/journal-open.ts opens again after each such replacement).
 */
export class JournalReplaced extends RaimentError {
  readonly file: string
  readonly tries: number
  /** The file the last open found at the path, as `device:inode`. */
  readonly opened: string | null
  /** What the path led to once the owner lock was taken: another file (`device:inode`), or null: none (deleted). */
  readonly found: string | null
  /**
   * @param cause what a check of the file opened threw, when it failed on the replaced file (SQLite
   *   cannot read a deleted file in WAL mode), rather than finding it replaced itself
   */
  constructor(file: string, tries: number, opened: string | null, found: string | null, cause?: Error) {
    super(
      'RAIMENT_JOURNAL_REPLACED',
      `${file} was replaced or removed by another process each of the ${tries} times this one opened it, before it could take the journal's owner lock; nothing was written to it. ` +
        `The last time, it opened the file ${opened ?? '(none)'} (device:inode) and, once locked, the path led to ${found === null ? 'no file (deleted)' : `another file, ${found}`}` +
        `${cause === undefined ? '' : `, where checking the file opened failed: ${cause.message.replace(/\.$/, '')}`}. ` +
        `Something replaces the file over and over (a restore or a takeover of this journal, retried in a loop): stop it, then open the journal again.`,
      cause === undefined ? undefined : { cause },
    )
    this.file = file
    this.tries = tries
    this.opened = opened
    this.found = found
  }
}

export class UnknownThread extends RaimentError {
  constructor(id: string) {
    super('RAIMENT_UNKNOWN_THREAD', `no thread with id '${id}' in this journal; 'raiment ps' lists them`)
  }
}

export class InvalidDump extends RaimentError {
  constructor(source: string, why: string) {
    super('RAIMENT_INVALID_DUMP', `${source} is not a usable Raiment dump: ${why}`)
  }
}

/**
 * `Weave.spawn(type, params, { id })` of an id a thread already has, with another type or other
 * params: that thread is not returned as if it were the one asked for.
 */
export class SpawnIdTaken extends RaimentError {
  readonly id: string
  constructor(id: string, type: string, why: string) {
    super(
      'RAIMENT_SPAWN_ID_TAKEN',
      `spawn: thread id '${id}' is taken by a thread of type '${type}' ${why}; a spawn with { id } returns that thread only for the same type and params (spawned once per id). Pass another id for another thread.`,
    )
    this.id = id
  }
}

/**
 * A journal its last weave replicated, opened without saying whether to replicate it: it may have
 * been taken over (its threads run on another weave now), and a weave that ran it unreplicated
 * would run them twice, where none would see it.
 */
export class ReplicationRequired extends RaimentError {
  constructor(file: string, weaveId: string) {
    super(
      'RAIMENT_REPLICATION_REQUIRED',
      `the journal ${file} of weave '${weaveId}' was replicated by its last weave: if it was lost or fenced, another weave may have taken it over and runs its threads now, and a weave running this file without replicating it would run them a second time. ` +
        `Start it replicated (raiment start --amqp URL --replicate; Weave.open: replicate: true): a weave that took it over hands it back, and a file it left behind is rebuilt from the stream. ` +
        `To stop replicating it, first check that 'raiment weaves --amqp URL' shows no weave hosting '${weaveId}', then start it with --no-replicate (Weave.open: replicate: false)`,
    )
  }
}

export class WeaveClosed extends RaimentError {
  /** `what`: what the caller asked that a closed weave cannot do. */
  constructor(what = 'spawn threads') {
    super('RAIMENT_WEAVE_CLOSED', `the weave is closed; open a new one to ${what}`)
  }
}

/** A thread moved to another weave, and what was asked of it cannot follow it from here now. */
export class ThreadMoved extends RaimentError {
  readonly to: string
  constructor(id: string, to: string, what: string) {
    super('RAIMENT_THREAD_MOVED', `thread ${id} moved to weave ${to}; ${what}`)
    this.to = to
  }
}

/**
 * The weave closed before what a caller waited to see durable was (its batch failed to commit,
 * or, under `replicated`, the broker had not confirmed it yet).
 */
export class ClosedBeforeDurable extends RaimentError {
  constructor() {
    super(
      'RAIMENT_CLOSED_BEFORE_DURABLE',
      'the weave closed before what was recorded was durable (under replicated: before the broker confirmed it); it holds only if the journal holds it when a weave next opens it',
    )
  }
}

/** A linked thread ended abnormally, so this one ends too (unless it traps exits). */
export class LinkedExit extends RaimentError {
  readonly from: string
  readonly exit: unknown
  constructor(threadId: string, from: string, status: string, exit: unknown) {
    super('RAIMENT_LINKED_EXIT', `thread ${threadId} ended because linked thread ${from} ${status === 'killed' ? 'was killed' : 'failed'}; trap exits (this.threads.trapExits(true)) to receive an exit message instead`)
    this.from = from
    this.exit = exit
  }
}

/**
 * A `retryOn` predicate threw when asked whether a call's failed attempt retries (`cause`: what
 * it threw). The call is not retried: it ends with what that attempt gave (the library's own
 * error, which carries this one as its `retryOnError` field), and the weave warns of it.
 */
export class RetryOnThrew extends RaimentError {
  readonly call: string
  readonly attempt: number
  constructor(call: string, attempt: number, cause: unknown) {
    const why = cause instanceof Error ? cause.message : String(cause)
    super(
      'RAIMENT_RETRY_ON_THREW',
      `the retryOn predicate of ${call} threw on attempt ${attempt} (${why}), so the call was not retried and ended with what that attempt gave; a predicate must return true or false for any error`,
      { cause },
    )
    this.call = call
    this.attempt = attempt
  }
}

/**
 * A test clock (`testClock()` of raiment/testing) given to a weave while another open weave uses
 * it: one clock moves one weave, which it waits for before each step of time.
 */
export class ClockInUse extends RaimentError {
  /** The weave that uses the clock. */
  readonly weaveId: string
  constructor(weaveId: string) {
    super(
      'RAIMENT_CLOCK_IN_USE',
      `this test clock is in use by weave '${weaveId}', which is open: give each weave a clock of its own (testClock()), or close that weave first`,
    )
    this.weaveId = weaveId
  }
}

export { CommonJsModule, InitCommonJs, InitConflict, InitFailed } from './errors-modules.js'

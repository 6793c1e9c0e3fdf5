/**
 * What the CLI's commands share: output, the weave-owner check, opening journals, and turning
 * values into short one-line text for tables.
 */
import { existsSync, readFileSync, rmSync, statSync } from 'node:fs'
import { relative, isAbsolute } from 'node:path'
import { inspect } from 'node:util'
import { EmptyDb, InvalidArgument, JournalDamaged, RaimentError, UnknownThreadType } from '../errors.js'
import { Journal, type Durability } from '../journal.js'
import { JournalLock } from '../journal-owner.js'
import { stopPoint } from '../crash-points.js'
import { secretKeyFile } from '../secrets/keyring.js'
import { supervisor } from '../supervisor.js'
import { loadThreadTypeNamed, threadFiles } from '../thread-types.js'
import type { AnyThreadType } from '../thread.js'

/** Options every command that opens a journal takes. */
export interface DbOptions {
  db: string
}

/** Options of the commands that load thread types and I/O libraries. */
export interface ProjectOptions extends DbOptions {
  threads: string
  ioLibs: string
}

export const DEFAULT_DB = 'raiment.db'
export const DEFAULT_THREADS = 'threads'
export const DEFAULT_IO_LIBS = 'io-libs'

/** Set in the environment of each weave `raiment start --weaves N` runs: it has an IPC channel to it. */
export const CHILD_OF_WEAVES = 'RAIMENT_WEAVES_CHILD'

/** Set once the reader of stdout has gone (`raiment ps | head -1`): later lines are dropped. */
let stdoutGone = false
let pipesQuiet = false

/** Writes one line to stdout (nothing once its reader has gone). */
export function say(line = ''): void {
  if (!stdoutGone) process.stdout.write(line + '\n')
}

/** Writes one line to stderr (notes that scripts reading stdout should not see). */
export function note(line: string): void {
  process.stderr.write(line + '\n')
}

/**
 * Makes a closed pipe on stdout or stderr end the output quietly, as a reader such as `head`
 * expects, instead of an uncaught EPIPE: what is left to print is dropped and the command ends
 * as it would have (same exit status); a weave keeps running. Other write errors still throw.
 */
export function quietPipes(): void {
  if (pipesQuiet) return
  pipesQuiet = true
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code !== 'EPIPE') throw e
      if (stream === process.stdout) stdoutGone = true
    })
  }
}

/** Anything that carries a Raiment code (`RAIMENT_…`), whichever copy of Raiment threw it. */
function raimentCode(e: unknown): string | null {
  const code = (e as { code?: unknown } | null)?.code
  return typeof code === 'string' && code.startsWith('RAIMENT_') ? code : null
}

/** What to do about the commonest failures of a file or process call, after its own message. */
const SYSTEM_HINTS: Record<string, string> = {
  ENOENT: '; check the path (the directory a file is written in must exist)',
  EACCES: "; check the path's permissions",
  EISDIR: "; give a file's path",
  ENOSPC: '; free some space and try again',
}

/**
 * The code and one-line message the CLI prints for an error: a Raiment error's own code; for
 * others, RAIMENT_SQLITE_ERROR (the journal's database), RAIMENT_SYSTEM_ERROR (a file or
 * process call, such as ENOENT), or RAIMENT_INTERNAL (anything else: a bug to report).
 */
export function describeError(e: unknown): { code: string; message: string } {
  const err = e instanceof Error ? e : new Error(String(e))
  const own = raimentCode(err)
  const code = (err as NodeJS.ErrnoException).code
  let out: { code: string; message: string }
  if (own !== null) out = { code: own, message: err.message }
  else if (err.name === 'SqliteError' && code?.startsWith('SQLITE_CORRUPT') === true) {
    const damaged = new JournalDamaged(null, `${code}: ${err.message}`, err)
    out = { code: damaged.code, message: damaged.message }
  } else if (err.name === 'SqliteError') out = { code: 'RAIMENT_SQLITE_ERROR', message: `${code ?? 'SQLITE_ERROR'}: ${err.message}` }
  else if (typeof (err as NodeJS.ErrnoException).syscall === 'string') out = { code: 'RAIMENT_SYSTEM_ERROR', message: err.message + (SYSTEM_HINTS[code ?? ''] ?? '') }
  else {
    out = {
      code: 'RAIMENT_INTERNAL',
      message: `${errorText(err)} (unexpected: a bug in Raiment or in code it loaded; RAIMENT_DEBUG=1 prints the stack)`,
    }
  }
  return { code: out.code, message: redactUrls(out.message.replace(/\s*\n\s*/g, ' ')) }
}

/** The line the CLI prints for an error: `raiment: CODE: message`. */
export function errorLine(e: unknown): string {
  const { code, message } = describeError(e)
  return `raiment: ${code}: ${message}`
}

/** Prints `raiment: CODE: message` on stderr, for a failure that is not a thrown error. */
export function complain(code: string, message: string): void {
  note(`raiment: ${code}: ${redactUrls(message)}`)
}

/** Text with the password of every `scheme://user:password@` hidden: `user:***@`. */
export function redactUrls(text: string): string {
  return text.replace(/\b([a-z][a-z0-9+.-]*:\/\/[^\s:@/]*):[^\s@/]*@/gi, '$1:***@')
}

/** The weave process that owns a journal, as it recorded itself ('unknown' while it opens it). */
export interface Owner {
  pid: number | 'unknown'
  host: string
  since: number
}

/**
 * The weave running on this journal now, or null: a weave runs exactly while it holds the
 * journal's owner lock (released by the OS when its process dies, so a killed weave, zombie or
 * not, never counts). Who it is comes from the record it wrote when it took the lock.
 */
export function runningOwner(journal: Journal): Owner | null {
  if (!journal.owned()) return null
  return journal.owner() ?? { pid: 'unknown', host: '', since: 0 }
}


/** Opens a journal only to read it; a missing or foreign file is an error and is left untouched. */
export function openReadonly(db: string): Journal {
  return new Journal(db, { readonly: true })
}

/**
 * Opens an existing journal to write to it beside its owner, if one runs, without taking the
 * owner lock (spawn, send, kill). A missing file is an error: it is not created.
 */
export function openExisting(db: string, durability: Durability = 'sync'): Journal {
  if (!existsSync(db)) {
    throw new InvalidArgument(`no journal at ${db}; start a weave there first (raiment start --db ${db})`)
  }
  refuseEmpty(db)
  return new Journal(db, { durability, own: false })
}

/**
 * For a start on a journal file not there yet: removes what it created (the file, its WAL, a
 * secret key made for it) should the start fail before the weave runs, and only with the journal. A refused start (a stream
 * ahead of the file, a broker that refused the login) leaves no empty journal that `raiment
 * restore --db` would then refuse as existing, and `ps` would show as the weave's; only the empty
 * sidecar of its owner lock stays, as every sidecar does (src/journal-owner.ts).
 * Only a journal that holds nothing and that no weave runs on, removed under its owner lock: another
 * start on the same path may have made it meanwhile and run (this one then refused as the
 * journal's second owner), a `raiment spawn` may have written a thread into it, a rebuild from
 * the stream may have filled it.
 */
export function undoFreshJournal(db: string): () => void {
  if (db === ':memory:' || existsSync(db)) return () => {}
  const key = secretKeyFile(db)
  const made = [db, `${db}-wal`, `${db}-shm`, `${db}-journal`, key].filter((f) => !existsSync(f))
  return () => {
    if (!existsSync(db)) {
      // No journal to remove (one made from now on is another's), and so no key of this start's:
      // a key is made only for a secret a thread seals, in a journal. One there now is the key of
      // a weave that started meanwhile, and removing it would lose every secret that weave seals.
      stopPoint('undo-checked')
      return
    }
    let lock: JournalLock
    try {
      lock = JournalLock.take(db)
    } catch {
      return // a weave runs on it (or its lock cannot be looked at): not ours to remove
    }
    try {
      const empty = holdsNothing(db)
      stopPoint('undo-checked')
      if (empty) for (const f of made) rmSync(f, { force: true })
    } finally {
      lock.release()
    }
  }
}

/** Whether journal `db` holds no thread, message or dead letter. */
function holdsNothing(db: string): boolean {
  let j: Journal
  try {
    j = new Journal(db, { readonly: true })
  } catch {
    return false // not a journal (or not one this can read): not ours to remove
  }
  try {
    const count = (table: string): number => j.db.prepare(`SELECT count(*) FROM ${table}`).pluck().get() as number
    return ['threads', 'inbox', 'outbox', 'dead_letters', 'control'].every((t) => count(t) === 0)
  } catch {
    return false
  } finally {
    j.close()
  }
}

/** Throws EmptyDb for an empty file: opening it to write would make it a journal. */
export function refuseEmpty(db: string): void {
  const st = statSync(db, { throwIfNoEntry: false })
  if (st?.isFile() && st.size === 0) throw new EmptyDb(db)
}

/**
 * Runs `write` in one IMMEDIATE transaction on `journal`, given the weave running on it now, or
 * null. A weave that starts meanwhile takes the lock, then waits for this transaction to commit
 * before it reads the journal, so what `write` did while finding no weave is seen by it.
 */
export function withOwner<T>(journal: Journal, write: (owner: Owner | null) => T): T {
  return journal.db
    .transaction(() => {
      const owner = runningOwner(journal)
      if (owner === null) refuseReplicatedOffline(journal)
      return write(owner)
    })
    .immediate()
}

/**
 * Refuses to write into a journal whose last weave replicated it while no weave runs on it: the
 * write would not reach its stream, and a takeover (the weave crashed) or a restore elsewhere
 * would not see it, after the CLI said it was done.
 * @throws RaimentError `RAIMENT_WEAVE_REPLICATED_DOWN`
 */
export function refuseReplicatedOffline(journal: Journal): void {
  if (journal.meta('replicating') === undefined) return
  throw new RaimentError(
    'RAIMENT_WEAVE_REPLICATED_DOWN',
    `weave '${journal.weaveId}' replicates its journal ${journal.file}, and no weave runs on this file: a write here would not reach its stream, and a takeover elsewhere would not see it. ` +
      `If 'raiment weaves --amqp URL' shows '${journal.weaveId}' hosted by another weave (taken over), its threads run there and this file is stale: run this command on that weave's host, with --db its copy (${journal.weaveId}.taken.db beside that weave's journal); starting this file would have that weave hand '${journal.weaveId}' back. ` +
      `Otherwise start the weave (raiment start --replicate --amqp URL --db ${journal.file}) and run this again`,
  )
}

/** The weave thread `id` of journal `db` moved to (its forward), if it moved. */
export function movedTo(db: Journal['db'], id: string): string | undefined {
  return db.prepare('SELECT weave FROM forwards WHERE thread = ?').pluck().get(id) as string | undefined
}

/** A path as a user would type it: relative to the working directory when it lies inside it. */
export function displayPath(p: string): string {
  if (!isAbsolute(p)) return p
  const r = relative(process.cwd(), p)
  return r && !r.startsWith('..') && !isAbsolute(r) ? r : p
}

/** A moment as the CLI prints it everywhere: ISO 8601 in UTC, to the millisecond. */
export function isoTime(ms: number): string {
  const d = new Date(ms)
  return Number.isNaN(d.getTime()) ? String(ms) : d.toISOString()
}

/** How long ago `ms` was, in the largest unit that fits: `12s`, `5m`, `3h`, `2d`. */
export function age(ms: number, now = Date.now()): string {
  const s = Math.max(0, Math.round((now - ms) / 1000))
  if (s < 60) return `${s}s`
  if (s < 3600) return `${Math.floor(s / 60)}m`
  if (s < 48 * 3600) return `${Math.floor(s / 3600)}h`
  return `${Math.floor(s / 86400)}d`
}

/** A value as one line of JSON-like text (BigInt, Map, Set, bytes and errors made readable). */
export function toText(v: unknown): string {
  if (v === undefined) return 'undefined'
  if (v instanceof Error) return errorText(v)
  try {
    return JSON.stringify(v, (_k, x: unknown) => {
      if (typeof x === 'bigint') return `${x}n`
      if (x instanceof Map) return Object.fromEntries(x as Map<string, unknown>)
      if (x instanceof Set) return [...(x as Set<unknown>)]
      if (x instanceof Uint8Array) return `<${x.length} bytes>`
      if (x instanceof Error) return errorText(x)
      if (x === undefined) return null
      return x
    })
  } catch {
    return inspect(v, { breakLength: Infinity, depth: 3 })
  }
}

/** `Name: message`, the way the CLI shows an error. */
export function errorText(e: { name?: string; message?: string }): string {
  const name = e.name ?? 'Error'
  return `${name}: ${e.message ?? ''}`
}

/** `toText` cut to at most `max` characters. */
export function short(v: unknown, max = 40): string {
  const t = (typeof v === 'string' ? v : toText(v)).replace(/\r?\n|\r/g, '\\n')
  return t.length > max ? t.slice(0, max - 1) + '…' : t
}

/** How many characters of a value a line of the weave's log holds (a thread's result, an error). */
export const LOG_VALUE_CHARS = 500

/**
 * `text`, a value of thread `id` in a line of the weave's log: past LOG_VALUE_CHARS characters,
 * its start, how long it is and where to read it whole (a 50 MB result made a 50 MB line).
 */
export function logValue(text: string, id: string): string {
  if (text.length <= LOG_VALUE_CHARS) return text
  return `${short(text, LOG_VALUE_CHARS + 1)} (${Buffer.byteLength(text)} bytes; raiment show ${id} --full)`
}

/** A `--limit N` value: a whole number from 1 up. */
export function parseLimit(text: string): number {
  const n = Number(text)
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(n) || n < 1) {
    throw new InvalidArgument(`--limit must be a whole number from 1 up, got '${text}'`)
  }
  return n
}

/** `1 thread`, `3 threads`. */
export function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`
}

/** Lays rows out in columns under a header; the last column is not padded. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  const line = (r: readonly string[]): string =>
    r
      .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd()
  return [line(header), ...rows.map(line)]
}

/**
 * A JSON argument's text: as given, or, for `-`, all that stdin holds (a message or params too
 * large for a command line: `raiment send orders - < order.json`).
 */
export function jsonArgument(text: string): string {
  if (text !== '-') return text
  try {
    return readFileSync(0, 'utf8')
  } catch (e) {
    throw new InvalidArgument(`'-' takes the JSON from stdin, which could not be read (${(e as Error).message})`)
  }
}

/** Parses the PARAMS_JSON argument of spawn (or of `example`'s command; `-`: from stdin), with an example in the error. */
export function parseParams(given: string | undefined, type: string, example = `raiment spawn ${type} '{"name":"ada"}'`): unknown {
  if (given === undefined) return undefined
  const text = jsonArgument(given)
  try {
    return JSON.parse(text) as unknown
  } catch (e) {
    throw new InvalidArgument(
      `PARAMS_JSON is not valid JSON (${(e as Error).message}): ${JSON.stringify(text)}. ` +
        `Quote it for the shell, e.g. ${example}`,
    )
  }
}

/**
 * Loads the thread type `type` of `dir`, and no other module (one that fails to load does not
 * matter here); like a weave, it also knows the built-in `raiment/supervisor`. `howToAdd`: what an
 * unknown type's error advises in place of a weave's reload.
 * @throws UnknownThreadType naming the known types, or InvalidArgument when there are none
 * @throws ThreadTypeUnavailable when its module fails to load (the load error is its cause)
 */
export async function threadType(dir: string, type: string, howToAdd?: string): Promise<AnyThreadType> {
  if (type === 'raiment/supervisor' && !threadFiles(dir).has(type)) return supervisor as AnyThreadType
  try {
    return await loadThreadTypeNamed(dir, type)
  } catch (e) {
    if (e instanceof UnknownThreadType && e.known.length === 0) {
      throw new InvalidArgument(
        `unknown thread type '${type}': ${existsSync(dir) ? `${dir} holds no thread types` : `there is no directory '${dir}'`}; pass --threads DIR`,
      )
    }
    // The built-in types are spawnable too, so they are among the known ones (as a weave lists them).
    if (e instanceof UnknownThreadType) throw new UnknownThreadType(type, e.known.includes('raiment/supervisor') ? e.known : [...e.known, 'raiment/supervisor'], undefined, howToAdd)
    throw e
  }
}

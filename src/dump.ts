/**
 * Dumps: a thread's spawn record and journal in one self-contained file (superjson), readable
 * and editable by a person. A dump records its format version; every version ever written stays
 * readable.
 */
import superjson, { type SuperJSONResult } from 'superjson'
import { existsSync, readFileSync } from 'node:fs'
import { mkdir, rename, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { decodeArgs, decodeValue, encodeArgs, encodeValue, escapeKeys, unescapeKeys } from './encoding.js'
import { errorFromRecord, type ErrorRecord } from './error-records.js'
import { crashArmed, crashPoint } from './crash-points.js'
import { InvalidDump, RaimentError, UnknownThread } from './errors.js'
import { restorableEqualities } from './equalities.js'
import type { Journal, ThreadStatus } from './journal.js'
import { splitKey, type Entry } from './weft.js'

export const DUMP_FORMAT = 1

/**
 * A dump refused: the file holds fewer of the thread's calls than it made (a journal rebuilt from
 * a journal stream carries the calls of live threads only), so its dump would replay to a
 * divergence. Nothing was written.
 */
export class RecordIncomplete extends RaimentError {
  constructor(message: string) {
    super('RAIMENT_RECORD_INCOMPLETE', message)
  }
}

export interface DumpEntry {
  seq: number
  /** `lib.method` */
  call: string
  args: unknown[]
  /**
   * The arguments' text as the journal recorded it, kept only where `args` re-encoded would not
   * give it back (an Error, a hole in an array, an invalid Date, a Float64Array with NaN): replay
   * matches the thread's request against it while `args` are as dumped (see `argsKey`). Edit
   * `args`, not this.
   */
  argsText?: string
  ord: number
  ok: boolean
  value?: unknown
  error?: ErrorRecord
  /** Wall-clock ms when the call started, and how long it took (ms). */
  started: number
  duration: number
}

export interface Dump {
  format: number
  thread: {
    id: string
    type: string
    params: unknown
    parent: string | null
    status: ThreadStatus
    result?: unknown
    error?: ErrorRecord
    created: number
    ended: number | null
    /** How many times the thread continued as new (`threads.continueAsNew`); absent for none. The record is its current run's. */
    continued?: number
  }
  entries: DumpEntry[]
}

/**
 * Builds the dump of a thread from its journal, as of one commit. `tick(done, total)` is called
 * every 16,384 entries decoded (and once at the end): building is synchronous, so a progress line
 * is drawn from there.
 */
export function makeDump(journal: Journal, id: string, tick?: (done: number, total: number) => void): Dump {
  // One read transaction (DEFERRED: it takes no write lock, and a read-only connection may begin
  // it): the row, journal_main and journal_tail are read from one snapshot. Read one by one, a
  // weave's group commit (another process) could move the tail into journal_main between two
  // reads, and the dump lacked the entries moved (a gap in seq), or held a row of another run.
  const [row, rows] = journal.db.transaction(() => [journal.thread(id), journal.entries(id)] as const).deferred()
  if (!row) throw new UnknownThread(id)
  const thread: Dump['thread'] = {
    id: row.id,
    type: row.type,
    params: decodeValue(row.params),
    parent: row.parent,
    status: row.status,
    created: row.created,
    ended: row.ended,
  }
  const continued = (row as { continued?: number }).continued ?? 0
  if (continued > 0) thread.continued = continued
  if (row.outcome !== null) {
    if (row.status === 'done') thread.result = decodeValue(row.outcome)
    else if (row.status === 'failed') thread.error = decodeValue(row.outcome) as ErrorRecord
  }
  const entries = rows.map(([seq, key, ord, ok, outcome, started, duration], i): DumpEntry => {
    if (tick !== undefined && (i & 0x3fff) === 0) tick(i, rows.length)
    const { call, args } = splitKey(key)
    const decoded = decodeArgs(args)
    const e: DumpEntry = encodesAs(decoded, args)
      ? { seq, call, args: decoded, ord, ok: ok === 1, started, duration }
      : { seq, call, args: decoded, argsText: args, ord, ok: ok === 1, started, duration }
    if (ok === 1) e.value = decodeValue(outcome)
    else e.error = decodeValue(outcome) as ErrorRecord
    return e
  })
  tick?.(rows.length, rows.length)
  return { format: DUMP_FORMAT, thread, entries }
}

/**
 * The text of a dump file.
 * @throws InvalidDump when `d` is not a dump (for example what `record()` returns, whose `dump`
 *   property is the dump)
 */
export function dumpText(d: Dump): string {
  checkDump(d, 'the value given to dumpText()')
  // Keys superjson refuses (a field named `constructor` in a recorded value) are escaped.
  return JSON.stringify(superjson.serialize(escapeKeys(d)), null, 2) + '\n'
}

/**
 * Reads a dump from a file path, its text, or an already-parsed dump object: a dump, or a dump
 * file's text parsed (`JSON.parse`), its superjson envelope `{ json, meta }`, read as the text is.
 * @throws InvalidDump naming what is wrong
 * @example
 * readDump(JSON.parse(readFileSync('fixtures/order.dump.json', 'utf8'))) // the same as readDump('fixtures/order.dump.json')
 */
export function readDump(source: string | Dump): Dump {
  if (typeof source !== 'string') return checkDump(isEnvelope(source) ? fromEnvelope(source, 'the dump') : source, 'the dump')
  const { text, where } = dumpSource(source)
  let raw: { json?: unknown; meta?: unknown }
  try {
    raw = JSON.parse(text) as { json?: unknown; meta?: unknown }
  } catch (e) {
    throw new InvalidDump(where, `not valid JSON (${(e as Error).message})`)
  }
  return checkDump(isEnvelope(raw) ? fromEnvelope(raw, where) : unescapeKeys(raw), where)
}

/** A dump file's text as parsed: superjson's `{ json, meta }` around the dump (which has no `json` field of its own). */
function isEnvelope(raw: unknown): raw is SuperJSONResult {
  return raw !== null && typeof raw === 'object' && 'json' in raw && !('format' in raw)
}

/** The dump a superjson envelope holds (the envelope is left as it was). */
function fromEnvelope(raw: SuperJSONResult, where: string): unknown {
  try {
    return unescapeKeys(superjson.deserialize(restorableEqualities(raw)))
  } catch (e) {
    const unknown = unknownClassOf(e)
    if (unknown !== undefined) {
      throw new InvalidDump(
        where,
        `it holds a value of class '${unknown}', which no module loaded has registered (registerClass): import the module that registers it first (raiment replay and raiment dump load the thread types and ./io-libs: run them from the project directory, or pass --threads and --io-libs)`,
      )
    }
    throw new InvalidDump(where, `its values cannot be read (${(e as Error).message})`)
  }
}

/** The class a value is of that this process has not registered, if that is why `e` was thrown (superjson's message). */
export function unknownClassOf(e: unknown): string | undefined {
  return /unknown class '(.*)'/.exec((e as Error | undefined)?.message ?? '')?.[1]
}

/** The text of a dump given as its text or its path, and how to name it. */
function dumpSource(source: string): { text: string; where: string } {
  if (source.trimStart().startsWith('{')) return { text: source, where: 'the dump text' }
  try {
    return { text: readFileSync(source, 'utf8'), where: source }
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    const why = code === 'ENOENT' ? 'there is no such file; give the path of a dump (raiment dump ID -o FILE writes one)' : code === 'EISDIR' ? 'it is a directory; give the path of a dump file' : (e as Error).message
    throw new InvalidDump(source, why)
  }
}

/**
 * The thread type a dump (its text or path) names, read without decoding its values (which may
 * need classes that the type's modules register); null when it names none (`readDump` says why).
 */
export function dumpTypeName(source: string): string | null {
  try {
    const raw = JSON.parse(dumpSource(source).text) as { json?: { thread?: { type?: unknown } }; thread?: { type?: unknown } }
    const type = (raw.json ?? raw).thread?.type
    return typeof type === 'string' ? type : null
  } catch {
    return null
  }
}

/** How a complete dump is made, for a file that is not one. */
const MAKE_ONE = 'a dump holds a thread and its record: raiment dump ID -o FILE writes one (ID as raiment ps lists it), a weave writes one when a thread fails, and record() gives one in a test'

function checkDump(d: unknown, where: string): Dump {
  const o = d as Dump
  if (o && typeof o === 'object' && 'dump' in o && 'end' in o) {
    throw new InvalidDump(where, "it is what record() returns ({ dump, end, result }); its 'dump' property is the dump: const { dump } = await record(type, params)")
  }
  if (!o || typeof o !== 'object' || typeof o.format !== 'number') throw new InvalidDump(where, "no 'format' field")
  if (!Number.isInteger(o.format) || o.format < 1) {
    throw new InvalidDump(where, `'format' is ${o.format}, and dump formats are whole numbers from 1 (this Raiment writes ${DUMP_FORMAT}); put back the format the dump was written with, or dump the thread again (raiment dump ID)`)
  }
  if (o.format > DUMP_FORMAT) throw new InvalidDump(where, `format ${o.format} is newer than this Raiment reads (${DUMP_FORMAT}); upgrade raiment`)
  if (!o.thread || typeof o.thread.type !== 'string') throw new InvalidDump(where, `no 'thread.type', so it is not a complete dump; ${MAKE_ONE}`)
  if (!Array.isArray(o.entries)) throw new InvalidDump(where, `no 'entries' array, so it is not a complete dump; ${MAKE_ONE}`)
  const seqs = new Set<number>()
  o.entries.forEach((e, i) => {
    if (e === null || typeof e !== 'object' || typeof e.call !== 'string' || !Array.isArray(e.args) || !Number.isInteger(e.ord) || e.ord < 0 || typeof e.ok !== 'boolean') {
      throw new InvalidDump(where, `entries[${i}] needs call (string), args (array), ord (a whole number from 0) and ok (boolean)`)
    }
    if (!e.ok && (e.error === null || typeof e.error !== 'object' || typeof e.error.name !== 'string' || typeof e.error.message !== 'string')) {
      throw new InvalidDump(where, `entries[${i}] (${e.call}) has ok false and no error { name, message } (strings; fields, its own fields, may be left out): give it one, or make it ok with a value`)
    }
    // Replay orders the outcomes by seq: without one, an entry has no place in the record.
    if (!Number.isInteger(e.seq) || e.seq < 0) {
      throw new InvalidDump(where, `entries[${i}] (${e.call}) has ${e.seq === undefined ? 'no seq' : `seq ${JSON.stringify(e.seq)}`}; each entry needs seq, its place in the record (a whole number from 0, in the order the outcomes were recorded): give it one`)
    }
    if (seqs.has(e.seq)) throw new InvalidDump(where, `entries[${i}] (${e.call}) has seq ${e.seq}, as an entry before it does; each entry needs a seq of its own`)
    seqs.add(e.seq)
    if (e.argsText !== undefined && typeof e.argsText !== 'string') {
      throw new InvalidDump(where, `entries[${i}] (${e.call}) has an 'argsText' that is not a string; remove it (replay then matches the entry's args)`)
    }
  })
  return o
}

/**
 * The replay entries of a dump, in recorded completion order. Each outcome is a copy (made here,
 * at each call): the thread may change what it is given, as live, where each outcome is decoded
 * from its text; the dump stays as it was, to be replayed again.
 */
export function dumpEntries(d: Dump): Entry[] {
  return [...d.entries]
    .sort((a, b) => a.seq - b.seq)
    .map((e) => ({
      seq: e.seq,
      key: e.call + ':' + argsKey(e),
      ord: e.ord,
      ok: e.ok,
      text: undefined,
      value: e.ok ? copyOf(e.value) : errorFromRecord(copyOf(e.error ?? { name: 'Error', message: 'unknown', fields: {} })),
      call: null,
    }))
}

/**
 * A copy of a value of a dump, as the journal would give it back (`decodeValue(encodeValue(v))`),
 * for a thread to be handed: live, a thread is never handed an object another holds.
 */
export function copyOf<T>(v: T): T {
  if (typeof v !== 'object' || v === null) return v
  try {
    return decodeValue(encodeValue(v, 'a value of the dump')) as T
  } catch {
    // Not recordable again here (an instance of a class this process has not registered): as it is.
    return v
  }
}

/**
 * The arguments' text that replay matches the thread's request against: the text the journal
 * recorded, `encodeArgs` of what the thread asked for. A dump shows it decoded (`args`), and
 * decoding does not always give back a value that encodes to the same text (an Error gains its
 * `cause`, a hole in an array reads as null, the numbers of a Float64Array as written): so
 * makeDump keeps the text itself in `argsText` where `args` re-encoded would not give it, and it
 * is used while `args` are as dumped, that is while they encode as `argsText` decoded does. Once
 * a person has edited `args` they differ, and the edit wins: they are encoded, as is every entry
 * without `argsText` (every entry whose args re-encode exactly, and all of a dump written before
 * `argsText` was, which so replays as it did).
 */
function argsKey(e: DumpEntry): string {
  const text = encodeArgs(e.args)
  if (e.argsText === undefined || text === e.argsText) return text
  let recorded: string
  try {
    recorded = encodeArgs(decodeArgs(e.argsText))
  } catch {
    // Not a text the journal wrote (edited by hand): the args are what is meant.
    return text
  }
  return recorded === text ? e.argsText : text
}

/** Whether `args` (decoded from `text`) encode to `text` again. */
function encodesAs(args: unknown[], text: string): boolean {
  try {
    return encodeArgs(args) === text
  } catch {
    // Something decoded that cannot be recorded again (a class this process has not registered).
    return false
  }
}

/**
 * Whether a thread that failed with `error` leaves a dump: not one ended by the end of a thread
 * linked to it (`LinkedExit`, imposed by the weave), which replays to nothing but that end. The
 * thread whose failure set it off leaves its own; a kill of a supervisor leaves none for its
 * children.
 */
export function leavesDump(error: ErrorRecord): boolean {
  return !(error.weave === true && error.fields['code'] === 'RAIMENT_LINKED_EXIT')
}

/** `leavesDump` of a recorded end; an end that cannot be read does (its dump shows what there is). */
function leavesDumpText(outcome: string): boolean {
  try {
    return leavesDump(decodeValue(outcome) as ErrorRecord)
  } catch {
    return true
  }
}

/** The errors thread ends were told with (`ThreadEnd.error`) that left no dump. */
const noDump = new WeakSet<object>()

/** `error`, the error a thread's end is told with, rebuilt from `record`: remembered when it leaves no dump. */
export function toldError(error: Error, record: ErrorRecord): Error {
  if (!leavesDump(record)) noDump.add(error)
  return error
}

/** Whether the end told with `error` left no dump (`Weave.dumpPath`). */
export function leftNoDump(error: unknown): boolean {
  return typeof error === 'object' && error !== null && noDump.has(error)
}

/** The `created` of the dump in `file` (the thread's start, telling two threads of one id apart), or null: none, or not a dump. */
function createdOf(file: string): number | null {
  if (!existsSync(file)) return null
  try {
    const created = superjson.parse<Partial<Dump> | null>(readFileSync(file, 'utf8'))?.thread?.created
    return typeof created === 'number' ? created : null
  } catch {
    return null
  }
}

/**
 * A dump in `file` of another thread of the same id (a journal made again, or a copy of one, by
 * the same weave id) is kept, renamed `<n>.<its created>.json`, not overwritten (a user trial
 * lost a failed thread's dump so).
 */
async function keepOther(file: string, created: number): Promise<void> {
  const other = createdOf(file)
  if (other !== null && other !== created) await rename(file, `${file.slice(0, -'.json'.length)}.${other}.json`)
}

/** Where a weave writes the dumps of its failed threads, and the writes not yet done. */
export class DumpWriter {
  /** The dumps directory, or false: no dumps. */
  readonly #dir: string | false
  readonly #journal: Journal
  /** Told when a dump cannot be written. */
  readonly #onError: (err: Error) => void
  readonly #writes = new Set<Promise<void>>()

  constructor(dir: string | false, journal: Journal, onError: (err: Error) => void) {
    this.#dir = dir
    this.#journal = journal
    this.#onError = onError
  }

  /** Where the dump of thread `id` is written, or null when there are no dumps. */
  path(id: string): string | null {
    return this.#dir === false ? null : join(this.#dir, ...id.split('/')) + '.json'
  }

  /**
   * Writes the dumps missing of the threads that failed since `since` (ms since the epoch): a
   * weave that crashed between a thread's end and its dump left none. Once they are written (or
   * their failures reported), the journal's `dumps-due` mark is cleared.
   */
  writeMissing(since: number): void {
    if (crashArmed) crashPoint('dumps-missing')
    const writes: Array<Promise<void>> = []
    if (this.#dir !== false) {
      const failed = this.#journal.db.prepare("SELECT id, outcome, created FROM threads WHERE status = 'failed' AND ended >= ?").all(since) as Array<{ id: string; outcome: string; created: number }>
      for (const { id, outcome, created } of failed) {
        if (leavesDumpText(outcome) && createdOf(this.path(id)!) !== created) writes.push(this.write(id))
      }
    }
    void Promise.all(writes).then(() => {
      if (!this.#journal.closed) this.#journal.setMeta('dumps-due', null)
    })
  }

  /**
   * Writes the dump of thread `id` (if there are dumps), from its journal as committed. The
   * promise resolves when it is written or its failure reported.
   */
  write(id: string): Promise<void> {
    const file = this.path(id)
    if (file === null) return Promise.resolve()
    const dump = makeDump(this.#journal, id)
    const text = dumpText(dump)
    // Written beside it and renamed: a crash leaves the whole dump or none, never half of one.
    const tmp = `${file}.${process.pid}.tmp`
    const p = mkdir(dirname(file), { recursive: true })
      .then(() => writeFile(tmp, text))
      .then(() => keepOther(file, dump.thread.created))
      .then(() => rename(tmp, file))
      .catch((e: unknown) => {
        this.#onError(new RaimentError('RAIMENT_DUMP_NOT_WRITTEN', `could not write the dump of ${id} to ${file}: ${(e as Error).message}`, { cause: e }))
      })
      .finally(() => this.#writes.delete(p))
    this.#writes.add(p)
    return p
  }

  /** Resolves once every write started so far is done. */
  async settled(): Promise<void> {
    await Promise.all(this.#writes)
  }
}

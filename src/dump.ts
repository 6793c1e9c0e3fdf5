/**
 * Dumps: a thread's spawn record and journal in one self-contained file (superjson), readable
 * and editable by a person. A dump records its format version; every version ever written stays
 * readable.
 */
import superjson from 'superjson'
import { existsSync, readFileSync } from 'node:fs'
import { mkdir, rename, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { decodeArgs, decodeValue, encodeArgs, escapeKeys, unescapeKeys } from './encoding.js'
import { errorFromRecord, type ErrorRecord } from './error-records.js'
import { crashArmed, crashPoint } from './crash-points.js'
import { InvalidDump, RaimentError, UnknownThread } from './errors.js'
import type { Journal, ThreadStatus } from './journal.js'
import { splitKey, type Entry } from './weft.js'

export const DUMP_FORMAT = 1

export interface DumpEntry {
  seq: number
  /** `lib.method` */
  call: string
  args: unknown[]
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
 * Builds the dump of a thread from its journal. `tick(done, total)` is called every 16,384
 * entries decoded (and once at the end): building is synchronous, so a progress line is drawn
 * from there.
 */
export function makeDump(journal: Journal, id: string, tick?: (done: number, total: number) => void): Dump {
  const row = journal.thread(id)
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
  const rows = journal.entries(id)
  const entries = rows.map(([seq, key, ord, ok, outcome, started, duration], i): DumpEntry => {
    if (tick !== undefined && (i & 0x3fff) === 0) tick(i, rows.length)
    const { call, args } = splitKey(key)
    const e: DumpEntry = { seq, call, args: decodeArgs(args), ord, ok: ok === 1, started, duration }
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
 * Reads a dump from a file path, its text, or an already-parsed dump object.
 * @throws InvalidDump naming what is wrong
 */
export function readDump(source: string | Dump): Dump {
  if (typeof source !== 'string') return checkDump(source, 'the dump')
  let text = source
  let where = 'the dump text'
  if (!source.trimStart().startsWith('{')) {
    where = source
    try {
      text = readFileSync(source, 'utf8')
    } catch (e) {
      throw new InvalidDump(source, (e as Error).message)
    }
  }
  let parsed: unknown
  try {
    const raw = JSON.parse(text) as { json?: unknown; meta?: unknown }
    parsed = unescapeKeys(raw && typeof raw === 'object' && 'json' in raw ? superjson.deserialize(raw as never) : raw)
  } catch (e) {
    throw new InvalidDump(where, `not valid JSON (${(e as Error).message})`)
  }
  return checkDump(parsed, where)
}

function checkDump(d: unknown, where: string): Dump {
  const o = d as Dump
  if (o && typeof o === 'object' && 'dump' in o && 'end' in o) {
    throw new InvalidDump(where, "it is what record() returns ({ dump, end, result }); its 'dump' property is the dump: const { dump } = await record(type, params)")
  }
  if (!o || typeof o !== 'object' || typeof o.format !== 'number') throw new InvalidDump(where, "no 'format' field")
  if (o.format > DUMP_FORMAT) throw new InvalidDump(where, `format ${o.format} is newer than this Raiment reads (${DUMP_FORMAT}); upgrade raiment`)
  if (!o.thread || typeof o.thread.type !== 'string') throw new InvalidDump(where, "no 'thread.type'")
  if (!Array.isArray(o.entries)) throw new InvalidDump(where, "no 'entries' array")
  o.entries.forEach((e, i) => {
    if (typeof e.call !== 'string' || !Array.isArray(e.args) || typeof e.ord !== 'number' || typeof e.ok !== 'boolean') {
      throw new InvalidDump(where, `entries[${i}] needs call (string), args (array), ord (number) and ok (boolean)`)
    }
  })
  return o
}

/** The replay entries of a dump, in recorded completion order. */
export function dumpEntries(d: Dump): Entry[] {
  return [...d.entries]
    .sort((a, b) => a.seq - b.seq)
    .map((e) => ({
      seq: e.seq,
      key: e.call + ':' + encodeArgs(e.args),
      ord: e.ord,
      ok: e.ok,
      text: undefined,
      value: e.ok ? e.value : errorFromRecord(e.error ?? { name: 'Error', message: 'unknown', fields: {} }),
      call: null,
    }))
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
      const failed = this.#journal.db.prepare("SELECT id FROM threads WHERE status = 'failed' AND ended >= ?").pluck().all(since) as string[]
      for (const id of failed) if (!existsSync(this.path(id)!)) writes.push(this.write(id))
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
    const text = dumpText(makeDump(this.#journal, id))
    // Written beside it and renamed: a crash leaves the whole dump or none, never half of one.
    const tmp = `${file}.${process.pid}.tmp`
    const p = mkdir(dirname(file), { recursive: true })
      .then(() => writeFile(tmp, text))
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

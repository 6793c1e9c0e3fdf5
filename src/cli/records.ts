/**
 * What the CLI shows of a journal, decoded once for both of its outputs: the text tables, and
 * the JSON of `--json` (`ps`, `show`, `dead-letters`, `spawn`), whose shapes are documented in
 * docs/cli.md and only ever gain fields.
 *
 * Invariant: a `--json` output holds every recorded value whole. A value JSON cannot hold as it
 * is becomes `{"$type": T, "value": V}` (see `jsonValue`), so a script can tell the string
 * "2026-01-01T00:00:00.000Z" from a Date, and `undefined` from `null`.
 */
import { inFlightCalls } from '../in-flight.js'
import { passivatedOf, type PassivatedView } from '../passivation/listing.js'
import { parkedOf } from '../parked-listing.js'
import { oldCodeOf } from '../old-code.js'
import superjson from 'superjson'
import type { Dump, DumpEntry } from '../dump.js'
import { decodeArgs, decodeTagged, decodeValue, registerCodecs } from '../encoding.js'
import { type ErrorRecord } from '../error-records.js'
import { UnknownThread } from '../errors.js'
import type { Journal, ThreadRow } from '../journal.js'
import { splitKey } from '../weft.js'
import { threadAttempts, type AttemptView } from '../retry/view.js'
import { isoTime, movedTo } from './common.js'

/**
 * The calls a built-in library's thread-side helper makes on the thread's behalf, and the helper:
 * Raiment's own bookkeeping, which the thread's code did not write. (`clock.sleep` is made of
 * `clock.now` and `clock.sleepUntil`, and `fetch.get`/`post` of `fetch.request`, but those are
 * methods a thread also calls itself, so the record cannot tell whose they were.)
 */
const VIA: Readonly<Record<string, string>> = {
  'mailbox.now': 'mailbox.receive',
  'mailbox.take': 'mailbox.receive',
  'mailbox.peek': 'mailbox.receive',
  'mailbox.takeNumber': 'mailbox.receive',
}

/** A thread as the CLI shows it, its values decoded: as in a dump, with how many calls it made. */
export type ThreadView = Dump['thread'] & {
  /** When moved: the weave it moved to. */
  movedTo?: string
  /** The trace context (W3C traceparent) of its latest run, when OpenTelemetry was on. */
  trace?: string
  /** When passivated (out of memory, waiting: docs/passivation.md): what it waits for. */
  passivated?: PassivatedView
  /**
   * When it waits for its type (ms since the epoch): the last weave on its journal could not run
   * its type, and left it waiting, not run (src/weave-parked.ts).
   */
  waitingForType?: number
  /** A running thread whose record its code did not replay (onDivergence 'wait'): since when, and where it diverges. */
  waitingForCode?: { since: number; diverges: string }
  /** A running thread a reload kept on the code it started with: why (src/old-code.ts). */
  oldCode?: string
  calls: number
}

/** One journaled call as the CLI shows it: as in a dump, with the helper that made it. */
export interface CallView extends DumpEntry {
  /** The Raiment helper that made this call for the thread (`mailbox.receive`), or null. */
  via: string | null
  /** Its failed attempts, when it was retried (docs/retries.md). */
  attempts?: AttemptView[]
}

/**
 * Decodes a value of the journal. A value of a class registered by the thread's code (which this
 * process has not loaded) comes back as an object of a stand-in class of the same name, instead
 * of failing.
 */
export function decodeShown(text: string): unknown {
  try {
    return decodeValue(text)
  } catch (e) {
    return decodeTagged(text, () => { throw e }, standIns(text))
  }
}

/** A recorded value decoded, or its text when it cannot be. */
export function decodeSafe(text: string): unknown {
  try {
    return decodeShown(text)
  } catch {
    return text
  }
}

/** Decodes the arguments of a journal key, as `decodeShown` does a value. */
export function decodeArgsShown(text: string): unknown[] {
  try {
    return decodeArgs(text)
  } catch (e) {
    return decodeTagged(text, () => { throw e }, standIns(text)) as unknown[]
  }
}

/** A superjson that knows a stand-in class for every class named in the text's annotations. */
function standIns(text: string): superjson {
  const sj = new superjson()
  registerCodecs(sj)
  for (const [, name] of text.matchAll(/\["class","((?:[^"\\]|\\.)*)"\]/g)) {
    const id = JSON.parse(`"${name!}"`) as string
    const StandIn = { [id]: class {} }[id]!
    sj.registerClass(StandIn, { identifier: id })
  }
  return sj
}

/** A thread row with its values decoded; `calls` counts its journaled calls. */
export function threadView(row: ThreadRow, journal: Journal, calls = row.calls): ThreadView {
  const t: ThreadView = {
    id: row.id,
    type: row.type,
    status: row.status,
    parent: row.parent,
    params: decodeShown(row.params),
    created: row.created,
    ended: row.ended,
    calls,
  }
  if (row.outcome !== null && row.status === 'done') t.result = decodeShown(row.outcome)
  else if (row.outcome !== null && row.status === 'failed') t.error = decodeShown(row.outcome) as ErrorRecord
  else if (row.status === 'moved') {
    const to = movedTo(journal.db, row.id)
    if (to !== undefined) t.movedTo = to
  }
  const continued = (row as { continued?: number }).continued ?? 0
  if (continued > 0) t.continued = continued
  // Where its latest run is in the traces, when OpenTelemetry was on (docs/observability.md).
  if (typeof row.trace === 'string') t.trace = row.trace
  if (row.status === 'running') {
    const p = passivatedOf(journal.db, row.id)
    if (p !== undefined) t.passivated = p
  }
  if (row.status === 'running') {
    const why = oldCodeOf(journal.db, row.id)
    if (why !== undefined) t.oldCode = why
  }
  if (row.status === 'running' || row.status === 'pending') {
    const p = parkedOf(journal.db, row.id)
    if (p?.diverges !== undefined) t.waitingForCode = { since: p.since, diverges: p.diverges }
    else if (p !== undefined) t.waitingForType = p.since
  }
  return t
}

/**
 * A thread and its journal, in completion order; `retrying`: the failed attempts of calls that
 * have no outcome yet (waiting for their next attempt).
 */
export function threadWithCalls(journal: Journal, id: string): { thread: ThreadView; calls: CallView[]; retrying: AttemptView[]; inFlight: InFlightView[] } {
  const row = journal.thread(id)
  if (row === undefined) throw new UnknownThread(id)
  const attempts = threadAttempts(journal, id, decodeShown)
  const calls = journal.entries(id).map(([seq, key, ord, ok, outcome, started, duration]): CallView => {
    const { call, args } = splitKey(key)
    const c: CallView = { seq, call, args: decodeArgsShown(args), ord, ok: ok === 1, started, duration, via: VIA[call] ?? null }
    if (ok === 1) c.value = decodeShown(outcome)
    else c.error = decodeShown(outcome) as ErrorRecord
    const tried = attempts.of(key, ord)
    if (tried !== undefined) c.attempts = tried
    return c
  })
  // An ended thread counts the calls it made (as `ps` does), though a file rebuilt from a stream
  // holds only live threads' calls: `calls` is what this file holds.
  const ended = row.status !== 'running' && row.status !== 'pending'
  return { thread: threadView(row, journal, ended ? Math.max(row.calls, calls.length) : calls.length), calls, retrying: attempts.inFlight(), inFlight: inFlightOf(journal, id) }
}

/**
 * A thread as JSON: `{id, type, status, parent, created, ended, calls, params}`, with `result`
 * when done, `error` when failed, `movedTo` when moved, `trace` when OpenTelemetry was on. Times are ISO 8601 strings in UTC.
 */
export function threadJson(t: ThreadView): Record<string, unknown> {
  const o: Record<string, unknown> = {
    id: t.id,
    type: t.type,
    status: t.status,
    parent: t.parent,
    created: isoTime(t.created),
    ended: t.ended === null ? null : isoTime(t.ended),
    calls: t.calls,
    params: jsonValue(t.params),
  }
  if ('result' in t) o['result'] = jsonValue(t.result)
  if (t.error !== undefined) o['error'] = errorJson(t.error)
  if (t.movedTo !== undefined) o['movedTo'] = t.movedTo
  if (t.continued !== undefined) o['continued'] = t.continued
  if (t.trace !== undefined) o['trace'] = t.trace
  if (t.passivated !== undefined) {
    const p = t.passivated
    o['passivated'] = { since: isoTime(p.since), due: p.due === null ? null : isoTime(p.due), mailbox: p.mailbox, joins: p.joins }
  }
  if (t.waitingForType !== undefined) o['waitingForType'] = { since: isoTime(t.waitingForType) }
  if (t.oldCode !== undefined) o['oldCode'] = { why: t.oldCode }
  if (t.waitingForCode !== undefined) o['waitingForCode'] = { since: isoTime(t.waitingForCode.since), diverges: t.waitingForCode.diverges }
  return o
}

/**
 * A call as JSON: `{seq, call, args, ord, ok, value | error, started, ms, via}`; `started` is
 * ISO 8601 in UTC, `ms` the duration.
 */
export function callJson(c: CallView): Record<string, unknown> {
  return {
    seq: c.seq,
    call: c.call,
    args: c.args.map(jsonValue),
    ord: c.ord,
    ok: c.ok,
    ...(c.ok ? { value: jsonValue(c.value) } : { error: errorJson(c.error) }),
    started: isoTime(c.started),
    ms: Math.round(c.duration * 1000) / 1000,
    via: c.via,
    ...(c.attempts === undefined ? {} : { attempts: c.attempts.map(attemptJson) }),
  }
}

/** A call the library was asked for and has not answered, as the journal says (src/in-flight.ts). */
export interface InFlightView {
  call: string
  args: unknown[]
  ord: number
  started: number
}

/** The calls of thread `id` in flight, as its journal says (`raiment show`, the UI's thread page). */
export function inFlightOf(journal: Journal, id: string): InFlightView[] {
  return inFlightCalls(journal, id).map(({ key, ord, started }): InFlightView => {
    const { call, args } = splitKey(key)
    return { call, args: decodeArgsShown(args), ord, started }
  })
}

/** A call in flight as JSON: `{call, args, ord, started}`, its start ISO 8601 in UTC. */
export function inFlightJson(c: InFlightView): Record<string, unknown> {
  return { call: c.call, args: c.args.map(jsonValue), ord: c.ord, started: isoTime(c.started) }
}

/** A failed attempt as JSON: `{n, call, error, started, ended, due}`, times ISO 8601 in UTC. */
export function attemptJson(a: AttemptView): Record<string, unknown> {
  return { n: a.n, call: a.call, error: errorJson(a.error), started: isoTime(a.started), ended: isoTime(a.ended), due: isoTime(a.due) }
}

/** A recorded error as JSON: `{name, message, fields, stack?, cause?}`. */
export function errorJson(e: ErrorRecord | undefined): Record<string, unknown> {
  if (e === undefined || e === null || typeof e !== 'object') return { name: 'Error', message: String(e), fields: {} }
  const o: Record<string, unknown> = { name: e.name, message: e.message, fields: jsonValue(e.fields ?? {}) }
  if (typeof e.stack === 'string') o['stack'] = e.stack
  if (e.cause !== undefined) o['cause'] = 'name' in e.cause ? errorJson(e.cause) : { value: jsonValue(e.cause.value) }
  return o
}

const tag = (type: string, value?: unknown): Record<string, unknown> => (value === undefined ? { $type: type } : { $type: type, value })

/**
 * A decoded value as plain JSON. What JSON holds as it is stays as it is; the rest becomes
 * `{"$type": T, "value": V}`:
 *
 * | value | T | V |
 * | --- | --- | --- |
 * | undefined (also an array hole) | `undefined` | (none) |
 * | NaN, ±Infinity, -0 | `number` | `"NaN"`, `"Infinity"`, `"-Infinity"`, `"-0"` |
 * | BigInt | `bigint` | its decimal digits, a string |
 * | Date | `Date` | ISO 8601 in UTC (null if invalid) |
 * | Map | `Map` | an array of `[key, value]` pairs |
 * | Set | `Set` | an array |
 * | RegExp, URL | `RegExp`, `URL` | its text (`/a+/g`, the href) |
 * | typed array | its class (`Uint8Array`…) | an array of numbers (of strings for BigInt64Array) |
 * | Error | `Error` | `{name, message, …its own fields}` |
 * | an instance of a registered class | the class name | its own fields |
 * | a plain object with its own `$type` key | `Object` | the object |
 */
export function jsonValue(v: unknown): unknown {
  switch (typeof v) {
    case 'string':
    case 'boolean':
      return v
    case 'number':
      if (Number.isFinite(v) && !Object.is(v, -0)) return v
      return tag('number', Object.is(v, -0) ? '-0' : String(v))
    case 'undefined':
      return tag('undefined')
    case 'bigint':
      return tag('bigint', v.toString())
    case 'object':
      break
    default:
      // Functions and symbols are never recorded (encoding refuses them).
      return String(v)
  }
  if (v === null) return null
  if (Array.isArray(v)) {
    const out: unknown[] = []
    for (let i = 0; i < v.length; i++) out.push(i in v ? jsonValue(v[i]) : tag('undefined'))
    return out
  }
  const proto = Object.getPrototypeOf(v) as object | null
  if (proto === Object.prototype || proto === null) {
    const fields = fieldsOf(v)
    return Object.hasOwn(v, '$type') ? tag('Object', fields) : fields
  }
  if (v instanceof Date) return tag('Date', Number.isNaN(v.getTime()) ? null : v.toISOString())
  if (v instanceof Map) return tag('Map', [...(v as Map<unknown, unknown>)].map(([k, x]) => [jsonValue(k), jsonValue(x)]))
  if (v instanceof Set) return tag('Set', [...(v as Set<unknown>)].map(jsonValue))
  if (v instanceof RegExp) return tag('RegExp', String(v))
  if (v instanceof URL) return tag('URL', v.href)
  if (ArrayBuffer.isView(v) && !(v instanceof DataView)) {
    const items = [...(v as unknown as Iterable<number | bigint>)]
    // Infinity, NaN and -0 tagged as a number is elsewhere (JSON holds none of them).
    return tag(v.constructor.name, items.map((x) => (typeof x === 'bigint' ? x.toString() : jsonValue(x))))
  }
  if (v instanceof Error) return tag('Error', { name: v.name, message: v.message, ...fieldsOf(v) })
  return tag((v.constructor as { name?: string } | undefined)?.name || 'Object', fieldsOf(v))
}

function fieldsOf(o: object): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  // defineProperty, so that a key named __proto__ stays an own field instead of a prototype.
  for (const k of Object.keys(o)) Object.defineProperty(out, k, { value: jsonValue((o as Record<string, unknown>)[k]), enumerable: true, writable: true, configurable: true })
  return out
}

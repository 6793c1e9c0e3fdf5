/**
 * Secrets in one thread's calls: how the weft keys, records and hands back a call whose library
 * has secrets (src/weft.ts calls this, and only for such libraries).
 *
 * Invariants:
 * - No secret value reaches the journal: a secret argument is keyed by its MAC marker, a secret
 *   outcome is recorded sealed (encrypted); the thread gets the value itself (opened again on
 *   resume with the same key).
 * - With the key that made the record (a resume), a call matches its record by the MAC: two
 *   different secrets are two different calls.
 * - With it, a call is also marked at the places its record holds a marker, declared or not,
 *   where the record holds a call so marked (a weave started without the addition that marked
 *   it: the call still matches, and its secret reaches no divergence's message); elsewhere as
 *   declared (a library that marks by value: `set('pw', v)` marked, `set('name', v)` not).
 * - Without it (a dump replayed elsewhere, a thread moved to a weave with another key), every
 *   secret is `[secret]` on both sides: in the record, and in the calls, at the places the
 *   record holds a marker and the places the library declares; calls that then share a key take
 *   ordinals in the order the record completed them.
 */
import { decodeArgs, encodeArgs } from '../encoding.js'
import { RaimentError } from '../errors.js'
import type { Library } from '../libraries.js'
import { RecordBlocks, type Entry } from '../replay-blocks.js'
import { splitKey } from '../replay-record.js'
import type { Keyring } from './keyring.js'
import { anyForm, anyMarker, hasMarker, isMarker, MARK, markerKids, sealedParts } from './marker.js'
import { markPaths, type Mark, type Path } from './rules.js'

const markAny: Mark = () => anyMarker

/** The secrets of the threads of a weave whose record matches its key: one per key, shared. */
const shared = new WeakMap<Keyring, CallSecrets>()

export class CallSecrets {
  readonly #keyring: Keyring | null
  readonly #any: boolean
  /** Where the record holds markers, by call name (`fetch.request`); null when it holds none. */
  readonly #recorded: ReadonlyMap<string, readonly Path[]> | null
  readonly #recordedLibs: ReadonlySet<string>
  readonly #mark: Mark
  readonly #seal: Mark
  /** In the any mode: the keys (ids) the record's secrets were marked with, none of them this weave's. */
  readonly #recordedKids: string[] | null
  /** With this weave's key: the record's keys that hold a marker (`lib.method:args`); null in the any mode. */
  readonly #recordedKeys: ReadonlySet<string> | null
  /** Its thread was handed an outcome sealed under a key this weave lacks (`withUnopened`). */
  #unopened = false

  private constructor(keyring: Keyring | null, any: boolean, recorded: ReadonlyMap<string, readonly Path[]> | null, recordedKids: string[] | null = null, recordedKeys: ReadonlySet<string> | null = null) {
    this.#keyring = keyring
    this.#recordedKeys = recordedKeys
    this.#recordedKids = recordedKids
    this.#any = any
    this.#recorded = recorded
    this.#recordedLibs = new Set([...(recorded?.keys() ?? [])].map((c) => c.slice(0, c.indexOf('.'))))
    this.#mark = any || keyring === null ? markAny : (v) => keyring.mac(v)
    this.#seal = keyring === null ? markAny : (v) => keyring.seal(v)
  }

  /**
   * The secrets of a thread's weft, and the record as it must be matched: as recorded, or in the
   * any mode (see the module's comment). Null when nothing of the thread is secret.
   */
  static of(keyring: Keyring | null, record: RecordBlocks | null): { secrets: CallSecrets | null; record: RecordBlocks | null } {
    let kids: Set<string | null> | null = null
    // The record's keys are looked at joined (a block's at once); split only where one has a marker.
    const entries = record !== null && record.keysInclude(MARK) ? record.toArray() : []
    for (const e of entries) {
      if (hasMarker(e.key)) for (const k of markerKids(e.key)) (kids ??= new Set()).add(k)
    }
    const any = kids !== null && (keyring === null || [...kids].some((k) => k !== keyring.kid))
    if (!any) {
      if (keyring === null) return { secrets: null, record }
      // Made with this key: its calls are marked where the record holds markers too, whatever
      // this weave declares (a weave opened without the `secrets` that made them: the secret is
      // still keyed by its MAC, and never reaches a divergence's message, an error or a dump).
      if (kids !== null) return { secrets: new CallSecrets(keyring, false, recordedPaths(entries), null, new Set(entries.filter((e) => hasMarker(e.key)).map((e) => e.key))), record }
      let s = shared.get(keyring)
      if (s === undefined) shared.set(keyring, (s = new CallSecrets(keyring, false, null)))
      return { secrets: s, record }
    }
    const recordedKids = [...kids!].filter((k) => k !== null)
    return { secrets: new CallSecrets(keyring, true, recordedPaths(entries), recordedKids), record: RecordBlocks.of(anyEntries(entries)) }
  }

  /** The warning for a live thread whose record was made under other keys than this weave's (the any mode). */
  mismatch(thread: string, type: string): SecretKeyMismatch | null {
    if (this.#recordedKids === null) return null
    return new SecretKeyMismatch(thread, type, this.#keyring?.kid ?? null, this.#recordedKids)
  }

  /** Does a call of `lib` need this (to key, record or hand back its values)? */
  covers(lib: Library): boolean {
    return lib.secrets !== null || (this.#recorded !== null && this.#recordedLibs.has(lib.name))
  }

  /** The canonical text of a call's arguments, each secret replaced by its marker. */
  argsText(lib: Library, method: string, args: readonly unknown[]): string {
    let a = lib.secrets === null ? args : lib.secrets.args(method, args, this.#mark)
    const call = lib.name + '.' + method
    const paths = this.#recorded?.get(call)
    if (paths !== undefined) {
      // (A value the library marked already stays as it is.)
      const marked = markPaths(a, paths, (v) => (isMarker(v) ? v : this.#mark(v))) as readonly unknown[]
      if (this.#recordedKeys === null) a = marked
      else {
        const text = encodeArgs(marked)
        if (this.#recordedKeys.has(`${call}:${text}`)) return text
      }
    }
    const text = encodeArgs(a)
    return this.#any ? anyForm(text) : text
  }

  /** Whether `lib`'s outcomes may hold secrets (to seal, and to open when handed back). */
  sealsOutcomes(lib: Library): boolean {
    return lib.secrets?.marksOutcomes === true
  }

  /** An outcome as it is recorded: each secret sealed. */
  seal(lib: Library, method: string, v: unknown): unknown {
    return lib.secrets === null ? v : lib.secrets.outcome(method, v, this.#seal)
  }

  /**
   * A recorded outcome as the thread gets it: each secret sealed with this key opened. One sealed
   * with another key (or none here) stays its marker, and `unopened` is told that key.
   */
  open(v: unknown, unopened?: (kid: string) => void): unknown {
    return openIn(v, this.#keyring, unopened)
  }

  /** The warning for a call held by `holdsUnopened`. */
  held(thread: string, type: string, call: string): SecretUnavailable {
    return new SecretUnavailable(thread, type, call, this.#keyring?.kid ?? null)
  }

  /**
   * Does a live call's `args` hold a secret sealed under a key this weave lacks (an outcome the
   * thread was handed as its marker, `open`)? Such a call is not made: the marker would leave as
   * if it were the secret (a user trial: `Authorization: Bearer [secret:…:sealed:…]` reached an
   * API). Only an outcome the weave could not open gives a thread one (`withUnopened`).
   */
  holdsUnopened(args: readonly unknown[]): boolean {
    return this.#unopened && sealedIn(args, 0)
  }

  /** These secrets, for a thread handed an outcome sealed under a key this weave lacks: its live calls are looked at (`holdsUnopened`). */
  withUnopened(): CallSecrets {
    if (this.#unopened) return this
    const s = new CallSecrets(this.#keyring, this.#any, this.#recorded, this.#recordedKids, this.#recordedKeys)
    s.#unopened = true
    return s
  }

  /** The warning for thread `thread` (of `type`), replayed here, that has an outcome sealed with key `kid`, which this weave lacks. */
  unopened(thread: string, type: string, kid: string): SecretKeyMismatch {
    return new SecretKeyMismatch(thread, type, this.#keyring?.kid ?? null, [kid])
  }
}

const SEALED = /\[secret:[A-Za-z0-9_-]+:sealed:/

/**
 * Does `v` hold a sealed marker: in a string, bytes (a body encoded already), or anything an
 * argument holds it in (arrays, objects, Maps, Sets, and other iterables such as Headers).
 */
function sealedIn(v: unknown, depth: number): boolean {
  if (typeof v === 'string') return v.includes('[secret:') && SEALED.test(v)
  if (typeof v !== 'object' || v === null || depth > 100) return false
  if (ArrayBuffer.isView(v)) {
    const bytes = Buffer.from(v.buffer, v.byteOffset, v.byteLength)
    return bytes.includes('[secret:') && SEALED.test(bytes.toString('latin1'))
  }
  if (v instanceof ArrayBuffer) return sealedIn(new Uint8Array(v), depth)
  const within = Array.isArray(v) ? v : Symbol.iterator in v ? Array.from(v as Iterable<unknown>) : Object.values(v)
  for (const x of within) if (sealedIn(x, depth + 1)) return true
  return false
}

function openIn(v: unknown, k: Keyring | null, unopened: ((kid: string) => void) | undefined): unknown {
  if (typeof v === 'string') {
    const p = v.length > 16 && v.startsWith('[secret:') ? sealedParts(v) : null
    if (p === null) return v
    const out = k === null ? v : k.open(p.kid, p.data, v)
    if (out === v) unopened?.(p.kid)
    return out
  }
  if (Array.isArray(v)) {
    let out: unknown[] | null = null
    v.forEach((x, i) => {
      const n = openIn(x, k, unopened)
      if (n !== x) (out ??= v.slice())[i] = n
    })
    return out ?? v
  }
  if (typeof v === 'object' && v !== null && Object.getPrototypeOf(v) === Object.prototype) {
    let out: Record<string, unknown> | null = null
    for (const [key, x] of Object.entries(v)) {
      const n = openIn(x, k, unopened)
      if (n !== x) (out ??= { ...(v as Record<string, unknown>) })[key] = n
    }
    return out ?? v
  }
  return v
}

/** A thread resumed under another secret key than its record was made with (a warning). */
export class SecretKeyMismatch extends RaimentError {
  constructor(thread: string, type: string, kid: string | null, recorded: string[]) {
    super(
      'RAIMENT_SECRET_KEY_MISMATCH',
      `thread ${thread} (${type}) resumed under ${kid === null ? 'no secret key' : `secret key ${kid}`}, but its record holds secrets of key ${recorded.join(', ') || 'unknown'}: ` +
        'the secret outcomes it recorded cannot be opened here, and it gets their markers instead (its secrets match any secret). ' +
        "Give this weave the key the record was made with (RAIMENT_SECRET_KEY, or the journal's key file: docs/secrets.md)",
    )
  }
}

/** A live call of a thread resumed under another key, held: its arguments hold a secret this weave cannot open. */
export class SecretUnavailable extends RaimentError {
  constructor(thread: string, type: string, call: string, kid: string | null) {
    super(
      'RAIMENT_SECRET_UNAVAILABLE',
      `thread ${thread} (${type}) calls ${call} with a secret it was handed as its marker (sealed under a key this weave, ${kid === null ? 'with no secret key' : `of secret key ${kid}`}, lacks): ` +
        'the call is held, not made, so the marker does not leave as if it were the secret. ' +
        "Give this weave the key the record was made with (RAIMENT_SECRET_KEY, or the journal's key file: docs/secrets.md) and start it again: the thread goes on from this call",
    )
  }
}

/** Where the recorded arguments hold markers, by call name. */
function recordedPaths(entries: readonly Entry[]): Map<string, Path[]> {
  const seen = new Map<string, Map<string, Path>>()
  for (const e of entries) {
    if (!hasMarker(e.key)) continue
    const { call, args } = splitKey(e.key)
    let at = seen.get(call)
    if (at === undefined) seen.set(call, (at = new Map<string, Path>()))
    const found = at
    walk(decodeArgs(args), [], (p) => found.set(p.join('\0'), p))
  }
  return new Map([...seen].map(([call, at]) => [call, [...at.values()]]))
}

function walk(v: unknown, path: string[], found: (p: Path) => void): void {
  if (isMarker(v)) found(path)
  else if (Array.isArray(v)) v.forEach((x, i) => walk(x, [...path, String(i)], found))
  else if (typeof v === 'object' && v !== null && Object.getPrototypeOf(v) === Object.prototype) {
    for (const [k, x] of Object.entries(v)) walk(x, [...path, k], found)
  }
}

/**
 * The record in the any mode: every keyed marker made `[secret]`; where that gives calls of
 * different keys one key, their ordinals are dealt again, each key's calls in their order, the
 * keys' calls interleaved in the order they completed.
 */
function anyEntries(entries: readonly Entry[]): Entry[] {
  const groups = new Map<string, Map<string, Entry[]>>()
  for (const e of entries) {
    const k = anyForm(e.key)
    let byOld = groups.get(k)
    if (byOld === undefined) groups.set(k, (byOld = new Map<string, Entry[]>()))
    let list = byOld.get(e.key)
    if (list === undefined) byOld.set(e.key, (list = []))
    list.push(e)
  }
  const ords = new Map<Entry, number>()
  for (const byOld of groups.values()) {
    const lists = [...byOld.values()].map((l) => [...l].sort((a, b) => a.ord - b.ord))
    let n = 0
    for (;;) {
      let best: Entry[] | null = null
      for (const l of lists) if (l.length > 0 && (best === null || l[0]!.seq < best[0]!.seq)) best = l
      if (best === null) break
      ords.set(best.shift()!, n++)
    }
  }
  return entries.map((e) => ({ ...e, key: anyForm(e.key), ord: ords.get(e)!, call: null }))
}

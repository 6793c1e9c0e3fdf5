/**
 * What is secret in a library's calls: what the library declares (its module's `secrets`
 * export), and what a weave adds to it (`Weave.open({ secrets })`, `raiment start --secret`).
 */
import { InvalidArgument } from '../errors.js'

/** Replaces a secret value by its marker. */
export type Mark = (value: unknown) => string

/** What a weave adds to one library: by kind (`headers`, `body`, a method's name), the names or paths. */
export type SecretAdditions = Readonly<Record<string, readonly string[]>>

/**
 * A weave's additions, by library: `{ fetch: { headers: ['x-api-key'], body: ['password'] } }`.
 * Every library takes, besides the kinds it declares, each of its method names as a kind: dot
 * paths into that method's arguments (`{ sqlite: { run: ['2.0'] } }`: the first parameter of
 * every `run`).
 */
export type WeaveSecrets = Readonly<Record<string, SecretAdditions>>

/**
 * What an I/O library module exports as `secrets`: which values of its calls are secret. A
 * secret argument is recorded as a keyed hash (so a resumed thread still finds its call, and two
 * different secrets still differ); a secret outcome is recorded encrypted (a resumed thread gets
 * it back, a dump shows a marker). Both functions return a copy where they mark something and
 * never change what they are given.
 * @example
 * export const secrets: LibrarySecrets = {
 *   kinds: { fields: 'dot paths into the row' },
 *   args: (method, args, mark) => (method === 'login' ? [args[0], mark(args[1])] : args),
 * }
 */
export interface LibrarySecrets {
  /** The kinds of additions a weave may make to this library, each with what it means. */
  kinds?: Readonly<Record<string, string>>
  /** The arguments of a call with the secret values replaced by `mark(value)`. */
  args?(method: string, args: readonly unknown[], mark: Mark, added: SecretAdditions): readonly unknown[]
  /** The outcome of a call with the secret values replaced by `mark(value)`. */
  outcome?(method: string, value: unknown, mark: Mark, added: SecretAdditions): unknown
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null) return false
  const proto = Object.getPrototypeOf(v) as unknown
  return proto === Object.prototype || proto === null
}

/** A dot path as its parts; `*` matches every key or index. */
export type Path = readonly string[]

export function parsePath(p: string): Path {
  return p.split('.')
}

function markAt(v: unknown, path: Path, i: number, mark: Mark): unknown {
  if (v === undefined) return v
  if (i === path.length) return mark(v)
  const seg = path[i]!
  if (Array.isArray(v)) {
    let out: unknown[] | null = null
    const at = seg === '*' ? [...v.keys()] : /^\d+$/.test(seg) ? [Number(seg)] : []
    for (const j of at) {
      if (j >= v.length) continue
      const n = markAt(v[j], path, i + 1, mark)
      if (n !== v[j]) (out ??= v.slice())[j] = n
    }
    return out ?? v
  }
  if (isPlainObject(v)) {
    let out: Record<string, unknown> | null = null
    const at = seg === '*' ? Object.keys(v) : Object.hasOwn(v, seg) ? [seg] : []
    for (const k of at) {
      const n = markAt(v[k], path, i + 1, mark)
      if (n !== v[k]) (out ??= { ...v })[k] = n
    }
    return out ?? v
  }
  return v
}

/**
 * `value` with what each dot path names replaced by its marker (`password`, `card.number`,
 * `items.*.token`; digits index arrays). Paths that name nothing are skipped; `value` is not
 * changed (a copy is returned where something is marked).
 * @example markPaths({ user: 'ada', password: 'pw' }, ['password'], mark)  // { user: 'ada', password: '[secret:…]' }
 */
export function markPaths(value: unknown, paths: readonly (string | Path)[], mark: Mark): unknown {
  let v = value
  for (const p of paths) v = markAt(v, typeof p === 'string' ? parsePath(p) : p, 0, mark)
  return v
}

/** A library's secrets as one weave applies them: its declaration and the weave's additions. */
export class BoundSecrets {
  readonly rules: LibrarySecrets
  readonly added: SecretAdditions
  /** Additions by method name: dot paths into the call's arguments. */
  readonly #argPaths: ReadonlyMap<string, readonly Path[]>

  constructor(rules: LibrarySecrets, added: SecretAdditions, argPaths: ReadonlyMap<string, readonly Path[]>) {
    this.rules = rules
    this.added = added
    this.#argPaths = argPaths
  }

  get marksOutcomes(): boolean {
    return this.rules.outcome !== undefined
  }

  args(method: string, args: readonly unknown[], mark: Mark): readonly unknown[] {
    let out = this.rules.args ? this.rules.args(method, args, mark, this.added) : args
    const paths = this.#argPaths.get(method)
    if (paths !== undefined) out = markPaths(out, paths, mark) as readonly unknown[]
    return out
  }

  outcome(method: string, value: unknown, mark: Mark): unknown {
    return this.rules.outcome ? this.rules.outcome(method, value, mark, this.added) : value
  }
}

/**
 * A library's secrets in a weave, or null when nothing of its calls is secret.
 * @throws InvalidArgument for an addition of a kind the library does not take
 */
export function bindSecrets(lib: string, methods: readonly string[], rules: LibrarySecrets | undefined, added: SecretAdditions | undefined): BoundSecrets | null {
  const kinds = rules?.kinds ?? {}
  const argPaths = new Map<string, Path[]>()
  for (const [kind, values] of Object.entries(added ?? {})) {
    if (Object.hasOwn(kinds, kind)) continue
    if (!methods.includes(kind)) {
      const declared = Object.entries(kinds).map(([k, what]) => `'${k}' (${what})`)
      throw new InvalidArgument(
        `secrets.${lib}: '${kind}' is neither a kind of secret ${lib} takes nor one of its methods; it takes ` +
          `${declared.length > 0 ? declared.join(', ') + ', and ' : ''}a method's name (${methods.join(', ')}) with dot paths into its arguments`,
      )
    }
    argPaths.set(kind, values.map(parsePath))
  }
  if (rules === undefined && argPaths.size === 0) return null
  return new BoundSecrets(rules ?? {}, added ?? {}, argPaths)
}

/**
 * Checks the shape of `Weave.open`'s `secrets` option.
 * @throws InvalidArgument naming what is wrong
 */
export function checkWeaveSecrets(s: unknown): void {
  if (!isPlainObject(s)) throw new InvalidArgument(`secrets must be an object by library name, such as { fetch: { headers: ['x-api-key'] } }, got ${JSON.stringify(s)}`)
  for (const [lib, kinds] of Object.entries(s)) {
    if (!isPlainObject(kinds)) throw new InvalidArgument(`secrets.${lib} must be an object of kinds, such as { headers: ['x-api-key'] }, got ${JSON.stringify(kinds)}`)
    for (const [kind, values] of Object.entries(kinds)) {
      if (!Array.isArray(values) || values.some((v) => typeof v !== 'string' || v === '')) {
        throw new InvalidArgument(`secrets.${lib}.${kind} must be an array of non-empty strings, got ${JSON.stringify(values)}`)
      }
    }
  }
}

/**
 * The additions of `--secret LIB.KIND=VALUE` options (repeatable), as `Weave.open` takes them.
 * @throws InvalidArgument for an option not of that form
 */
export function parseSecretOptions(opts: readonly string[]): WeaveSecrets {
  const out: Record<string, Record<string, string[]>> = {}
  for (const o of opts) {
    const m = /^([^.=]+)\.([^=]+)=(.+)$/.exec(o)
    if (m === null) throw new InvalidArgument(`--secret expects LIB.KIND=VALUE, such as fetch.headers=x-api-key or fetch.body=card.number, got ${JSON.stringify(o)}`)
    ;((out[m[1]!] ??= {})[m[2]!] ??= []).push(m[3]!)
  }
  return out
}

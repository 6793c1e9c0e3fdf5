/**
 * The weave's secret key: what the markers of secret values are made with. It never enters the
 * journal, a dump or a log.
 *
 * Where it comes from, first found first:
 * 1. `RAIMENT_SECRET_KEY` (any string of 16 characters or more; its SHA-256 is the key): share it
 *    between weaves that take over or move each other's threads;
 * 2. the file `<journal>-secret-key` next to the journal (mode 0600), created with 32 random
 *    bytes the first time a secret is marked;
 * 3. for a `:memory:` journal, a random key that lives as long as the process.
 *
 * Invariants:
 * - `mac(v)` is a pure function of (key, v): the same secret gives the same marker across runs,
 *   so a resumed thread finds its record; two different secrets give different markers.
 * - `seal(v)` can be opened (to `v`) only with the same key; `kid` (a digest of the key) tells
 *   which key made a marker, without telling the key.
 */
import { createCipheriv, createDecipheriv, createHash, createHmac, randomBytes } from 'node:crypto'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { RaimentError } from '../errors.js'
import { anyMarker, macMarker, sealedMarker } from './marker.js'

/** The environment variable that holds the secret key of every weave of this process. */
export const SECRET_KEY_ENV = 'RAIMENT_SECRET_KEY'

/** A secret key that cannot be used (a short RAIMENT_SECRET_KEY, an unreadable key file). */
export class SecretKeyUnusable extends RaimentError {
  constructor(why: string, options?: { cause?: unknown }) {
    super('RAIMENT_SECRET_KEY_UNUSABLE', why, options)
  }
}

/** The path of the key file of a journal. */
export function secretKeyFile(db: string): string {
  return `${db}-secret-key`
}

/** Canonical text of a secret value, for its MAC and its sealed form. */
function valueText(v: unknown): string {
  return typeof v === 'string' ? 's' + v : 'j' + JSON.stringify(v)
}

/** The text a value is sealed as: bytes (a body fetch read as bytes) as base64, so they open as bytes; the rest as valueText. */
function sealedText(v: unknown): string {
  return v instanceof Uint8Array ? 'b' + Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64') : valueText(v)
}

function valueOf(text: string): unknown {
  if (text.startsWith('b')) return new Uint8Array(Buffer.from(text.slice(1), 'base64'))
  return text.startsWith('s') ? text.slice(1) : (JSON.parse(text.slice(1)) as unknown)
}

export class Keyring {
  #key: Buffer | null = null
  #kid: string | null = null
  readonly #load: () => Buffer

  private constructor(load: () => Buffer) {
    this.#load = load
  }

  /**
   * The keyring of a journal: RAIMENT_SECRET_KEY, else the journal's key file (made on first use),
   * else, for `:memory:`, a key of this process. A key file is read at once when there is one;
   * none is made until a secret is marked.
   */
  static forJournal(db: string, env: NodeJS.ProcessEnv = process.env): Keyring {
    const fromEnv = env[SECRET_KEY_ENV]
    if (fromEnv !== undefined && fromEnv !== '') {
      if (fromEnv.length < 16) throw new SecretKeyUnusable(`${SECRET_KEY_ENV} must be at least 16 characters (a random string, such as the output of 'openssl rand -base64 32'), got ${fromEnv.length}`)
      const key = createHash('sha256').update(fromEnv).digest()
      return new Keyring(() => key)
    }
    if (db === ':memory:' || db === '') return Keyring.random()
    const file = secretKeyFile(db)
    // A key file there already is read now: one that is not a key, or cannot be read, is said at
    // open, not at the first secret sealed (whose call would record that error as its outcome).
    if (existsSync(file)) {
      const key = keyFromFile(file)
      return new Keyring(() => key)
    }
    return new Keyring(() => keyFromFile(file))
  }

  /** A keyring with a fresh random key (tests, throwaway weaves). */
  static random(): Keyring {
    const key = randomBytes(32)
    return new Keyring(() => key)
  }

  get #bytes(): Buffer {
    return (this.#key ??= this.#load())
  }

  /** Which key this is: a short digest of it (safe to show). */
  get kid(): string {
    return (this.#kid ??= createHash('sha256').update('raiment secret key id\0').update(this.#bytes).digest('base64url').slice(0, 8))
  }

  /** The marker of a secret argument: its keyed hash (HMAC-SHA256). */
  mac(v: unknown): string {
    const h = createHmac('sha256', this.#bytes).update(valueText(v)).digest('base64url').slice(0, 22)
    return macMarker(this.kid, h)
  }

  /** The marker of a secret outcome: the value encrypted (AES-256-GCM), so a resumed thread gets it back. */
  seal(v: unknown): string {
    const iv = randomBytes(12)
    const c = createCipheriv('aes-256-gcm', this.#bytes, iv)
    const body = Buffer.concat([c.update(sealedText(v), 'utf8'), c.final()])
    return sealedMarker(this.kid, Buffer.concat([iv, c.getAuthTag(), body]).toString('base64url'))
  }

  /** The value sealed in `data` by this key, or the marker itself when it cannot be opened here. */
  open(kid: string, data: string, marker: string): unknown {
    if (kid !== this.kid) return marker
    try {
      const raw = Buffer.from(data, 'base64url')
      const d = createDecipheriv('aes-256-gcm', this.#bytes, raw.subarray(0, 12))
      d.setAuthTag(raw.subarray(12, 28))
      return valueOf(Buffer.concat([d.update(raw.subarray(28)), d.final()]).toString('utf8'))
    } catch {
      return marker
    }
  }
}

/** What a replay without the key puts where a secret was: one marker for every secret. */
export const ANY_SECRET = anyMarker

function keyFromFile(file: string): Buffer {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new SecretKeyUnusable(`cannot read the secret key file ${file}: ${(e as Error).message}`, { cause: e })
    const key = randomBytes(32)
    try {
      // `wx`: never replace a key another process wrote meanwhile; 0600: only the owner reads it.
      writeFileSync(file, key.toString('base64url') + '\n', { flag: 'wx', mode: 0o600 })
      return key
    } catch (e2) {
      if ((e2 as NodeJS.ErrnoException).code === 'EEXIST') return keyFromFile(file)
      throw new SecretKeyUnusable(`cannot write the secret key file ${file}: ${(e2 as Error).message}`, { cause: e2 })
    }
  }
  const key = Buffer.from(text.trim(), 'base64url')
  if (key.length !== 32) throw new SecretKeyUnusable(`the secret key file ${file} does not hold a key (32 bytes in base64url); remove it only if no record made with it must be resumed`)
  return key
}

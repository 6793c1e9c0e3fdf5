/**
 * random: randomness for threads. Every value is recorded, so a resumed or replayed thread gets
 * the same numbers it got live. Values come from `node:crypto`.
 */
import { randomBytes, randomInt, randomUUID } from 'node:crypto'
import { InvalidArgument } from 'raiment'
import type { LibraryApi } from 'raiment'

/** randomInt's limit: max - min must be below 2^48. */
const MAX_RANGE = 2 ** 48
/** The most bytes one call may ask for (1 MiB): every byte is stored in the journal. */
const MAX_BYTES = 1 << 20

const random = {
  /** A float in [0, 1), with 53 random bits. */
  async float(): Promise<number> {
    return Number(randomBytes(8).readBigUInt64BE() >> 11n) / 2 ** 53
  },

  /**
   * A whole number in [min, max): `int(1, 7)` is a die roll.
   * @throws InvalidArgument unless min and max are safe integers with min < max and
   *   max - min <= 2^48
   */
  async int(min: number, max: number): Promise<number> {
    if (!Number.isSafeInteger(min) || !Number.isSafeInteger(max)) {
      throw new InvalidArgument(`random.int(min, max) expects two whole numbers, got ${String(min)} and ${String(max)}`)
    }
    if (!(min < max)) throw new InvalidArgument(`random.int(min, max) expects min < max (max is excluded), got ${min} and ${max}`)
    if (max - min > MAX_RANGE) {
      throw new InvalidArgument(`random.int(min, max) expects max - min <= 2^48, got ${max - min}`)
    }
    return randomInt(min, max)
  },

  /** A random (version 4) UUID, such as `'3b241101-e2bb-4255-8caf-4136c566a962'`. */
  async uuid(): Promise<string> {
    return randomUUID()
  },

  /**
   * `n` random bytes.
   * @throws InvalidArgument unless n is a whole number from 0 to 1,048,576
   */
  async bytes(n: number): Promise<Uint8Array> {
    if (!Number.isSafeInteger(n) || n < 0 || n > MAX_BYTES) {
      throw new InvalidArgument(`random.bytes(n) expects a whole number of bytes from 0 to ${MAX_BYTES}, got ${String(n)}`)
    }
    // A plain Uint8Array (a Buffer cannot be recorded as itself), not a view of Node's pool.
    return new Uint8Array(randomBytes(n))
  },
}
export default random

export type RandomApi = LibraryApi<typeof random>

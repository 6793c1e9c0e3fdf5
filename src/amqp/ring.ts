/**
 * A consistent-hash ring: each weave owns many points on a 32-bit circle, and a key belongs to
 * the weave of the first point at or after the key's hash. The ring depends only on the set of
 * weave ids (not on the order they were added), so every weave that sees the same members
 * places a key on the same weave; a weave joining takes about 1/n of the keys, all from others,
 * and a weave leaving hands only its own keys on.
 */
/** Points per weave: more points, a more even share (spread ~ 1/sqrt(points)). */
const POINTS = 128

/** FNV-1a over UTF-16 code units, then murmur3's finalizer to spread close inputs apart. */
function hash32(text: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}

export class Ring {
  readonly #points: number[] = []
  readonly #owners: string[] = []

  constructor(members: Iterable<string>) {
    const all: Array<[number, string]> = []
    for (const id of new Set(members)) {
      for (let i = 0; i < POINTS; i++) all.push([hash32(`${id}#${i}`), id])
    }
    // Ties (two weaves on one point) go to the smaller id, so the order of members never matters.
    all.sort((a, b) => a[0] - b[0] || (a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0))
    for (const [p, id] of all) {
      this.#points.push(p)
      this.#owners.push(id)
    }
  }

  get size(): number {
    return this.#points.length / POINTS
  }

  /** The weave that owns `key`, or null on an empty ring. */
  owner(key: string): string | null {
    const n = this.#points.length
    if (n === 0) return null
    const h = hash32(key)
    let lo = 0
    let hi = n
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (this.#points[mid]! < h) lo = mid + 1
      else hi = mid
    }
    return this.#owners[lo === n ? 0 : lo]!
  }
}

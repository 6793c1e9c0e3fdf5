/**
 * Thread ids `<weave>/<n>`, as a journal hands them out (src/journal.ts). The numbers are reserved
 * in blocks in the file (meta 'next_thread', one small transaction per block, written through the
 * replication tap too), so other processes spawning on the same journal, and a journal rebuilt
 * from its stream (a takeover), never hand out one again.
 */
import type Database from 'better-sqlite3'

/** What the ids need of their journal. */
export interface ThreadIdHost {
  readonly db: Database.Database
  readonly weaveId: string
  meta(k: string): string | undefined
  /** Sets meta 'next_thread' inside the caller's transaction, and hands the write to the tap. */
  setNext(n: number): void
}

export class ThreadIds {
  readonly #host: ThreadIdHost
  #next = 0
  #limit = 0
  #block = 8
  /** Ids of this weave's shape that the CLI reserved and asked this weave to spawn, until spawned (see `takeReserved`). */
  readonly #reserved = new Set<string>()

  constructor(host: ThreadIdHost) {
    this.#host = host
  }

  /** A new thread id; `block`: how many numbers to reserve when the last block is used up. */
  next(block = this.#block): string {
    const h = this.#host
    if (this.#next >= this.#limit) {
      // Blocks grow as a weave spawns more, so a short-lived process leaves small gaps.
      this.#block = Math.min(this.#block * 2, 4096)
      // IMMEDIATE: a read-then-write transaction that began as a reader would fail at once
      // (SQLITE_BUSY_SNAPSHOT, 'database is locked') when another process, such as the weave
      // running on this journal, commits between the read and the write.
      this.#next = h.db
        .transaction(() => {
          const n = Number(h.meta('next_thread') ?? '1')
          h.setNext(n + block)
          return n
        })
        .immediate()
      this.#limit = this.#next + block
    }
    return `${h.weaveId}/${this.#next++}`
  }

  /**
   * Thread id `id` was reserved by another process (the CLI's `nextThreadId(1)`, asking this weave
   * to spawn it): the counter it moved is written again through the tap, so a journal rebuilt from
   * the stream never hands out that number again.
   */
  reserved(id: string): void {
    const h = this.#host
    const prefix = `${h.weaveId}/`
    if (!id.startsWith(prefix)) return
    const n = Number(id.slice(prefix.length))
    if (!Number.isSafeInteger(n)) return
    this.#reserved.add(id)
    h.db.transaction(() => h.setNext(Math.max(Number(h.meta('next_thread') ?? '1'), n + 1))).immediate()
  }

  /** Was `id` reserved (`reserved`) and not spawned since? It is then taken off the list. */
  takeReserved(id: string): boolean {
    return this.#reserved.delete(id)
  }
}

/**
 * Is `id` shaped as the ids weave `weaveId` hands out (`<weave>/<n>`)? A caller's own id of that
 * shape could be handed out again by the journal, and the later spawn's record fail its batch.
 */
export function isOwnThreadId(weaveId: string, id: string): boolean {
  return id.startsWith(`${weaveId}/`) && /^[0-9]+$/.test(id.slice(weaveId.length + 1))
}

/**
 * What the UI reads from journals: pages of threads, the weaves' journals and the dead letters (a
 * thread's page: src/ui/thread-data.ts).
 *
 * Invariants:
 * - A journal is opened read-only for one request and closed at its end (src/journal-owner.ts
 *   `openToRead`, through `Journal({ readonly: true })`): no connection stays open between
 *   requests, so the UI never keeps a weave's journal in WAL mode after the weave has stopped,
 *   takes no lock and creates no file.
 * - Each read of a journal is one read transaction (`Journals.read`): a page shows one commit.
 * - The one thing kept between requests is a copy in memory of a WAL-mode journal that has no
 *   -wal (read from a copy: src/journal-owner.ts `openToRead`), until its file changes: it holds
 *   no lock and no file open.
 * - Every listing is a keyset page read through an index (`rowid`, `threads_status`,
 *   `threads_type`, `threads_type_status`, `threads_parent`, the journal's primary key): its cost
 *   does not grow with the journal.
 */
import { statSync } from 'node:fs'
import { Journal, type ThreadRow, type ThreadStatus } from '../journal.js'
import { realFile } from '../journal-owner.js'
import { deadLettersOf } from '../dead-letters.js'
import { decodeSafe } from '../cli/records.js'
import { hasTable, isPassivated } from '../passivation/listing.js'
import { parkedOf } from '../parked-listing.js'
import { oldCodeOf } from '../old-code.js'

export const STATUSES: readonly ThreadStatus[] = ['pending', 'running', 'done', 'failed', 'killed', 'moved']

/** The journals the UI shows, opened afresh for each read. */
export class Journals {
  readonly files: readonly string[]

  /**
   * The journals read from a copy in memory (a WAL-mode file with no -wal: src/journal-owner.ts
   * `openToRead`), by index: kept, with the signature of their file when copied, until the file
   * changes, instead of copied again at each read (a journal of 169 MB took 1 s a page).
   */
  readonly #copies = new Map<number, { signature: string; journal: Journal }>()

  constructor(files: readonly string[]) {
    this.files = files
  }

  /**
   * Runs `fn` on journal `i` opened read-only, in one read transaction, and closes it. Every
   * statement of `fn` reads the same commit: a weave's group commit (another process) that moves
   * journal_tail into journal_main between two of them is not seen halfway (a page lacked the
   * entries moved, or said "No calls recorded" of a thread that had some). DEFERRED takes no write
   * lock, and a read-only connection may begin it.
   */
  read<T>(i: number, fn: (j: Journal) => T): T {
    const { journal: j, kept } = this.#journal(i)
    try {
      return j.db.transaction(() => fn(j)).deferred()
    } finally {
      if (!kept) j.close()
    }
  }

  /**
   * Journal `i`, opened now, or its copy in memory kept from an earlier read while its file has
   * not changed since (a copy of an older file is closed; of another journal's too: one is kept). The signature is read before the file
   * is: a change in between makes the next read copy it again.
   */
  #journal(i: number): { journal: Journal; kept: boolean } {
    const signature = fileSignature(this.files[i]!)
    const copy = this.#copies.get(i)
    if (copy !== undefined && copy.signature === signature) return { journal: copy.journal, kept: true }
    if (copy !== undefined) {
      this.#copies.delete(i)
      copy.journal.close()
    }
    const journal = this.open(i)
    if (!journal.db.memory) return { journal, kept: false }
    // One copy kept at most (each may be hundreds of MB): the last journal read so.
    for (const c of this.#copies.values()) c.journal.close()
    this.#copies.clear()
    this.#copies.set(i, { signature, journal })
    return { journal, kept: true }
  }

  /** Drops the copies in memory kept between reads. */
  close(): void {
    for (const c of this.#copies.values()) c.journal.close()
    this.#copies.clear()
  }

  /** Opens journal `i` read-only (a test puts a journal of its own here). */
  protected open(i: number): Journal {
    return new Journal(this.files[i]!, { readonly: true })
  }

  /**
   * A signature of what the journal files hold now (size and change times of each file and its
   * -wal): it changes when a weave commits. Read from the file system, without opening SQLite.
   */
  signature(): string {
    return this.files.map(fileSignature).join('|')
  }

  /**
   * The journal holding thread `id` (its index), or -1: the one where it runs, or last ran, before
   * one that it moved away from (a journal keeps a thread that moved on as `moved`).
   */
  find(id: string): number {
    let moved = -1
    for (let i = 0; i < this.files.length; i++) {
      const status = this.read(i, (j) => j.thread(id)?.status)
      if (status !== undefined && status !== 'moved') return i
      if (status === 'moved' && moved < 0) moved = i
    }
    return moved
  }
}

/** The signature of one journal file and its -wal (see `Journals.signature`). */
function fileSignature(f: string): string {
  const parts: string[] = []
  // SQLite keeps the -wal beside the real file, where a journal given by a symlink points.
  for (const p of [f, `${realFile(f)}-wal`]) {
    try {
      const st = statSync(p, { throwIfNoEntry: false, bigint: true })
      parts.push(st === undefined ? '-' : `${st.size}:${st.mtimeNs}:${st.ctimeNs}:${st.ino}`)
    } catch (e) {
      // A directory on its path made a file, a permission taken away: read each 250 ms by a
      // timer, it must not throw (the server would die); the next read of a page says why.
      parts.push(`!${(e as { code?: string }).code ?? 'error'}`)
    }
  }
  return parts.join('|')
}

export interface ThreadFilter {
  status?: ThreadStatus
  type?: string
  /** A registered name, or its beginning. */
  name?: string
}

/** A thread as a row of the threads table. */
export interface ThreadItem {
  id: string
  type: string
  status: ThreadStatus
  /** A running thread out of memory, waiting (docs/passivation.md). */
  passivated?: true
  /** A running thread its weave could not run: it waits for its type (src/weave-parked.ts). */
  waitingForType?: true
  /** A running thread a reload kept on the code it started with (src/old-code.ts). */
  oldCode?: true
  /** A running thread whose record its code did not replay: it waits for code that does (src/divergence-wait.ts). */
  waitingForCode?: true
  weave: string
  names: string[]
  parent: string | null
  created: number
  ended: number | null
  calls: number
}

export interface ThreadPage {
  rows: ThreadItem[]
  /** The cursor of the next page, or null on the last. */
  next: string | null
}

/** Per journal: the rowid the next page starts below; null: from the newest; 0: none left. */
type Cursor = Array<number | null>

function decodeCursor(text: string | undefined, n: number): Cursor {
  if (text) {
    try {
      const c = JSON.parse(Buffer.from(text, 'base64url').toString()) as unknown
      if (Array.isArray(c) && c.length === n && c.every((x) => x === null || (typeof x === 'number' && Number.isSafeInteger(x)))) return c as Cursor
    } catch {
      // A cursor that is not one of ours: the first page.
    }
  }
  return new Array<number | null>(n).fill(null)
}

const encodeCursor = (c: Cursor): string => Buffer.from(JSON.stringify(c)).toString('base64url')

/** Names starting with `prefix` (at most 1,000), and their threads. */
function namedThreads(j: Journal, prefix: string): string[] {
  return j.db
    .prepare('SELECT thread FROM names WHERE name >= ? AND name < ? LIMIT 1000')
    .pluck()
    .all(prefix, prefix + '\u{10ffff}') as string[]
}

/**
 * One past the last seq of a thread's journal (0 for none): how many calls its current run made
 * (a run that continued as new starts again at seq 0). A seek in journal_main's key and a scan of
 * journal_tail (bounded: src/group-commit.ts), whatever the length of the record; counting its
 * entries read them all.
 */
export function journalExtent(j: Journal, id: string): number {
  const last = j.db.prepare('SELECT max(m) FROM (SELECT max(seq) AS m FROM journal_main WHERE thread = ? UNION ALL SELECT max(seq) FROM journal_tail WHERE thread = ?)').pluck().get(id, id) as number | null
  return last === null ? 0 : last + 1
}

/** How many journaled calls a thread has now (its row's count once it has ended), as its page says. */
export function callCount(j: Journal, row: Pick<ThreadRow, 'id' | 'status' | 'calls'>, extent?: number): number {
  if (row.status !== 'running' && row.status !== 'pending') return row.calls
  return extent ?? journalExtent(j, row.id)
}

export function namesOf(j: Journal, id: string): string[] {
  return j.db.prepare('SELECT name FROM names WHERE thread = ? ORDER BY name').pluck().all(id) as string[]
}

/** A running thread waiting, as the tables show it: for its type, or for code that replays its record. */
function parkedItem(j: Journal, r: ThreadRow): { waitingForType?: true; waitingForCode?: true } {
  const p = r.status === 'running' || r.status === 'pending' ? parkedOf(j.db, r.id) : undefined
  return p === undefined ? {} : p.diverges !== undefined ? { waitingForCode: true } : { waitingForType: true }
}

/** A thread's row as the tables show it. */
export const item = (j: Journal, r: ThreadRow): ThreadItem => ({
  id: r.id,
  type: r.type,
  status: r.status,
  ...(r.status === 'running' && isPassivated(j.db, r.id) ? { passivated: true as const } : {}),
  ...parkedItem(j, r),
  ...(r.status === 'running' && oldCodeOf(j.db, r.id) !== undefined ? { oldCode: true as const } : {}),
  weave: j.weaveId,
  names: namesOf(j, r.id),
  parent: r.parent,
  created: r.created,
  ended: r.ended,
  calls: callCount(j, r),
})

/**
 * A page of threads, newest first, of every journal merged by creation time; `cursor` is the
 * `next` of the page before. Each journal is read by keyset (rowid below the cursor) through the
 * index that fits the filter.
 */
export function threadPage(journals: Journals, filter: ThreadFilter, cursorText: string | undefined, limit: number): ThreadPage {
  const n = journals.files.length
  const cursor = decodeCursor(cursorText, n)
  type Got = { i: number; k: number; row: ThreadItem }
  const got: Got[][] = []
  for (let i = 0; i < n; i++) {
    const below = cursor[i]
    if (below === 0) {
      got.push([])
      continue
    }
    got.push(
      journals.read(i, (j) => {
        const where: string[] = []
        const args: unknown[] = []
        if (filter.status) {
          where.push('status = ?')
          args.push(filter.status)
        }
        if (filter.type) {
          where.push('type = ?')
          args.push(filter.type)
        }
        if (filter.name) {
          const ids = namedThreads(j, filter.name)
          if (ids.length === 0) return []
          where.push(`id IN (${ids.map(() => '?').join(', ')})`)
          args.push(...ids)
        }
        if (below !== null && below !== undefined) {
          where.push('rowid < ?')
          args.push(below)
        }
        const sql = `SELECT rowid AS k, * FROM threads ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY rowid DESC LIMIT ?`
        const rows = j.db.prepare(sql).all(...args, limit + 1) as Array<ThreadRow & { k: number }>
        return rows.map((r) => ({ i, k: r.k, row: item(j, r) }))
      }),
    )
  }
  // Merge, newest first (ties: the journal order), taking of each journal a prefix of its rows in
  // row order: its cursor is the last row taken, and no row above it is left behind. (A row's
  // time is not always in row order: a thread that moved here keeps when it was made, a spawn
  // from the command line beside a weave may come a moment late. Sorted by time alone, a page
  // could take a later row before an earlier one, and the cursor skip or repeat rows.)
  const heads = got.map(() => 0)
  const page: Got[] = []
  while (page.length < limit) {
    let best = -1
    for (let i = 0; i < n; i++) {
      const g = got[i]![heads[i]!]
      if (g !== undefined && (best < 0 || g.row.created > got[best]![heads[best]!]!.row.created)) best = i
    }
    if (best < 0) break
    page.push(got[best]![heads[best]!++]!)
  }
  const next: Cursor = cursor.slice()
  for (let i = 0; i < n; i++) {
    const took = heads[i]!
    if (took > 0) next[i] = got[i]![took - 1]!.k
    // Nothing of this journal is left past what was taken.
    if (took === got[i]!.length) next[i] = 0
  }
  return { rows: page.map((g) => g.row), next: next.every((c) => c === 0) ? null : encodeCursor(next) }
}

/**
 * Threads whose id is `id`, or starts with it (at most `limit`, in id order); `cut`: there are
 * more.
 */
export function threadsById(journals: Journals, id: string, limit: number): { rows: ThreadItem[]; cut: boolean } {
  const out: ThreadItem[] = []
  let cut = false
  for (let i = 0; i < journals.files.length && !cut; i++) {
    journals.read(i, (j) => {
      // One more than fits: whether there are more.
      const rows = j.db.prepare('SELECT * FROM threads WHERE id >= ? AND id < ? ORDER BY id LIMIT ?').all(id, id + '\u{10ffff}', limit - out.length + 1) as ThreadRow[]
      if (rows.length > limit - out.length) {
        cut = true
        rows.length = limit - out.length
      }
      for (const r of rows) out.push(item(j, r))
    })
  }
  return { rows: out, cut }
}

/** The thread types recorded in a journal (for the filter's choices), at most 200. */
export function threadTypes(journals: Journals): string[] {
  const types = new Set<string>()
  for (let i = 0; i < journals.files.length; i++) {
    journals.read(i, (j) => {
      // A skip-scan of threads_type: one step per distinct type.
      let t = j.db.prepare('SELECT min(type) FROM threads').pluck().get() as string | null
      const nextType = j.db.prepare('SELECT min(type) FROM threads WHERE type > ?').pluck()
      while (t !== null && types.size < 200) {
        types.add(t)
        t = nextType.get(t) as string | null
      }
    })
  }
  return [...types].sort()
}

export interface DeadLetterItem {
  n: number
  weave: string
  at: number
  sender: string | null
  recipient: string
  reason: string
  message: unknown
}

/** The newest dead letters of each journal (at most `limit` each), newest first. */
export function deadLetters(journals: Journals, limit: number): DeadLetterItem[] {
  const out: DeadLetterItem[] = []
  for (let i = 0; i < journals.files.length; i++) {
    journals.read(i, (j) => {
      for (const r of deadLettersOf(j).last(limit)) out.push({ n: r.n, weave: j.weaveId, at: r.at, sender: r.sender, recipient: r.recipient, reason: r.reason, message: decodeSafe(r.body) })
    })
  }
  return out.sort((a, b) => b.at - a.at).slice(0, limit)
}

/** A journal as the Weaves page shows it. */
export interface JournalSummary {
  file: string
  weave: string
  running: boolean
  owner: { pid: number; host: string; since: number } | null
  statuses: Record<string, number>
  /** Of its running threads, those out of memory, waiting (docs/passivation.md). */
  passivated: number
  outbox: number
  inbox: number
  deadLetters: number
}

export function journalSummaries(journals: Journals): JournalSummary[] {
  return journals.files.map((file, i) =>
    journals.read(i, (j) => {
      const statuses: Record<string, number> = {}
      const count = j.db.prepare('SELECT count(*) FROM threads WHERE status = ?').pluck()
      for (const s of STATUSES) statuses[s] = count.get(s) as number
      const n = (table: string): number => j.db.prepare(`SELECT count(*) FROM ${table}`).pluck().get() as number
      const running = j.owned()
      // A journal of an older schema (read-only) has no passivated table.
      const passivated = hasTable(j.db) ? n('passivated') : 0
      return { file, weave: j.weaveId, running, owner: running ? j.owner() : null, statuses, passivated, outbox: n('outbox'), inbox: n('inbox'), deadLetters: n('dead_letters') }
    }),
  )
}

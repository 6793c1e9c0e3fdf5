/**
 * Reading long records ahead at a resume: a worker thread reads the blocks of the records with
 * many entries past their first block, joined as src/replay-load.ts reads them, while the main
 * thread replays. Reading a million entries costs SQLite 40-50 % of the time replaying them takes;
 * on the main thread that read came before the replay's first release, here it overlaps it.
 *
 * The worker hands each block over as it reads it (a message on a port, its text off V8's heap
 * until taken); the replay takes the next block of a record when it reaches it
 * (`receiveMessageOnPort`, waiting with `Atomics.wait` when the worker is behind), so the weft's
 * record stays synchronous (src/replay-blocks.ts `PendingBlocks`).
 *
 * Invariants:
 * - The worker's read transaction takes its snapshot before the resume's read transaction ends
 *   (`ready` waits for it): only the journal's owner writes journal_main (other processes write
 *   requests beside it, src/journal-owner.ts), and this process writes nothing meanwhile, so the
 *   worker reads the records the resume read the threads' rows with.
 * - A thread whose block the worker could not hand over joined (too long for one string, or a
 *   column SQLite gave no text for), and every thread once the worker failed or stalled, is read
 *   on by the main thread's own connection from the last block it had (src/replay-load.ts): a
 *   thread's entries past the last block it had are written by nothing while it replays (a replay
 *   records nothing; `onDivergence: 'continue'` drops entries only once the replay reached them;
 *   journal_tail's threads are not read ahead).
 * - The worker stays at most `readAhead.window` blocks ahead of what the replay took from the
 *   port, so a long record does not wait in memory whole.
 * - The worker reads the records a block each in turn (the replay runs them side by side), skips
 *   those let go (a thread stopped mid-replay: `drop`), and ends once it has read them all, or
 *   when told to stop (the journal closes: `stop` waits for its connection to close first, and
 *   a record asked for more after that gets no more).
 */
import { createRequire } from 'node:module'
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads'

/** Tunables (tests lower `minRows` to read small records ahead too). */
export const readAhead = {
  /** Records past their first block holding at least this many entries in all are read ahead. */
  minRows: 65_536,
  /** Blocks the worker may have handed over that the replay has not taken from the port yet. */
  window: 64,
  /** How long to wait for the worker to start, and then for each block, before reading on alone. */
  waitMs: 10_000,
}

/** A block as read joined: [rows, seqs, keys, ords, oks, outcomes]. */
export type Joined = [number, string | null, string | null, string | null, string | null, string | null]

/**
 * A block as the worker hands it over: joined, and `x`, where each entry is in it (null: it does
 * not split cleanly into its rows, seqs rising; cut it yourself). `x` holds, for n rows, the seqs
 * [0, n), the ordinals [n, 2n), where each key starts [2n, 3n] and each outcome starts
 * [3n + 1, 4n + 1], each list one past its last piece's end too (its length + 1); and `k`, its
 * keys as UTF-8.
 */
export interface AheadBlock {
  readonly j: Joined
  readonly x: Float64Array | null
  /** With `x`: the keys as UTF-8, for the record to keep once the replay has passed them (src/replay-blocks.ts `PassedUnit`). */
  readonly k: Uint8Array | null
}

/** What the worker hands over: a record's next block; its end; a record it gives up on; its failure. */
type Message = ({ t: number } & AheadBlock) | { t: number; end: true } | { t: number; alone: true } | { error: string }

/** A record to read ahead: its thread, and the seq after which its blocks go on. */
export interface AheadJob {
  readonly id: string
  readonly after: number
}

/** What a record's reader gets from `next`: a block, its end, read on yourself, or nothing more (stopped). */
export type Ahead = AheadBlock | 'end' | 'alone' | 'gone'

// Flags shared with the worker: READY (1: its snapshot is taken; 2: it failed before), SENT
// (messages posted), STOP (asked to stop), DONE (its connection closed), GOT (messages the replay
// took from the port); then one a job (1: skip it).
const READY = 0
const SENT = 1
const STOP = 2
const DONE = 3
const GOT = 4
const JOBS = 5

/** The worker: plain JavaScript (eval), so it runs the same from src/ and dist/. */
const WORKER = `
const { workerData } = require('node:worker_threads')
const { file, sqlite, port, flags, jobs, sql, window } = workerData
const a = new Int32Array(flags)
const post = (m, transfer) => { port.postMessage(m, transfer); Atomics.add(a, ${SENT}, 1); Atomics.notify(a, ${SENT}) }
// Where each entry of a block is (see AheadBlock), checked as the main thread's cut checks it
// (seqs digits rising from after, ordinals digits, every column n pieces), so the replay splits
// an entry with two slices; null where it does not split so.
const US = 0x1f
const utf8 = new TextEncoder()
const digits = (text, n, x, base, after) => {
  let p = 0
  let prev = after
  for (let i = 0; i < n; i++) {
    let v = 0
    let q = p
    for (let c = text.charCodeAt(q); c >= 48 && c <= 57; c = text.charCodeAt(++q)) v = v * 10 + (c - 48)
    if (q === p || (i < n - 1 ? text.charCodeAt(q) !== US : q !== text.length) || !(v > prev)) return false
    x[base + i] = v
    if (after !== -Infinity) prev = v
    p = q + 1
  }
  return true
}
const starts = (text, n, x, base) => {
  let i = 0
  x[base] = 0
  for (let k = text.indexOf('\\x1f'); k !== -1; k = text.indexOf('\\x1f', k + 1)) {
    if (++i >= n) return false
    x[base + i] = k + 1
  }
  x[base + n] = text.length + 1
  return i === n - 1
}
const index = (j, after) => {
  const n = j[0]
  if (j[4].length !== n) return null
  const x = new Float64Array(4 * n + 2)
  const ok = digits(j[1], n, x, 0, after) && digits(j[3], n, x, n, -Infinity) && starts(j[2], n, x, 2 * n) && starts(j[5], n, x, 3 * n + 1)
  return ok ? x : null
}
let db = null
try {
  const Database = require(sqlite)
  db = new Database(file, { fileMustExist: true, timeout: 5000 })
  db.pragma('query_only = ON')
  const joined = db.prepare(sql).raw(true)
  db.exec('BEGIN')
  // The snapshot is taken at the transaction's first read, while the resume's still holds.
  db.prepare('SELECT 1 FROM journal_main LIMIT 1').get()
  Atomics.store(a, ${READY}, 1)
  Atomics.notify(a, ${READY})
  // A block of each record in turn, as the replays run side by side.
  const last = jobs.map((job) => job.after)
  let open = jobs.length
  while (open > 0 && Atomics.load(a, ${STOP}) === 0) {
    for (let t = 0; t < jobs.length && Atomics.load(a, ${STOP}) === 0; t++) {
      if (last[t] === null) continue
      if (Atomics.load(a, ${JOBS} + t) !== 0) { last[t] = null; open--; continue }
      let j
      try {
        j = joined.get(jobs[t].id, last[t])
      } catch (e) {
        if (!(e && e.code === 'SQLITE_TOOBIG')) throw e
        j = null
      }
      if (j !== null && j[0] === 0) post({ t, end: true })
      else if (j === null || j[1] === null || j[2] === null || j[3] === null || j[4] === null || j[5] === null) post({ t, alone: true })
      else {
        // At most \`window\` blocks ahead of the replay: a record is not all waiting in the port.
        for (let got = Atomics.load(a, ${GOT}); Atomics.load(a, ${SENT}) - got >= window && Atomics.load(a, ${STOP}) === 0 && Atomics.load(a, ${JOBS} + t) === 0; got = Atomics.load(a, ${GOT})) Atomics.wait(a, ${GOT}, got, 1000)
        // Let go of while it waited: this record is read no further.
        if (Atomics.load(a, ${JOBS} + t) !== 0) { last[t] = null; open--; continue }
        const x = index(j, last[t])
        // The keys' UTF-8 made here, not by the replay (its own buffer: transferred, not copied).
        const k = x === null ? null : utf8.encode(j[2])
        post({ t, j, x, k }, x === null ? [] : [x.buffer, k.buffer])
        last[t] = Number(j[1].slice(j[1].lastIndexOf('\\x1f') + 1))
        continue
      }
      last[t] = null
      open--
    }
  }
} catch (e) {
  post({ error: String(e && e.message || e) })
  // Failed before its snapshot: the resume reads the records itself at once.
  if (Atomics.compareExchange(a, ${READY}, 0, 2) === 0) Atomics.notify(a, ${READY})
} finally {
  if (db !== null) db.close()
  Atomics.store(a, ${DONE}, 1)
  Atomics.notify(a, ${DONE})
}
`

/** The records of a resume being read ahead by a worker. */
export class ReadAhead {
  readonly #worker: Worker
  readonly #port: MessagePort
  readonly #flags: Int32Array
  /** Messages taken from the port and not yet asked for, by thread. */
  readonly #queued: Message[][]
  #taken = 0
  #failed = false
  #stopped = false

  private constructor(worker: Worker, port: MessagePort, flags: Int32Array, jobs: number) {
    this.#worker = worker
    this.#port = port
    this.#flags = flags
    this.#queued = Array.from({ length: jobs }, () => [])
  }

  /**
   * Starts a worker reading `jobs` from the journal `file` with `sql` (a block's statement,
   * joined, taking thread and seq); `ready` then waits for its snapshot. Null where no worker can start (Node's
   * permission model without `--allow-worker`, a bundle without better-sqlite3's files): read
   * them yourself.
   */
  static start(file: string, sql: string, jobs: readonly AheadJob[]): ReadAhead | null {
    const flags = new Int32Array(new SharedArrayBuffer(4 * (JOBS + jobs.length)))
    const { port1, port2 } = new MessageChannel()
    let worker: Worker
    try {
      const sqlite = createRequire(import.meta.url).resolve('better-sqlite3')
      worker = new Worker(WORKER, { eval: true, workerData: { file, sqlite, port: port2, flags: flags.buffer, jobs, sql, window: readAhead.window }, transferList: [port2] })
    } catch {
      port1.close()
      return null
    }
    worker.unref()
    // An error is a message of its own (the worker catches everything); nothing else to hear.
    worker.on('error', () => {})
    return new ReadAhead(worker, port1, flags, jobs.length)
  }

  /** Waits until the worker's snapshot is taken; false when it failed or did not start in time (read them yourself). */
  ready(): boolean {
    Atomics.wait(this.#flags, READY, 0, readAhead.waitMs)
    if (Atomics.load(this.#flags, READY) === 1) return true
    this.stop()
    return false
  }

  /** Thread `t`'s next block, its end, 'alone': the worker gave it up (read on yourself), or 'gone': stopped. */
  next(t: number): Ahead {
    const q = this.#queued[t]!
    while (q.length === 0) {
      if (this.#stopped) return this.#failed ? 'alone' : 'gone'
      this.#take()
    }
    const m = q.shift()!
    if ('j' in m) return m
    return 'end' in m ? 'end' : 'alone'
  }

  /** Lets go of thread `t`'s blocks: the worker skips the rest of its record. */
  drop(t: number): void {
    Atomics.store(this.#flags, JOBS + t, 1)
    this.#queued[t]!.length = 0
    if (this.#stopped) return
    // What the worker posted is taken now (this record's blocks dropped, others' queued): a worker
    // waiting for room in its window goes on, and its snapshot is let go of once it has read all
    // it still reads (a snapshot held would keep the WAL from being checkpointed).
    for (let got = receiveMessageOnPort(this.#port); got !== undefined && !this.#stopped; got = receiveMessageOnPort(this.#port)) this.#took(got.message as Message)
    Atomics.notify(this.#flags, GOT)
  }

  /** Takes the worker's next message (waiting for it) and queues it for its thread. */
  #take(): void {
    let got = receiveMessageOnPort(this.#port)
    // The worker posts, then counts: a count past those taken means a message is there. The count
    // may lag what was taken (a message taken before its post was counted), so it waits for the
    // count it reads to change, as often as it must, until the wait's time is up (then a last look).
    const until = performance.now() + readAhead.waitMs
    while (got === undefined) {
      const sent = Atomics.load(this.#flags, SENT)
      const left = until - performance.now()
      if (left <= 0) {
        got = receiveMessageOnPort(this.#port)
        break
      }
      if (sent <= this.#taken) Atomics.wait(this.#flags, SENT, sent, left)
      got = receiveMessageOnPort(this.#port)
    }
    if (got === undefined) {
      // Stalled past the wait: every record is read on by its reader.
      this.#fail()
      return
    }
    this.#took(got.message as Message)
  }

  /** A message taken from the port: counted (the worker's window), and queued for its thread unless dropped. */
  #took(m: Message): void {
    this.#taken++
    Atomics.store(this.#flags, GOT, this.#taken)
    Atomics.notify(this.#flags, GOT)
    if ('error' in m) this.#fail()
    else if (Atomics.load(this.#flags, JOBS + m.t) === 0) this.#queued[m.t]!.push(m)
  }

  #fail(): void {
    this.#failed = true
    this.stop()
  }

  /** Tells the worker to stop and waits until its connection is closed (it checks between blocks). */
  stop(): void {
    if (this.#stopped) return
    this.#stopped = true
    Atomics.store(this.#flags, STOP, 1)
    Atomics.notify(this.#flags, GOT)
    Atomics.wait(this.#flags, DONE, 0, readAhead.waitMs)
    void this.#worker.terminate()
    this.#port.close()
  }
}

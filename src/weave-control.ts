/**
 * What other processes ask of a running weave through its journal: threads they recorded as
 * pending (spawned while this weave runs), and control requests (`raiment kill`, `send`, `spawn`,
 * `migrate`), answered in the `control` table.
 *
 * Invariants:
 * - The journal is looked at only when another connection has committed (PRAGMA data_version),
 *   and once at the first poll, so requests left while no weave ran are answered too.
 * - An answer commits with what it answers (src/journal.ts `replyControl`), never before it.
 * - A request answered asynchronously (spawn: once its record is durable; migrate: once the move
 *   is) is started once, however many polls see it before its answer is written.
 */
import { crashArmed, crashPoint } from './crash-points.js'
import { decodeValue, encodeError } from './encoding.js'
import type { Journal, ThreadRow } from './journal.js'
import type { Weave } from './weave.js'

export class ControlRequests {
  readonly #weave: Weave
  readonly #journal: Journal
  /** Starts or resumes a recorded thread (once: it ignores one already running). */
  readonly #adopt: (row: ThreadRow) => void
  readonly #closed: () => boolean
  #poll: NodeJS.Timeout | null = null
  #dataVersion = 0
  /** Requests being answered asynchronously, not to be started again. */
  readonly #busy = new Set<number>()

  constructor(weave: Weave, adopt: (row: ThreadRow) => void, closed: () => boolean) {
    this.#weave = weave
    this.#journal = weave.journal
    this.#adopt = adopt
    this.#closed = closed
  }

  /** Polls every `ms` milliseconds until `stop`; an error of a poll goes to the weave's 'error'. */
  start(ms: number): void {
    // Unlike any version SQLite reports, so the first poll also answers control requests left
    // queued while no weave ran (a kill or send whose weave died before it answered).
    this.#dataVersion = -1
    this.#poll = setInterval(() => {
      try {
        this.#pollOnce()
      } catch (e) {
        this.#weave.emit('error', e as Error)
      }
    }, ms)
    this.#poll.unref()
  }

  stop(): void {
    if (this.#poll) clearInterval(this.#poll)
    this.#poll = null
  }

  /** Picks up what other processes asked of this journal: new threads, kills, sends, spawns, moves. */
  #pollOnce(): void {
    const journal = this.#journal
    const v = journal.dataVersion()
    if (v === this.#dataVersion) return
    this.#dataVersion = v
    for (const row of journal.threads({ status: ['pending'] })) this.#adopt(row)
    for (const c of journal.control()) {
      let reply: string
      try {
        if (c.kind === 'kill' && c.thread) reply = this.#weave.kill(c.thread) ? 'killed' : 'already ended'
        else if (c.kind === 'send' && c.thread) reply = JSON.stringify(this.#weave.messages.send(null, c.thread, decodeValue(c.arg ?? 'U'), `control:${journal.weaveId}:${c.n}`))
        else if (c.kind === 'spawn' && c.thread) {
          if (this.#busy.has(c.n)) continue
          this.#busy.add(c.n)
          this.#spawn(c.n, c.thread, c.arg ?? '')
          continue
        } else if (c.kind === 'fork' && c.thread) {
          // `raiment fork`: answered once the fork is durable, as a spawn is.
          if (this.#busy.has(c.n)) continue
          this.#busy.add(c.n)
          this.#fork(c.n, c.thread, c.arg ?? '{}')
          continue
        } else if (c.kind === 'reload') {
          // `raiment reload`: answered with the report once the reload is done.
          if (this.#busy.has(c.n)) continue
          this.#busy.add(c.n)
          this.#weave
            .reload()
            .then(
              (report) => journal.replyControl(c.n, JSON.stringify({ report })),
              (e: unknown) => journal.replyControl(c.n, JSON.stringify({ refused: encodeError(e) })),
            )
            .finally(() => this.#busy.delete(c.n))
          continue
        } else if (c.kind === 'migrate' && c.thread) {
          // Answered when the move is durable (or refused); meanwhile later polls leave it be.
          if (this.#busy.has(c.n)) continue
          this.#busy.add(c.n)
          const thread = c.thread
          this.#weave
            .migrate(thread, c.arg ?? '')
            .then(
              (to) => journal.replyControl(c.n, JSON.stringify({ moved: thread, to })),
              // The refusal keeps its class and code: raiment migrate prints them.
              (e: unknown) => journal.replyControl(c.n, JSON.stringify({ refused: encodeError(e) })),
            )
            .finally(() => this.#busy.delete(c.n))
          continue
        } else if (c.kind === 'schedule') {
          // `raiment schedule add|rm|pause|resume`: answered once the change is durable.
          if (this.#busy.has(c.n)) continue
          this.#busy.add(c.n)
          void this.#weave.schedules
            .control(c.arg ?? '')
            .then((r) => {
              if (!this.#closed()) journal.replyControl(c.n, r)
            })
            .finally(() => this.#busy.delete(c.n))
          continue
        } else reply = `unknown request '${c.kind}'`
      } catch (e) {
        reply = (e as Error).message
      }
      journal.replyControl(c.n, reply)
      if (crashArmed) crashPoint('control-answered')
    }
  }

  /** `raiment fork`: replies `{ forked: id }` once the fork is durable, or `{ refused }` with nothing recorded. */
  #fork(n: number, id: string, arg: string): void {
    let reply: string
    try {
      const edits = JSON.parse(arg) as { at?: number; set?: Record<number, unknown> }
      reply = JSON.stringify({ forked: this.#weave.fork(id, edits) })
    } catch (e) {
      reply = JSON.stringify({ refused: encodeError(e) })
    }
    this.#replyWhenDurable(n, reply)
  }

  /** Answers request n once what it queued is durable. */
  #replyWhenDurable(n: number, reply: string): void {
    void this.#journal
      .committed()
      .then(() => {
        if (!this.#closed()) this.#journal.replyControl(n, reply)
      })
      .finally(() => this.#busy.delete(n))
  }

  /**
   * `raiment spawn` to this weave: spawns thread `id` (chosen by the asker, so a request answered
   * again after a crash spawns it once) and replies `{ spawned: id }` once its record is durable,
   * or `{ refused: <encoded error> }` with nothing recorded (an unknown or unavailable type).
   */
  #spawn(n: number, id: string, arg: string): void {
    let reply: string
    try {
      const { type, params } = JSON.parse(arg) as { type: string; params: string }
      reply = JSON.stringify({ spawned: this.#weave.spawn(type, decodeValue(params), { id }) })
    } catch (e) {
      reply = JSON.stringify({ refused: encodeError(e) })
    }
    this.#replyWhenDurable(n, reply)
  }
}

/**
 * What other processes ask of a running weave through its journal: threads they recorded as
 * pending (spawned while this weave runs), and control requests (`raiment kill`, `send`, `spawn`,
 * `migrate`, `dead-letters --resend/--drop`, and `show`'s question of what a thread waits for), answered in the `control` table.
 *
 * Invariants:
 * - The journal is looked at only when another connection has committed (PRAGMA data_version),
 *   and once at the first poll, so requests left while no weave ran are answered too.
 * - An answer commits with what it answers (src/control-table.ts), never before it.
 * - A request is acted on once, however many polls see it before its answer commits (spawn,
 *   fork, schedule, kill, send, dead letters: answered in the batch of what they record; migrate and reload:
 *   once done; a send to a thread of another weave, once the transport has said whether that
 *   weave has joined, in the batch of the send or its dead letter).
 */
import { ControlTable } from './control-table.js'
import { deadLettersOf, type DeadLetterRequest } from './dead-letters.js'
import { crashArmed, crashPoint } from './crash-points.js'
import { decodeValue } from './encoding.js'
import { encodeError } from './error-records.js'
import { exitSignals } from './weave-exits.js'
import type { Journal, ThreadRow } from './journal.js'
import type { Weave } from './weave.js'
import type { Run } from './weave-types.js'
import { liveWaits } from './passivation/live-waits.js'

export class ControlRequests {
  readonly #weave: Weave
  readonly #journal: Journal
  readonly #control: ControlTable
  /** Starts or resumes a recorded thread (once: it ignores one already running). */
  readonly #adopt: (row: ThreadRow) => void
  readonly #closed: () => boolean
  /** The run of a thread in memory (not woken from passivation), or undefined. */
  readonly #runOf: (id: string) => Run | undefined
  #poll: NodeJS.Timeout | null = null
  #dataVersion = 0
  /** Requests being answered asynchronously, not to be started again. */
  readonly #busy = new Set<number>()
  /**
   * Sends to threads of other weaves, answered in the order asked once their weave is looked up
   * (`#sendAfar`); while one is pending, every later send goes behind it, so none overtakes it.
   */
  #afar: Promise<void> = Promise.resolve()
  /** Sends waiting in `#afar`. */
  #afarPending = 0

  constructor(weave: Weave, adopt: (row: ThreadRow) => void, closed: () => boolean, runOf: (id: string) => Run | undefined) {
    this.#weave = weave
    this.#runOf = runOf
    this.#journal = weave.journal
    this.#control = new ControlTable(weave.journal)
    this.#adopt = adopt
    this.#closed = closed
  }

  /** Polls every `ms` milliseconds until `stop`; an error of a poll goes to the weave's 'error'. */
  start(ms: number): void {
    // Unlike any version SQLite reports, so the first poll also answers control requests left
    // queued while no weave ran (a kill or send whose weave died before it answered).
    this.#dataVersion = -1
    // Answers a weave that stopped gave in a batch it committed (done 2), found now (not this
    // weave's own, which are told when theirs are released): told once what it found is released.
    const left = this.#control.answered()
    if (left.length > 0) {
      void this.#journal.committed().then(() => {
        if (!this.#closed()) this.#control.release(left)
      })
    }
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
    for (const row of journal.threads({ status: ['pending'] })) this.#adopt(row)
    // Taken (claimed) in a write transaction: one that fails (busy) is tried again at the next poll.
    const requests = this.#control.take()
    this.#dataVersion = v
    for (const c of requests) {
      // Being answered, or answered in a batch not yet committed.
      if (this.#busy.has(c.n)) continue
      this.#busy.add(c.n)
      let reply: string
      try {
        if (c.kind === 'kill' && c.thread) {
          // A thread that moved away: the kill goes after it (raiment kill says where).
          const to = this.#weave.messages.forwardOf(c.thread)
          reply = this.#weave.kill(c.thread) ? (to !== undefined ? `forwarded ${to}` : 'killed') : 'already ended'
        }
        else if (c.kind === 'killed' && c.thread) reply = this.#killedOffline(c.thread)
        else if (c.kind === 'cancel' && c.thread) {
          const to = this.#weave.messages.forwardOf(c.thread)
          reply = this.#weave.cancel(c.thread, c.arg ?? 'cancelled') ? (to !== undefined ? `forwarded ${to}` : 'cancelled') : 'already ended'
        }
        else if (c.kind === 'send' && c.thread) {
          // The asker's id: one numbered by this journal's requests could be one a journal lost
          // or rebuilt gave before, which receivers would drop as a copy.
          const id = c.msg_id ?? `control:${journal.weaveId}:${c.n}`
          const home = this.#remoteHome(c.thread)
          if (home !== null || this.#afarPending > 0) {
            this.#sendAfar(c.n, c.thread, c.arg ?? 'U', id, home)
            continue
          }
          reply = JSON.stringify(this.#weave.messages.send(null, c.thread, decodeValue(c.arg ?? 'U'), id))
        }
        else if (c.kind === 'spawn' && c.thread) {
          this.#spawn(c.n, c.thread, c.arg ?? '')
          continue
        } else if (c.kind === 'fork' && c.thread) {
          this.#fork(c.n, c.thread, c.arg ?? '{}')
          continue
        } else if (c.kind === 'reload') {
          // `raiment reload`: answered with the report once the reload is done.
          this.#weave.reload().then(
            (report) => this.#reply(c.n, JSON.stringify({ report })),
            (e: unknown) => this.#reply(c.n, JSON.stringify({ refused: encodeError(e) })),
          )
          continue
        } else if (c.kind === 'migrate' && c.thread) {
          const thread = c.thread
          // Moved there already: the move committed and a crash came before its answer did.
          if (journal.thread(thread)?.status === 'moved' && this.#weave.messages.forwardOf(thread) === c.arg) reply = JSON.stringify({ moved: thread, to: c.arg })
          else {
            // Answered when the move is durable (or refused).
            this.#weave.migrate(thread, c.arg ?? '').then(
              // Moved to a weave not live now (it waits in that weave's queue): raiment migrate says so.
              (to) => this.#reply(c.n, JSON.stringify({ moved: thread, to, ...(this.#weave.messages.remote?.isLive?.(to) === false ? { down: true } : {}) })),
              // The refusal keeps its class and code: raiment migrate prints them.
              (e: unknown) => this.#reply(c.n, JSON.stringify({ refused: encodeError(e) })),
            )
            continue
          }
        } else if (c.kind === 'dead-letters') {
          // Answered in the batch that sends or drops them (or at once, with nothing changed).
          const msgId = c.msg_id ?? `control:${journal.weaveId}:${c.n}`
          const messages = this.#weave.messages
          reply = JSON.stringify(
            deadLettersOf(journal).apply(
              JSON.parse(c.arg ?? '{}') as DeadLetterRequest,
              (d, to) => messages.send(d.sender, to, decodeValue(d.body), msgId),
              (stmt, params, after) => journal.queue(stmt, params, after),
            ),
          )
        } else if (c.kind === 'waits' && c.thread) {
          // `raiment show`: what a thread in memory waits for now (null: nothing to say); changes nothing.
          reply = JSON.stringify(this.#waits(c.thread))
        } else if (c.kind === 'schedule') {
          // `raiment schedule add|rm|pause|resume`: answered in the batch of the change.
          reply = this.#weave.schedules.control(c.arg ?? '')
        } else reply = `unknown request '${c.kind}'`
      } catch (e) {
        reply = (e as Error).message
      }
      this.#reply(c.n, reply)
    }
  }

  /** What thread `id` waits for, if it runs in memory here (src/passivation/live-waits.ts). */
  #waits(id: string): ReturnType<typeof liveWaits> {
    const run = this.#runOf(id)
    if (run === undefined || run.ended) return null
    const m = this.#weave.messages
    const remote = m.remote
    return liveWaits(run.weft.pendingCalls(), {
      homeOf: (t) => m.homeOf(t),
      isRemote: (t) => m.isRemote(t),
      isLive: remote?.isLive === undefined ? undefined : (w) => remote.isLive!(w),
    })
  }

  /** The weave a send to thread id `to` goes to through a transport that can say whether it has joined; else null. */
  #remoteHome(to: string): string | null {
    const m = this.#weave.messages
    if (m.remote?.joined === undefined || !to.includes('/')) return null
    const target = m.resolve(to)
    return target !== null && m.isRemote(target) ? m.homeOf(target) : null
  }

  /**
   * `raiment send` to a thread of weave `home`, another weave: dead-lettered at once when the
   * broker says no weave `home` has joined (it has no queue: the relay would dead-letter the
   * message a moment later, after the asker was told it was delivered); else sent as any send
   * (a weave that has joined and is down finds it in its queue; with the broker out of reach it
   * waits in the outbox, as before). In the order asked, each in the batch of what it records;
   * `home` null: a send behind one of those, which looks nothing up.
   */
  #sendAfar(n: number, to: string, body: string, msgId: string, home: string | null): void {
    const joined = home === null ? Promise.resolve(true) : this.#weave.messages.remote!.joined!(home)
    this.#afarPending++
    const next = this.#afar.then(async () => {
      const known = await joined
      this.#afarPending--
      if (this.#closed()) return void this.#busy.delete(n)
      let reply: string
      try {
        if (known === false) {
          // A keyed send (src/send-keys.ts) is dead-lettered once too.
          const m = this.#weave.messages
          reply = JSON.stringify(m.keys.once(m.resolve(to) ?? to, msgId, () => m.deadLetter(null, to, body, `no weave '${home}' has joined this broker's namespace (the broker has no queue for it)`)))
        } else reply = JSON.stringify(this.#weave.messages.send(null, to, decodeValue(body), msgId))
      } catch (e) {
        reply = (e as Error).message
      }
      this.#reply(n, reply)
    })
    this.#afar = next.catch((e: unknown) => {
      this.#weave.emit('error', e as Error)
    })
  }

  /**
   * `raiment fork`: replies `{ forked: id }` in the batch of the fork, or `{ refused }` with
   * nothing recorded. The fork reads the original's record as of now, the entries queued for the
   * next commit included (nothing is flushed); it runs in a turn of its own.
   */
  #fork(n: number, id: string, arg: string): void {
    setImmediate(() => {
      if (this.#closed()) return void this.#busy.delete(n)
      let reply: string
      try {
        const edits = JSON.parse(arg) as { at?: number; set?: Record<number, unknown> }
        reply = JSON.stringify({ forked: this.#weave.fork(id, edits) })
      } catch (e) {
        reply = JSON.stringify({ refused: encodeError(e) })
      }
      this.#reply(n, reply)
    })
  }

  /**
   * A thread the CLI killed while no weave ran (src/journal.ts `killNow`): its parent, monitors
   * and links are told, and its inbox goes to the dead letters, as for a kill here; or, held for
   * a successor at that kill (src/successions.ts `endedOffline`), its inbox and names stay for it.
   */
  #killedOffline(id: string): string {
    const row = this.#journal.thread(id)
    if (row?.status !== 'killed') return 'not killed'
    exitSignals(this.#weave, { id, type: row.type, parent: row.parent }, 'killed', undefined, null)
    return 'told'
  }

  /** Answers request n in the batch of what it queued; it is not taken again until that commits. */
  #reply(n: number, reply: string): void {
    if (this.#closed()) return void this.#busy.delete(n)
    this.#control.reply(n, reply)
    if (crashArmed) crashPoint('control-answered')
    void this.#journal.committed().finally(() => this.#busy.delete(n))
  }

  /**
   * `raiment spawn` to this weave: spawns thread `id` (chosen by the asker, so a request answered
   * again after a crash spawns it once) and replies `{ spawned: id }` in the batch of its record,
   * or `{ refused: <encoded error> }` with nothing recorded (an unknown or unavailable type).
   */
  #spawn(n: number, id: string, arg: string): void {
    let reply: string
    try {
      const { type, params, key } = JSON.parse(arg) as { type: string; params: string; key?: true }
      // An id the CLI reserved may have the weave's own shape; a key's is checked as any chosen id.
      if (key !== true) this.#journal.reservedThreadId(id)
      reply = JSON.stringify({ spawned: this.#weave.spawn(type, decodeValue(params), { id }) })
    } catch (e) {
      reply = JSON.stringify({ refused: encodeError(e) })
    }
    this.#reply(n, reply)
  }
}

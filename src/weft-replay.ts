/**
 * The replay side of a weft (src/weft.ts, which extends this class): the thread's record, the
 * requests matched to its entries by (key, ordinal), their release in recorded order, what a
 * request the record lacks or an entry never asked for becomes, and the switch to live once the
 * record is spent. It also holds the state the weft's live side shares with it (the thread, its
 * journal, its secrets, its next seq, whether it stopped or ended).
 *
 * Invariants:
 * - On replay, recorded outcomes are released in recorded order, one per shared round
 *   (src/replay-rounds.ts), so the thread's microtasks drain between two releases as they did
 *   live; a request the record does not hold is held back until every recorded outcome has been
 *   released (it was in flight at the crash, so live it completed after all of them), then runs
 *   live, or, where the record is exhausted on a strict replay, or a recorded request is never
 *   made, is a ReplayDivergence.
 * - A released entry is behind `replay.next`, and its (key, ordinal) is never asked for again.
 * - `replay` is null once the replay is over (gone live, or stopped); `onReplayed` is told once.
 * - A marker call the record lacks answers as the record's code went, unrecorded
 *   (src/replay-markers.ts).
 *
 * The shared state is `protected` rather than `#private` (as fast to reach), and this class has
 * no `#private` method: one would give each weft a private brand, a field more (an idle thread's
 * memory is counted in bytes: `npm run bench`, idle); its own methods are TypeScript `private`.
 */
import type { WeaveConfig } from './call-context.js'
import type { Journal } from './journal.js'
import type { Call } from './call.js'
import { forget, inFlightCall, inFlightDivergence } from './in-flight.js'
import { markerLacked, markerPastEnd } from './replay-markers.js'
import { describeKey, Replay, type Entry } from './replay-record.js'
import { RecordBlocks } from './replay-blocks.js'
import { countRelease, ReplayRounds } from './replay-rounds.js'
import { divergenceAt, divergenceError, droppedEntry, giveBackReplayed, madeBy, replayLeft, threwBefore, unreplayable, warnContinued, type Divergence } from './weft-divergence.js'
import type { WeftOptions } from './weft-options.js'
import { KeyCounts } from './weft-keys.js'
import { settleRecorded } from './weft-outcomes.js'
import { CallSecrets } from './secrets/calls.js'
import { warnOnce } from './continue/long-record.js'
import type { Weft } from './weft.js'

export abstract class WeftReplay extends KeyCounts {
  readonly threadId: string
  protected readonly journal: Journal | null
  protected readonly config: WeaveConfig
  protected readonly onDivergence: 'fail' | 'continue' | 'wait'
  readonly #onStop: ((err: Error, weft: Weft) => void) | undefined
  /** The thread type's name, for messages. */
  protected readonly type: string
  /** The stack of each call made, by call, when asked for (a divergence names where it was made); null: not kept. */
  protected readonly stacks: WeakMap<Call, string> | null
  readonly #onMarker: ((key: string, value: unknown) => void) | undefined
  /** How many entries the record replayed holds; the record itself until its last block came. */
  #base: number | RecordBlocks = 0
  readonly #onReplayed: ((weft: Weft, released: number) => void) | null
  /** The seq of the thread's next journal entry. */
  protected seq = 0
  /** Entries queued for this thread since its record was read, less those dropped from it. */
  protected added = 0
  /** The replay in progress; null once over (gone live or stopped), or for a new thread. */
  protected replay: Replay | null = null
  /** How the calls of libraries with secrets are keyed, recorded and handed back; null: none. */
  protected secrets: CallSecrets | null
  /** The error every pending and later call rejects with, once stopped (killed, diverged); null until then. */
  protected stoppedBy: Error | null = null
  /** The thread's function has settled, or the weave let go of the thread (src/weft.ts detach). */
  protected ended = false

  constructor(o: WeftOptions) {
    super()
    this.threadId = o.threadId
    this.journal = o.journal
    this.config = o.config
    this.onDivergence = o.onDivergence ?? 'fail'
    this.#onStop = o.onStop
    this.type = o.type ?? 'thread'
    this.stacks = o.stacks === true ? new WeakMap() : null
    this.#onMarker = o.onMarker
    this.#onReplayed = o.onReplayed ?? null
    const { secrets, record } = CallSecrets.of(o.keyring ?? null, RecordBlocks.from(o.entries))
    this.secrets = secrets
    const mismatch = this.journal === null ? null : (secrets?.mismatch(this.threadId, this.type) ?? null)
    if (mismatch !== null) warnOnce(this.config, this.threadId, mismatch)
    if (record !== null && record.has(0)) {
      this.replay = new Replay(record)
      this.seq = record.lastSeq + 1
      this.#base = record.knownLength ?? record
    }
  }

  /** Disconnects the thread: every pending and later call rejects with `err` (src/weft.ts). */
  abstract stop(err: Error): void

  /** Makes `call` live (src/weft.ts): a request the record did not hold, once the replay is over. */
  protected abstract live(call: Call): void

  /** True while recorded outcomes remain to be released. */
  get replaying(): boolean {
    return this.replay !== null
  }

  /** How many recorded outcomes replay has released so far (for progress). */
  get released(): number {
    return this.replay === null ? 0 : this.replay.next
  }

  /** How many journal entries the thread has, those queued included; undefined: its long record's last block has not come. */
  get recorded(): number | undefined {
    const base = typeof this.#base === 'number' ? this.#base : this.#base.knownLength
    return base === null ? undefined : base + this.added
  }

  /** The replay is over (ended or stopped) after `next` releases: of its record, only its length is kept, once known. */
  private over(next: number): void {
    if (typeof this.#base !== 'number') this.#base = this.#base.knownLength ?? this.#base
    this.#onReplayed?.(this as unknown as Weft, next)
  }

  /** The weft stops: the replay, if any, is over, its record's blocks let go of. */
  protected endReplay(): void {
    this.replay?.record.release()
    if (this.replay !== null) this.over(this.replay.next)
    this.replay = null
  }

  /** A key's first ordinal: on replay, how many calls of it the record counts by their entries (src/weft-keys.ts). */
  protected firstOrdinal(key: string): number {
    return this.replay === null ? 0 : this.replay.firstCounted(key)
  }

  /**
   * A live call of a thread that had calls in flight when its weave stopped (src/in-flight.ts):
   * true when it is settled here (a marker, answered as the code before it went; a divergence).
   */
  protected inFlightBefore(call: Call, marks: Set<string>): boolean {
    const v = inFlightCall(this, marks, call)
    if (v === 'marker') return (this.answerMarker(call), true)
    if (v === 'go') return false
    const d = inFlightDivergence(v, call, this.seq, madeBy(call, this.stacks))
    if (this.onDivergence !== 'continue') return (this.divergence(d), true)
    warnContinued(this.config, this.threadId, this.type, d)
    forget(this)
    return false
  }

  /** `call`, asked past the end of a record replayed without a journal (a dump's): a marker the record's code ended without, or a divergence. */
  protected pastRecord(call: Call): void {
    if (markerPastEnd(call, this)) return this.answerMarker(call)
    const index = typeof this.#base === 'number' ? this.#base : this.#base.length
    this.divergence({ what: `the record holds no outcome for ${describeKey(call.key)} (ordinal ${call.ord}): it ends after ${index === 1 ? 'its 1 outcome' : `its ${index} outcomes`}, as far as the recorded run went.`, detail: { kind: 'beyond', index, made: madeBy(call, this.stacks) } })
  }

  /** A marker call answered, unrecorded, as the code before the marker went (`absent`). */
  protected answerMarker(call: Call): void {
    const absent = call.lib.markers!.get(call.method)
    this.removePending(call)
    this.#onMarker?.(call.key, absent)
    call.resolve(absent)
  }

  protected request(r: Replay, call: Call): void {
    const e = r.find(call.key, call.ord)
    if (e !== undefined && e.call === null) e.call = call
    // A marker the record's code went on without (src/replay-markers.ts): answered as it went, unrecorded.
    else if (e === undefined && markerLacked(r, call, this)) return this.answerMarker(call)
    else r.held.push(call)
    this.schedule(r)
  }

  /** Every replaying weft of the process is pumped in shared rounds (src/replay-rounds.ts). */
  static readonly #rounds = new ReplayRounds<WeftReplay>((w) => w.pump())

  private schedule(r: Replay): void {
    if (r.scheduled) return
    r.scheduled = true
    WeftReplay.#rounds.add(this)
  }

  /**
   * Runs when the thread has drained: release the next recorded outcome, or decide what next. A
   * record that cannot be read on (damaged, its blocks lost) fails this thread alone.
   */
  private pump(): void {
    try {
      this.pumpRecord()
    } catch (e) {
      const err = unreplayable(this.journal?.file ?? null, this.threadId, e)
      if (err === null) throw e
      this.stop(err)
      this.#onStop?.(err, this as unknown as Weft)
    }
  }

  private pumpRecord(): void {
    const r = this.replay
    if (r === null || this.stoppedBy !== null) return
    r.scheduled = false
    const record = r.record
    while (record.has(r.next)) {
      const e = record.at(r.next)
      // Undefined: the record's blocks read ahead stopped coming (the weave closed; src/replay-ahead.ts).
      if (e === undefined) return
      if (e.call !== null) {
        record.passed(++r.next)
        this.release(e)
        if (r.held.length > 0 || record.has(r.next)) this.schedule(r)
        else this.goLive(r)
        return
      }
      if (!r.skipUnrequested) {
        if (this.ended || this.holding !== 0) return // held: a move or reload takes it, no call is made
        this.divergenceAt(r, e)
        return
      }
      // Held (a move or reload takes the record) or let go of: nothing is dropped from it.
      if (this.ended || this.holding !== 0) return
      r.next++
      this.dropEntry(e)
    }
    this.goLive(r)
  }

  protected dropEntry(e: Entry): void {
    if (this.journal === null) return
    this.journal.dropEntry(this.threadId, e.seq)
    this.added--
    droppedEntry(this.config, this.threadId, e)
  }

  private release(e: Entry): void {
    countRelease()
    const call = e.call!
    // A released entry is behind `next` and its (key, ordinal) is never asked for again (ordinals
    // only grow), so nothing reads `call` again: let the call (promise, args) be collected.
    e.call = null
    this.removePending(call)
    settleRecorded(call, e, this.secrets, this)
  }

  /** @internal A secret outcome of the record cannot be opened here (sealed with key `kid`, not this weave's): the weave warns, once for the thread. */
  unopenedSecret(kid: string): void {
    if (this.journal === null || this.secrets === null) return
    warnOnce(this.config, this.threadId, this.secrets.unopened(this.threadId, this.type, kid))
    this.secrets = this.secrets.withUnopened()
  }

  private goLive(r: Replay): void {
    this.replay = null
    this.over(r.next)
    this.firstKeys = r.implicit.empty ? null : r.record.replayedKeys(r.implicit, !r.skipUnrequested)
    const held = r.held
    for (const call of held) {
      if (this.stoppedBy !== null) return
      this.live(call)
    }
  }

  private divergenceAt(r: Replay, expected: Entry): void {
    if (this.onDivergence === 'continue' && this.journal !== null) {
      warnContinued(this.config, this.threadId, this.type, divergenceAt(r, expected, this.firstPending, (c) => madeBy(c, this.stacks)))
      r.skipUnrequested = true
      this.schedule(r)
      return
    }
    this.divergence(divergenceAt(r, expected, this.firstPending, (c) => madeBy(c, this.stacks)))
  }

  protected divergence(d: Divergence): void {
    const err = divergenceError(this.threadId, this.type, this.replay, d)
    this.stop(err)
    this.#onStop?.(err, this as unknown as Weft)
  }

  /**
   * The thread's function has ended (`thrown`: the error it threw, if it did) while replaying:
   * recorded entries it never asked for are a divergence (the weft stops: true), or, continuing
   * (on-divergence continue), dropped from its record, with a warning.
   */
  protected divergedAtEnd(r: Replay, thrown: unknown): boolean {
    // Warned of at the first entry dropped, unless it diverged before (and was warned of then).
    let warned = r.skipUnrequested
    const d = replayLeft(r, r.skipUnrequested || this.onDivergence === 'continue', (e, ended) => {
      if (!warned) warnContinued(this.config, this.threadId, this.type, ended())
      warned = true
      this.dropEntry(e)
    })
    if (d === null) return false
    this.divergence(thrown === undefined ? d : threwBefore(d, thrown))
    return true
  }

  /** The thread's function ended: besides a live take not released, one its replay had not released goes back. */
  override giveBackUnreleased(): void {
    super.giveBackUnreleased()
    if (this.replay !== null && this.journal !== null) giveBackReplayed(this.config, this.threadId, this.replay)
  }
}

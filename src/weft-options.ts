/** What a weft is made with (src/weft.ts), and what it traces of a thread's requests. */
import type { WeaveConfig } from './call-context.js'
import type { Journal } from './journal.js'
import type { RunObservation } from './observer.js'
import type { Entry, RecordBlocks } from './replay-blocks.js'
import type { ThreadRetry } from './retry/policy.js'
import type { Keyring } from './secrets/keyring.js'
import type { Weft } from './weft.js'

/** One request made by a thread, in the order it was made (for tests and traces). */
export interface CallTrace {
  readonly call: string
  readonly args: readonly unknown[]
}

export interface WeftOptions {
  threadId: string
  /** The thread's call scope (its row's `scope`, as src/call-context.ts `scopeNumber` gives it); -1 (default) for none: a thread of an older journal. */
  scope?: number
  /** Where live outcomes are recorded; null for a strict replay that never goes live. */
  journal: Journal | null
  config: WeaveConfig
  /** Recorded entries in completion order (whole, or in blocks: src/replay-blocks.ts); null or empty for a new thread. */
  entries: Entry[] | RecordBlocks | null
  /** What to do when the record diverges: fail the thread (default) or continue live; 'wait': stop as for 'fail', and the weave decides (src/divergence-wait.ts). */
  onDivergence?: 'fail' | 'continue' | 'wait'
  /** Called once when the weft stops on its own (a divergence), so the weave can end the thread. */
  onStop?: (err: Error, weft: Weft) => void
  /** Collect the sequence of requests (for tests). */
  trace?: boolean
  /** The thread type's name, for messages. */
  type?: string
  /**
   * Always-replay mode (tests): instead of releasing a durable live outcome, this is called and
   * the weave re-runs the thread from its journal.
   */
  onDurable?: () => void
  /** The weave's secret key (src/secrets/); none for a replay of a dump. */
  keyring?: Keyring | null
  /**
   * Keep the stack of every call made, so a divergence names where in the thread's code the call
   * was made (`raiment check`, on its second look at a thread that diverged).
   */
  stacks?: boolean
  /** Told of each marker call (see `LibraryModule.markers`) answered as absent on replay. */
  onMarker?: (key: string, value: unknown) => void
  /** The run's observation (src/observer.ts): each live call is observed in it. */
  observe?: RunObservation | null
  /** The thread type's retry policies (src/retry/), or null. */
  retry?: ThreadRetry | null
  /** Told when a live call starts waiting (it registered `onAbort`): src/passivation/ looks later. */
  onWait?: ((weft: Weft) => void) | null
  /** Told when the replay is over: it released its record and the thread goes live, or it stopped after `released` releases. */
  onReplayed?: ((weft: Weft, released: number) => void) | null
}

/**
 * What the core tells an observer: thread runs, live weft calls, group commits, messages taken.
 * OpenTelemetry (src/otel/) is one observer; the core imports none. A weave without an observer
 * (the default: no OpenTelemetry SDK registered) pays one null check per call and per commit.
 *
 * Trace contexts travel as W3C `traceparent` strings, recorded with what carries them (a thread's
 * row, an inbox or outbox row, an AMQP header), so a resumed run and a replayed delivery keep
 * them.
 */

/** A live weft call being observed; ended once: when the library answers, or abandoned. */
export interface CallObservation {
  /** The call's trace context (W3C traceparent), recorded with the messages and spawns it makes; null when it has none (no tracer provider). */
  readonly traceparent: string | null
  /** The library answered: `ok` with `value`, or not with the error `value`. */
  end(ok: boolean, value: unknown): void
  /**
   * The call's outcome will not be recorded: the thread was stopped (killed), ended, or let go of
   * (a close, a move, a passivation) while the call was in flight. Not an error: the call did not
   * fail, it was cut short (a resumed run makes it again, if its thread goes on).
   */
  abandon(): void
  /** Runs `fn` (the library's method) with this call as the current trace context; returns what it returns, throws what it throws. */
  within<T>(fn: () => T): T
  /** This call (a receive) took a message that was sent in the trace context `traceparent`. */
  took(traceparent: string, from: string | null): void
}

/** One run of a thread: from its spawn or resume until it ends or the weave lets go of it. */
export interface RunObservation {
  /** The run's trace context (W3C traceparent), recorded in the thread's row; null when it has none (no tracer provider). */
  readonly traceparent: string | null
  /** A live call of this run starts (its ordinal, and its call id made only if asked). */
  call(lib: string, method: string, ord: number, callId: () => string): CallObservation
  /** The run ended: done, failed (with the error), killed, moved, or 'detached' (weave closing). */
  end(status: string, error?: unknown): void
  /** The run is the wake of a passivated thread (src/passivation/), by `by` (a `WokenBy`). */
  woke(by: string): void
}

/** The weave's view of its journal, for gauges read when a metrics reader asks. */
export interface ObservedWeave {
  readonly weaveId: string
  /** How many threads the journal holds in each status. */
  threadsByStatus(): Array<[status: string, count: number]>
  /** Messages waiting in inboxes, and envelopes in the outbox (for other weaves). */
  depths(): { mailbox: number; outbox: number }
}

export interface Observer {
  /**
   * A run of thread `id` starts. `parent`: the trace context it was spawned in (the spawning
   * call, an AMQP header, or the caller's), or, for a resumed run, the earlier run's.
   */
  run(id: string, type: string, resumed: boolean, parent: string | null): RunObservation
  /** The trace context active in the caller (its current span), as a traceparent, or null. */
  active(): string | null
  /** A group commit: `entries` journal entries among `writes` statements, in `ms` (`fsyncMs` the COMMIT). */
  commit(entries: number, writes: number, ms: number, fsyncMs: number): void
  /** A resumed thread's record holds `entries` entries to replay. */
  replayed(entries: number): void
  /** The weave opened (gauges start reading it) or closed (they stop). */
  attach(weave: ObservedWeave): void
  detach(): void
}

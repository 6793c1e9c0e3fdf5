// What every system under comparison offers the workloads. A "thread" is a Raiment thread, a
// DBOS workflow or a Restate invocation; each runs `steps` recorded steps, step i returning i,
// and resolves with their sum.

/** A durable-execution engine, opened and ready, as the workloads drive it. */
export interface Engine {
  /** Name and version(s) for the report, e.g. `DBOS Transact 5.3.0 on PostgreSQL 15.20`. */
  readonly label: string
  /** Runs one thread of `steps` steps to its end and resolves with its result. */
  run(steps: number): Promise<number>
  /**
   * Starts one thread of `steps` steps and resolves once its start is durable (a crash after
   * that would not lose it), with a function that waits for its result.
   */
  start(steps: number): Promise<() => Promise<number>>
  /**
   * The floor under W1, where an engine can measure it: the records of one `run(steps)`, written
   * by its storage alone (no engine around it) with the same durability, one commit per step;
   * steps per second. Raiment's is a bare better-sqlite3 loop with the journal's schema and
   * pragmas: one fsync'd commit per step.
   */
  floor?(steps: number): Promise<number>
  /** Stops the engine and everything it started (servers, pools, temp files). */
  close(): Promise<void>
}

/**
 * An engine that cannot run on this machine (PostgreSQL unreachable, restate-server did not
 * start). The bench reports the system as skipped with this message and runs the others.
 */
export class EngineUnavailable extends Error {
  readonly code = 'BENCH_ENGINE_UNAVAILABLE'
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'EngineUnavailable'
  }
}

/** The systems the bench knows, in the order it runs and charts them. */
export const SYSTEMS = ['raiment', 'dbos', 'restate'] as const
export type SystemName = (typeof SYSTEMS)[number]

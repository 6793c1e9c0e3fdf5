/**
 * The journal table of passivated threads (src/journal-schema.ts appends this migration: schema
 * version 14; and `filterMigration`: 15).
 *
 * One row per thread that left memory while it waited (src/passivation/passivation.ts): what wakes
 * it. `due`: the soonest wall-clock time (ms since the epoch) one of its waits ends (a sleep's
 * deadline, a receive's timeout), or null; `mailbox`: 1 when it waits for a message, and `filter`
 * which one (src/passivation/waits.ts: its receive's pattern, or the number its predicate receive
 * looked up to; NULL: any message; replay evaluates the receive again); `joins`: the thread
 * whose end it waits for, or null; `at`: when it was passivated. Indexed by what fires them.
 */
export function passivationMigration(): string {
  return `CREATE TABLE passivated (
     thread TEXT PRIMARY KEY,
     due INTEGER,
     mailbox INTEGER NOT NULL,
     joins TEXT,
     at INTEGER NOT NULL
   ) WITHOUT ROWID;
   CREATE INDEX passivated_due ON passivated(due) WHERE due IS NOT NULL;
   CREATE INDEX passivated_joins ON passivated(joins) WHERE joins IS NOT NULL;`
}

/** Schema version 15: which message wakes a passivated receiver (NULL, as rows written before: any). */
export function filterMigration(): string {
  return 'ALTER TABLE passivated ADD COLUMN filter TEXT;'
}

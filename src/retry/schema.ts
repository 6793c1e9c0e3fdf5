/**
 * The journal table of retried attempts (src/journal-schema.ts appends this migration).
 *
 * One row per failed attempt of a call that is retried, by call id and attempt number (from 1):
 * its error, when it ran, and when the next attempt may start (the durable back-off). The call's
 * final outcome stays an ordinary journal entry.
 */
export function retryMigration(): string {
  return `CREATE TABLE retry_attempts (
     call TEXT NOT NULL,
     n INTEGER NOT NULL,
     thread TEXT NOT NULL,
     name TEXT NOT NULL,
     error TEXT NOT NULL,
     started INTEGER NOT NULL,
     ended INTEGER NOT NULL,
     due INTEGER NOT NULL,
     PRIMARY KEY (call, n)
   ) WITHOUT ROWID;
   CREATE INDEX retry_attempts_thread ON retry_attempts(thread);`
}

/**
 * The journal table of schedules (src/journal-schema.ts appends this migration).
 *
 * One row per schedule: its definition, whether it is paused, and `upto`, the scheduled time up
 * to which every time has been handled (fired, or skipped by its policy). `upto` moves in the
 * same transaction as the spawn of the thread of the time it moves to.
 */
export function schedulesMigration(): string {
  return `CREATE TABLE schedules (
     name TEXT PRIMARY KEY,
     cron TEXT NOT NULL,
     tz TEXT NOT NULL,
     type TEXT NOT NULL,
     params TEXT NOT NULL,
     missed TEXT NOT NULL,
     paused INTEGER NOT NULL DEFAULT 0,
     upto INTEGER NOT NULL,
     last_fired INTEGER,
     last_thread TEXT,
     source TEXT NOT NULL,
     created INTEGER NOT NULL
   ) WITHOUT ROWID;`
}

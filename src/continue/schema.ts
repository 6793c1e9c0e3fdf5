/**
 * The journal column of continue-as-new (src/journal-schema.ts appends this migration): how many
 * times each thread continued as new. Its call ids are scoped by it (src/continue/continue.ts),
 * and `raiment show` and dumps tell it.
 */
export function continueMigration(): string {
  return `ALTER TABLE threads ADD COLUMN continued INTEGER NOT NULL DEFAULT 0;`
}

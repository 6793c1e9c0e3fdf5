/**
 * What a publisher confirm's error means. amqplib calls a publish's callback with an error in two
 * cases: the broker nacked the record ('message nacked'), or the channel closed before its confirm
 * came ('channel closed': every record unconfirmed then, on each lost connection). Only the first
 * is a refusal by the broker; the second is the connection loss, which src/amqp/connection.ts
 * already logs, and the records are published again on the next channel.
 */

/** The pause (ms) before the replicator publishes again, or tries again to resume or checkpoint. */
export const RETRY_MS = 500

/** Did the broker nack the record (as opposed to the channel closing under it)? */
export function isNack(err: unknown): boolean {
  return err instanceof Error && /nack/i.test(err.message)
}

/** Logs a real nack of a record of journal `weaveId`; says nothing when the channel closed. */
export function logNack(log: (line: string) => void, weaveId: string, err: unknown): void {
  if (!isNack(err)) return
  log(`raiment: RAIMENT_REPLICATION_REFUSED: the broker refused a record of journal '${weaveId}' (nack); publishing again in ${RETRY_MS} ms (outcomes wait under durability 'replicated')`)
}

/**
 * The CLI's replication side: `--replicate` on `raiment start` (checked at the door), and
 * `raiment restore` (a journal file rebuilt from its stream: backup and restore).
 */
import { RaimentError } from '../errors.js'
import type { Durability } from '../journal.js'
import { brokerUrl, namespaceOf, type BrokerOptions } from './amqp-commands.js'
import { displayPath, note, say } from './common.js'

/** `--replicate` needs a broker; `--durability replicated` needs `--replicate`. */
export class ReplicateNeedsBroker extends RaimentError {
  constructor(what: string) {
    super('RAIMENT_REPLICATE_NEEDS_BROKER', what)
  }
}

/**
 * Checks `start`'s replication options before anything is opened.
 * @throws ReplicateNeedsBroker (RAIMENT_REPLICATE_NEEDS_BROKER)
 */
export function checkReplicate(o: BrokerOptions & { replicate?: boolean; durability: Durability }): void {
  if (o.replicate === true && brokerUrl(o) === undefined) {
    throw new ReplicateNeedsBroker('--replicate copies the journal to a RabbitMQ stream: pass --amqp URL (or set RAIMENT_AMQP_URL), e.g. --amqp amqp://127.0.0.1:5672 --replicate (the guest login of a RabbitMQ on this host)')
  }
  if (o.durability === 'replicated' && o.replicate !== true) {
    throw new ReplicateNeedsBroker("--durability replicated waits for the broker's copy of each commit: add --replicate (and --amqp URL)")
  }
}

export interface RestoreOptions extends BrokerOptions {
  from: string
  db: string
}

/** `raiment restore --from WEAVE_ID --db FILE`: rebuilds a journal file from its stream. */
export async function restore(o: RestoreOptions): Promise<number> {
  const url = brokerUrl(o)
  if (url === undefined) throw new ReplicateNeedsBroker("'raiment restore' reads the journal's stream from the broker: pass --amqp URL (or set RAIMENT_AMQP_URL)")
  const { rebuildJournal } = await import('../replication/rebuild.js')
  const r = await rebuildJournal({ url, namespace: namespaceOf(o), weaveId: o.from, file: o.db, log: note })
  const rate = r.ms > 0 ? Math.round((r.entries / r.ms) * 1000) : 0
  say(
    `restored journal '${o.from}' to ${displayPath(o.db)}: generation ${r.generation}, epoch ${r.epoch}, up to batch ${r.lastRseq}; ` +
      `${r.entries} entries from ${r.records} records in ${(r.ms / 1000).toFixed(2)} s (${rate} entries/s)`,
  )
  const ns = namespaceOf(o) === 'raiment' ? '' : ` --namespace ${namespaceOf(o)}`
  note(`start it with: raiment start --db ${o.db} --amqp URL${ns} --replicate (once no weave runs '${o.from}' any more: two weaves must never run one journal); it runs at epoch ${r.epoch + 1}, and a weave still running '${o.from}' at a lower one (frozen, or cut off) is fenced as soon as it runs again`)
  return 0
}

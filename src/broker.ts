/**
 * Raiment over RabbitMQ, for programs (`import … from 'raiment/broker'`); the CLI's
 * `raiment start --amqp URL [--replicate]` runs the same. Kept apart from `raiment` itself, so
 * a program that runs one weave on its own never loads amqplib.
 *
 * - `AmqpLink` joins a weave to the other weaves of a namespace (messages, spawns, names, moves
 *   between weaves), and replicates its journal (`Weave.open({ remote: link, replicate: true })`).
 * - `ReplicatedHost` runs a replicated weave as `raiment start --replicate` does: with its lease,
 *   fencing, and the takeover of replicated weaves that stop heartbeating (docs/host-loss.md).
 * - `rebuildJournal` writes a journal file from a weave's stream (`raiment restore`).
 *
 * @example
 * const link = await AmqpLink.connect({ url: 'amqp://guest:guest@127.0.0.1:5672' })
 * const weave = await Weave.open({ db: 'a.db', weaveId: 'a', remote: link, replicate: true, durability: 'replicated' })
 * await link.start(weave)
 */
export { AmqpLink } from './amqp/link.js'
export type { AmqpOptions } from './amqp/link.js'
export { BrokerLoginRefused, BrokerLost, BrokerUnreachable, BrokerVhostRefused, InvalidBrokerUrl } from './amqp/connection.js'
export { ReplicatedHost } from './replication/host.js'
export type { HostOptions, TakeoverInfo } from './replication/host.js'
export { rebuildJournal } from './replication/rebuild.js'
export type { RebuildOptions, RebuildResult } from './replication/rebuild.js'
export { Fenced, RebuildFailed, ReplicationUnavailable } from './replication/errors.js'
export { WeaveIdInUse } from './replication/lease.js'

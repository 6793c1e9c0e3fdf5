/**
 * The live weaves of a broker namespace, for the Weaves page (`raiment ui --amqp URL`): a
 * listener on the heartbeat exchange, as `raiment weaves` is, kept attached for as long as the UI
 * runs and re-attached when the connection comes back. It announces nothing and sends no work.
 */
import { BrokerConnection } from '../amqp/connection.js'
import { Membership, type Seen } from '../amqp/membership.js'
import { Topology } from '../amqp/topology.js'

export type LiveWeave = Seen

export class LiveWeaves {
  readonly #broker: BrokerConnection
  #members: Membership
  readonly #topology: Topology
  #down: string | null = null

  private constructor(broker: BrokerConnection, topology: Topology) {
    this.#broker = broker
    this.#topology = topology
    this.#members = new Membership(topology, null, 1_000)
  }

  /**
   * Connects and starts listening; every live weave answers the probe at once.
   * @throws BrokerUnreachable / BrokerLoginRefused / InvalidBrokerUrl
   */
  static async open(url: string, namespace: string, log: (line: string) => void): Promise<LiveWeaves> {
    const broker = await BrokerConnection.open(url, log)
    const w = new LiveWeaves(broker, new Topology(namespace))
    await w.#attach()
    broker.on('down', (e) => {
      w.#down = `the broker connection was lost (${e.message}); reconnecting`
    })
    broker.on('up', () => {
      w.#down = null
      w.#members = new Membership(w.#topology, null, 1_000)
      void w.#attach().catch((e: Error) => (w.#down = `could not listen to the heartbeats: ${e.message}`))
    })
    return w
  }

  async #attach(): Promise<void> {
    const conn = this.#broker.connection
    if (conn === null) return
    await this.#members.attach(conn)
    this.#members.probe()
  }

  get namespace(): string {
    return this.#topology.ns
  }

  /** The weaves heard within three of their heartbeat intervals. */
  live(): LiveWeave[] {
    return this.#members.live()
  }

  /** Why the view may be stale, or null. */
  get problem(): string | null {
    return this.#down
  }

  /** Changes with every heartbeat heard. */
  signature(): string {
    return this.live()
      .map((w) => `${w.id}@${w.at}`)
      .join(',')
  }

  async close(): Promise<void> {
    await this.#members.leave().catch(() => {})
    await this.#broker.close()
  }
}

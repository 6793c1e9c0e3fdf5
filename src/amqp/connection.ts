/**
 * One connection to the broker, kept up: the first connect fails loudly (a wrong URL or password
 * is a mistake to report at start), later losses are retried with capped exponential backoff.
 *
 * Invariants:
 * - 'up' is emitted with each new connection, 'down' once per loss; between them the weave keeps
 *   working locally and its outbound messages wait in the outbox.
 * - The state is logged once per change (lost, restored), never once per retry. A connection
 *   lost again soon after it was made (within STABLE_MS: a step on it failed and closed it, as a
 *   stream with no replica on the node does) is a failed attempt: the back-off goes on doubling
 *   rather than starting over, and after the first such loss is said the others are not
 *   (nor their reconnects), only counted, said once the connection has stayed up STABLE_MS.
 * - Every socket has Nagle off (`noDelay: true`): with it on, each request waits ~44 ms.
 */
import { EventEmitter } from 'node:events'
import amqp, { type ChannelModel } from 'amqplib'
import { RaimentError } from '../errors.js'
import { StallWatch } from './stall.js'

export class BrokerUnreachable extends RaimentError {
  constructor(url: string, cause: Error) {
    super(
      'RAIMENT_BROKER_UNREACHABLE',
      `cannot reach the broker at ${redact(url)} (${cause.message}); is RabbitMQ running there? Start one with 'rabbitmq-server -detached', or fix --amqp`,
      { cause },
    )
  }
}

/** The broker connection closed under a step that needed it (a weave's start); nothing of the step was done. */
export class BrokerLost extends RaimentError {
  constructor(url: string, what: string, cause: Error) {
    super('RAIMENT_BROKER_LOST', `the connection to the broker at ${redact(url)} closed while ${what} (${whyLost(cause)}); nothing ran: start it again once the broker answers`, { cause })
  }
}

/** Whether `e` is amqplib's word that a channel or connection closed under a call (not a bug). */
export function isClosedUnder(e: unknown): e is Error {
  return e instanceof Error && !(e instanceof RaimentError) && /Channel ended|Channel closed|Connection closed|Unexpected close|IllegalOperationError/.test(`${e.name}: ${e.message}`)
}

export class BrokerLoginRefused extends RaimentError {
  constructor(url: string, cause: Error) {
    super(
      'RAIMENT_BROKER_LOGIN_REFUSED',
      `the broker at ${redact(url)} refused the login (ACCESS_REFUSED): check the user name and password in --amqp (amqp://USER:PASSWORD@HOST:PORT)`,
      { cause },
    )
  }
}

/**
 * The broker closed the connection when asked to open its virtual host (the URL's path): no such
 * vhost there, or the user may not use it. (amqplib does not pass the broker's reason on.)
 */
export class BrokerVhostRefused extends RaimentError {
  readonly vhost: string
  constructor(url: string, cause: Error) {
    const vhost = vhostOf(url)
    super(
      'RAIMENT_BROKER_VHOST_REFUSED',
      `the broker at ${redact(url)} refused to open virtual host '${vhost}' (the path of --amqp): it has no such vhost, or the user may not use it. ` +
        `Create it and let the user in (rabbitmqctl add_vhost ${vhost}; rabbitmqctl set_permissions -p ${vhost} USER '.*' '.*' '.*'), or fix the path of --amqp (a URL that ends at HOST:PORT names the default vhost '/')`,
      { cause },
    )
    this.vhost = vhost
  }
}

/** The virtual host a URL names, as amqplib reads it: its path without the first '/' ('/' when none). */
function vhostOf(url: string): string {
  try {
    const path = new URL(url).pathname
    return path.length > 1 ? decodeURIComponent(path.slice(1)) : '/'
  } catch {
    return '/'
  }
}

export class InvalidBrokerUrl extends RaimentError {
  constructor(url: string, why: string) {
    super('RAIMENT_INVALID_BROKER_URL', `--amqp ${JSON.stringify(redact(url))} is not a broker URL (${why}); expected amqp://USER:PASSWORD@HOST:PORT`)
  }
}

/** The URL as it was typed (never normalised, nothing added), with its password hidden, for messages and logs. */
export function redact(url: string): string {
  const login = /^([a-z][a-z0-9+.-]*:\/\/[^:@/?#]*):[^@/?#]*@/i
  return login.test(url) ? url.replace(login, '$1:***@') : url.replace(/:[^:@/]*@/, ':***@')
}

const FIRST_DELAY_MS = 100
const MAX_DELAY_MS = 5_000
/** A connection that lasts this long (ms) after a reconnect is up again for good: its back-off starts over. */
const STABLE_MS = 5_000

export interface BrokerEvents {
  up: [ChannelModel]
  down: [Error]
}

export class BrokerConnection extends EventEmitter<BrokerEvents> {
  /** The URL as given (what messages quote); the heartbeat is asked for apart. */
  readonly url: string
  readonly #heartbeatS: number | undefined
  readonly #log: (line: string) => void
  #conn: ChannelModel | null = null
  #closed = false
  #timer: NodeJS.Timeout | null = null
  #lostAt = 0
  /** The delay before the last attempt to reconnect (ms). */
  #delay = FIRST_DELAY_MS
  /** When the connection now was made by a reconnect (0: the first, or none). */
  #reconnectedAt = 0
  /** Losses not said (the same as the one before, soon after a reconnect) since the connection was last up for good. */
  #muted = 0
  /** The last loss was not said (nor is its reconnect). */
  #lastMuted = false
  /** A loss soon after a reconnect has been said since the connection was last up for good. */
  #quickSaid = false
  #stableTimer: NodeJS.Timeout | null = null
  /** A loss while this process stalled is said so, and counted from when the stall began. */
  readonly #stalls = new StallWatch()
  /**
   * What the weave does while the connection is down, said when it is lost; `restored`, added to
   * the line when it is back. A weave under a lease (src/replication/) holds its threads instead.
   */
  whileDown: { lost: string; restored: string } = {
    lost: 'threads keep running here and outbound messages wait in the outbox (those the broker had not confirmed are published again once reconnected, and still taken once)',
    restored: '',
  }

  /**
   * Whose connection this is, at the head of its lost and restored lines ("weave 'a': "): a process
   * that hosts several journals (its own, one it took over) has one connection for each.
   */
  label = ''

  private constructor(url: string, log: (line: string) => void, heartbeatS: number | undefined) {
    super()
    this.url = url
    this.#heartbeatS = heartbeatS
    this.#log = log
  }

  /**
   * Connects once, or throws what is wrong (unreachable, login refused, vhost refused, not a URL).
   * `heartbeatS`: the AMQP heartbeat to ask for (else the URL's, or the broker's).
   * @example
   * const broker = await BrokerConnection.open('amqp://guest:guest@127.0.0.1:5672', console.error)
   */
  static async open(url: string, log: (line: string) => void, heartbeatS?: number): Promise<BrokerConnection> {
    let u: URL
    try {
      u = new URL(url)
    } catch (e) {
      throw new InvalidBrokerUrl(url, (e as Error).message)
    }
    if (u.protocol !== 'amqp:' && u.protocol !== 'amqps:') throw new InvalidBrokerUrl(url, `the scheme is ${u.protocol}, not amqp:`)
    const b = new BrokerConnection(url, log, heartbeatS)
    try {
      b.#adopt(await connect(url, heartbeatS))
    } catch (e) {
      b.#stalls.stop()
      throw e
    }
    return b
  }

  /** The connection now, or null while it is down. */
  get connection(): ChannelModel | null {
    return this.#conn
  }

  #adopt(conn: ChannelModel): void {
    this.#conn = conn
    conn.on('error', () => {
      // 'close' follows with the same error; that is where the loss is handled.
    })
    conn.on('close', (err?: Error) => {
      if (this.#conn !== conn) return
      this.#conn = null
      if (this.#closed) return
      const lived = Date.now() - this.#reconnectedAt
      // Not for a close the broker was asked for (an operator's, a restart): that is its reason.
      const stall = /CONNECTION_FORCED/.test(err?.message ?? '') ? null : this.#stalls.recent()
      const why =
        whyLost(err) +
        (stall === null ? '' : `; this process had stopped running for ${(stall.ms / 1000).toFixed(1)} s (frozen, as by SIGSTOP, or its event loop blocked), so the broker stopped hearing it`)
      const quick = this.#reconnectedAt > 0 && lived < STABLE_MS
      // A failed attempt backs off on; after the first of them is said, the others are only counted
      // (their reasons vary as a socket dies: EPIPE, ECONNRESET, an unexpected close).
      this.#lastMuted = quick && this.#quickSaid
      if (quick) this.#quickSaid = true
      if (this.#lastMuted) this.#muted++
      else {
        const again = quick ? ` (${(lived / 1000).toFixed(1)} s after it was restored: backing off, up to ${MAX_DELAY_MS / 1000} s between attempts; lost so again, it is not said until it stays up)` : ''
        this.#log(`raiment: ${this.label}broker connection lost: ${why}; ${this.whileDown.lost}; reconnecting${again}`)
      }
      if (!quick) {
        this.#lostAt = stall?.from ?? Date.now()
        this.#muted = 0
      }
      this.#delay = quick ? Math.min(this.#delay * 2, MAX_DELAY_MS) : FIRST_DELAY_MS
      this.#reconnectedAt = 0
      this.emit('down', err ?? new Error('closed'))
      this.#retry(this.#delay)
    })
    this.emit('up', conn)
  }

  #retry(delay: number): void {
    if (this.#closed) return
    this.#delay = delay
    // Jitter, so weaves that lost the broker together do not come back in lockstep.
    this.#timer = setTimeout(() => {
      this.#timer = null
      connect(this.url, this.#heartbeatS).then(
        (conn) => {
          if (this.#closed) {
            void conn.close().catch(() => {})
            return
          }
          if (!this.#lastMuted) this.#log(`raiment: ${this.label}broker connection restored after ${((Date.now() - this.#lostAt) / 1000).toFixed(1)} s${this.whileDown.restored}`)
          this.#reconnectedAt = Date.now()
          this.#watchStable(conn)
          this.#adopt(conn)
        },
        () => this.#retry(Math.min(delay * 2, MAX_DELAY_MS)),
      )
    }, delay * (0.75 + Math.random() * 0.5))
  }

  /** Says, once `conn` has stayed up STABLE_MS after attempts that failed, that it is up, with their count. */
  #watchStable(conn: ChannelModel): void {
    if (this.#stableTimer !== null) clearTimeout(this.#stableTimer)
    this.#stableTimer = setTimeout(() => {
      this.#stableTimer = null
      if (this.#conn !== conn || this.#closed) return
      if (this.#muted > 0) {
        this.#log(
          `raiment: ${this.label}broker connection restored after ${((Date.now() - this.#lostAt) / 1000).toFixed(1)} s, up for ${STABLE_MS / 1000} s now (lost ${this.#muted} more ${this.#muted === 1 ? 'time' : 'times'} in between, soon after a reconnect, as before: not said)`,
        )
      }
      this.#muted = 0
      this.#quickSaid = false
    }, STABLE_MS)
    this.#stableTimer.unref()
  }

  async close(): Promise<void> {
    this.#closed = true
    this.#stalls.stop()
    if (this.#timer) clearTimeout(this.#timer)
    if (this.#stableTimer) clearTimeout(this.#stableTimer)
    const conn = this.#conn
    this.#conn = null
    if (conn) await conn.close().catch(() => {})
  }
}

/** What ended a connection, in words, from the error amqplib closes it with. */
export function whyLost(err: Error | undefined): string {
  const m = (err?.message ?? '').replace(/\s+/g, ' ')
  const forced = /CONNECTION_FORCED - (.*?)"?$/.exec(m)
  if (forced !== null) {
    if (/reason 'shutdown'/.test(forced[1]!)) return `the broker closed it: the broker is stopping or restarting (${forced[1]})`
    return `the broker closed it at an operator's request (rabbitmqctl close_connection, close_all_connections or the management UI: "${forced[1]}")`
  }
  if (/heartbeat timeout/i.test(m)) return 'the broker stopped answering (heartbeat timeout)'
  if (/ECONNRESET|EPIPE|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH/.test(m)) return `the connection dropped (${m}): the broker process died or the network failed`
  if (/^Unexpected close$/.test(m)) return 'the connection closed unexpectedly (the broker dropped it, or the network did)'
  return m === '' ? 'closed' : m
}

async function connect(url: string, heartbeatS: number | undefined): Promise<ChannelModel> {
  try {
    return await amqp.connect(withHeartbeat(url, heartbeatS), { noDelay: true, timeout: 5_000 })
  } catch (e) {
    const err = e as Error
    if (/ACCESS.REFUSED|403/.test(err.message)) throw new BrokerLoginRefused(url, err)
    // The broker answers connection.open with connection.close: it will not open that vhost.
    if (/Expected ConnectionOpenOk; got <ConnectionClose/.test(err.message)) throw new BrokerVhostRefused(url, err)
    throw new BrokerUnreachable(url, err)
  }
}

/** The URL amqplib is given: with `heartbeat` in its query (amqplib reads it from there), when asked for. */
function withHeartbeat(url: string, heartbeatS: number | undefined): string {
  if (heartbeatS === undefined) return url
  const u = new URL(url)
  u.searchParams.set('heartbeat', String(heartbeatS))
  return u.toString()
}

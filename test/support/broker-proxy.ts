/**
 * A TCP proxy in front of the service broker, which a test cuts and restores: the weaves behind
 * it lose the broker (their connections reset, new ones refused) while the broker itself, which
 * other tests share, runs on. Loopback only.
 */
import net from 'node:net'

export interface BrokerProxy {
  /** The AMQP URL through the proxy. */
  url: string
  /** Resets every connection through it and refuses new ones. */
  cut(): void
  /** Lets connections through again (and keeps them: no more `flap`). */
  restore(): void
  /**
   * Resets every connection through it, and each new one `ms` after it is made (its AMQP
   * handshake done: a connection lost soon after it was restored), until `restore`.
   */
  flap(ms: number): void
  /** Connections made through it so far. */
  readonly accepted: number
  /**
   * Resets the weaves' side of every connection through it and leaves the broker's side open and
   * silent, as a lost route does: the broker drops those connections only after its heartbeat
   * timeout. New connections go through at once.
   */
  drop(): void
  /**
   * Stops passing what the broker sends (its confirms, heartbeats) to the weaves; what they send
   * still reaches it. Until `cut`.
   */
  hold(): void
  close(): Promise<void>
}

export async function brokerProxy(port = 5672): Promise<BrokerProxy> {
  const socks = new Set<net.Socket>()
  /** Each connection's two sides: the weave's, the broker's. */
  const pairs = new Set<[net.Socket, net.Socket]>()
  let down = false
  let flapMs: number | null = null
  let accepted = 0
  const server = net.createServer((c) => {
    if (down) return c.destroy()
    accepted++
    if (flapMs !== null) setTimeout(() => c.destroy(), flapMs)
    const u = net.connect(port, '127.0.0.1')
    socks.add(c).add(u)
    const pair: [net.Socket, net.Socket] = [c, u]
    pairs.add(pair)
    c.pipe(u)
    u.pipe(c)
    const end = (): void => {
      if (!pairs.delete(pair)) return
      c.destroy()
      u.destroy()
      socks.delete(c)
      socks.delete(u)
    }
    for (const s of [c, u]) s.on('error', end).on('close', end)
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const cut = (): void => {
    down = true
    for (const s of socks) s.destroy()
    socks.clear()
  }
  return {
    url: `amqp://guest:guest@127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    cut,
    restore: () => {
      down = false
      flapMs = null
    },
    flap: (ms) => {
      flapMs = ms
      for (const s of socks) s.destroy()
      socks.clear()
    },
    get accepted() {
      return accepted
    },
    drop: () => {
      for (const pair of [...pairs]) {
        const [c, u] = pair
        pairs.delete(pair)
        c.unpipe(u)
        u.unpipe(c)
        u.pause()
        c.destroy()
      }
    },
    hold: () => {
      for (const [c, u] of pairs) {
        u.unpipe(c)
        u.pause()
      }
    },
    close: () => {
      cut()
      return new Promise((r) => server.close(() => r()))
    },
  }
}

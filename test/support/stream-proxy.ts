/**
 * A TCP proxy in front of the service broker that reads the AMQP 0-9-1 frames the weaves send and
 * can keep back their publishes to journal streams: the broker never gets them, so never confirms
 * them, as when the node that writes a stream does not take it (its writer away, a leader
 * election). Everything else passes (acks, consumes, other publishes, heartbeats), and the test
 * cuts and restores connections as with ./broker-proxy.ts. Loopback only.
 */
import net from 'node:net'

export interface StreamProxy {
  /** The AMQP URL through the proxy. */
  url: string
  /**
   * From now on, on every connection through it (new ones included), each publish to a journal
   * stream (a routing key with '.journal.') is kept back, with the frames that carry its
   * content. `generations`: only those to generation streams (`~`), not to heads.
   */
  holdJournals(generations?: boolean): void
  /** How many frames it kept back. */
  held(): number
  /** Resets every connection through it and refuses new ones. */
  cut(): void
  /** Lets connections through again. */
  restore(): void
  close(): Promise<void>
}

/** Frame types: method, content header, content body. */
const METHOD = 1
const HEADER = 2
const BODY = 3

export async function streamProxy(port = 5672): Promise<StreamProxy> {
  const socks = new Set<net.Socket>()
  let down = false
  let holding: 'no' | 'all' | 'generations' = 'no'
  let held = 0
  /** True if `frame`, a method frame, is a basic.publish the proxy keeps back. */
  const keeps = (frame: Buffer): boolean => {
    if (holding === 'no' || frame.readUInt16BE(7) !== 60 || frame.readUInt16BE(9) !== 40) return false
    // basic.publish: reserved short, exchange shortstr, routing key shortstr.
    let o = 13
    o += 1 + frame[o]!
    const key = frame.subarray(o + 1, o + 1 + frame[o]!).toString()
    return key.includes('.journal.') && (holding === 'all' || key.includes('~'))
  }
  const server = net.createServer((c) => {
    if (down) return c.destroy()
    const u = net.connect(port, '127.0.0.1')
    socks.add(c).add(u)
    const end = (): void => {
      c.destroy()
      u.destroy()
      socks.delete(c)
      socks.delete(u)
    }
    for (const s of [c, u]) s.on('error', end).on('close', end)
    u.pipe(c)
    let buf = Buffer.alloc(0)
    let started = false
    /** Channels whose publish under way is kept back (its header and body frames with it). */
    const keeping = new Set<number>()
    c.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d])
      if (!started) {
        if (buf.length < 8) return
        u.write(buf.subarray(0, 8)) // the protocol header
        buf = buf.subarray(8)
        started = true
      }
      const out: Buffer[] = []
      // A frame: type (1), channel (2), size (4), payload, end octet.
      while (buf.length >= 7 && buf.length >= 8 + buf.readUInt32BE(3)) {
        const frame = buf.subarray(0, 8 + buf.readUInt32BE(3))
        buf = buf.subarray(frame.length)
        const type = frame[0]!
        const ch = frame.readUInt16BE(1)
        if (type === METHOD) {
          if (keeps(frame)) keeping.add(ch)
          else keeping.delete(ch)
        }
        if (keeping.has(ch) && (type === METHOD || type === HEADER || type === BODY)) held++
        else out.push(frame)
      }
      if (out.length > 0) u.write(Buffer.concat(out))
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const cut = (): void => {
    down = true
    for (const s of socks) s.destroy()
    socks.clear()
  }
  return {
    url: `amqp://guest:guest@127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    holdJournals: (generations = false) => {
      holding = generations ? 'generations' : 'all'
    },
    held: () => held,
    cut,
    restore: () => {
      down = false
    },
    close: () => {
      cut()
      return new Promise((r) => server.close(() => r()))
    },
  }
}

/**
 * Shared by the retry fencing test and its weave child (test/support/retry-fence-child.ts): a
 * thread type that charges once through a local HTTP service under a retry policy, the library
 * that posts there naming the journal file it runs for (`a.db`: weave a in its own process,
 * `a.taken.db`: a taken over by another), and that service, which fails the first request.
 */
import { createServer } from 'node:http'
import { basename } from 'node:path'
import { thread, weaveOf, type WeaveConfig } from 'raiment'
import { listenLocal } from './http.js'

declare module 'raiment' {
  interface Libraries {
    charges: { charge(what: string): Promise<string> }
  }
}

/** `pay`, whose failed attempt is retried after `backoffMs` (no jitter). */
export function payType(backoffMs: number) {
  return thread({
    uses: ['charges'],
    retry: { charges: { attempts: 5, initialInterval: backoffMs, backoffCoefficient: 1, jitter: 0 } },
    async does() {
      return await this.charges.charge('order-1')
    },
  })
}

/** The `charges` library of a weave: posts to the service at `url`; `attempt` is told first, synchronously. */
export function chargesVia(url: string, attempt?: () => void): (config: WeaveConfig) => { charge(what: string): Promise<string> } {
  return (config) => ({
    async charge(what: string): Promise<string> {
      attempt?.()
      const res = await fetch(`${url}/charge`, { method: 'POST', headers: { 'x-journal': basename(weaveOf(config).journal.file) } })
      if (!res.ok) throw new Error(`the service said ${res.status}`)
      return `${what}: ${await res.text()}`
    },
  })
}

export interface ChargeService {
  url: string
  /** The journal file each request came for, in order. */
  readonly requests: string[]
  /** Resolves once a request has come for journal file `file`. */
  from(file: string): Promise<void>
  close(): Promise<void>
}

/** The service: 503 to the first request, 'charged' to every other. */
export async function chargeService(): Promise<ChargeService> {
  const requests: string[] = []
  const waiting: Array<() => void> = []
  const server = createServer((req, res) => {
    requests.push(String(req.headers['x-journal']))
    for (const w of waiting.splice(0)) w()
    if (requests.length === 1) res.writeHead(503).end('later')
    else res.end('charged')
  })
  const { url, close } = await listenLocal(server)
  return {
    url,
    requests,
    from: (file) =>
      new Promise<void>((resolve) => {
        const look = (): void => (requests.includes(file) ? resolve() : void waiting.push(look))
        look()
      }),
    close,
  }
}

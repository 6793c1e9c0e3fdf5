/** A test's HTTP server on 127.0.0.1: listening on a free port, and closed with its connections. */
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'

/** Starts `server` on 127.0.0.1 (a free port); `close` ends its open connections too. */
export async function listenLocal(server: Server): Promise<{ url: string; close: () => Promise<void> }> {
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((ok) => {
        server.closeAllConnections()
        server.close(() => ok())
      }),
  }
}

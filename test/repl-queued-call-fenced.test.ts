/**
 * A replicated weave makes a call that waited in its library's queue (`concurrency`) only past
 * its fencing gate. Such a call follows no release: it starts when the call ahead of it in the
 * queue settles. A weave cut off from the broker while the call ahead was out, whose journal
 * another weave took over meanwhile, made it when that call came back: beside the weave that now
 * runs the thread. The service counts requests by what was asked and the journal file asking
 * (`a.db`: weave a's own; `a.taken.db`: the copy of the weave that took a over).
 */
import { createServer } from 'node:http'
import { basename, join } from 'node:path'
import { thread, weaveOf, type WeaveConfig } from 'raiment'
import { describe, expect, it } from 'vitest'
import { ownTurn } from '../src/group-commit.js'
import { ReplicatedHost } from '../src/replication/host.js'
import { AMQP_URL, brokerTests, brokerUp, CI, freshNamespace, removeNamespace } from './support/broker.js'
import { brokerProxy } from './support/broker-proxy.js'
import { listenLocal } from './support/http.js'
import { dropStreams } from './support/replication.js'
import { tempDir } from './support/tmp.js'
import { signal } from './support/until.js'

declare module 'raiment' {
  interface Libraries {
    parcels: { ship(what: string): Promise<string> }
  }
}

/** Two shipments at once, through a library that makes one call at a time. */
const ship = thread({
  uses: ['parcels'],
  async does() {
    return await Promise.all([this.parcels.ship('first'), this.parcels.ship('second')])
  },
})

/** The service: `what from journal-file` per request; weave a's first request is answered only when `answer` is called. */
async function parcelService() {
  const requests: string[] = []
  let held: (() => void) | null = null
  let heldCame: () => void = () => {}
  const came = new Promise<void>((resolve) => (heldCame = resolve))
  const server = createServer((req, res) => {
    const what = `${String(req.headers['x-what'])} from ${String(req.headers['x-journal'])}`
    requests.push(what)
    if (what === 'first from a.db') {
      held = () => res.end('shipped')
      heldCame()
    } else res.end('shipped')
  })
  const { url, close } = await listenLocal(server)
  return { url, requests, came, answer: () => held?.(), close }
}

/** The `parcels` library: posts to `url`; `answered` is told when a request of weave a's own comes back. */
function parcelsVia(url: string, answered: () => void) {
  return {
    concurrency: 1,
    default: (config: WeaveConfig) => ({
      async ship(what: string): Promise<string> {
        const file = basename(weaveOf(config).journal.file)
        const res = await fetch(`${url}/ship`, { method: 'POST', headers: { 'x-journal': file, 'x-what': what } })
        const text = await res.text()
        if (file === 'a.db') answered()
        return `${what}: ${text}`
      },
    }),
  }
}

describe.skipIf(!brokerUp && !CI)('a queued call of a replicated weave taken over', () => {
  const cleanups = brokerTests()

  it('cut off from the broker while the call ahead of it is out, the weave does not make it; the one that took it over makes both', async () => {
    const ns = freshNamespace()
    const service = await parcelService()
    const proxy = await brokerProxy()
    const { fired: took, fire: tookOver } = signal()
    const { fired: isFenced, fire: fenced } = signal()
    const { fired: firstBack, fire: answered } = signal()
    const host = (id: string, url: string, on: { tookOver?: () => void; fenced?: () => void }): Promise<ReplicatedHost> =>
      ReplicatedHost.start({
        url,
        namespace: ns,
        heartbeatMs: 100,
        takeoverAfterMs: 1000,
        log: () => {},
        weave: { db: join(tempDir(), `${id}.db`), weaveId: id, durability: 'replicated', threads: { ship }, libraries: { parcels: parcelsVia(service.url, answered) }, ioLibs: false, dumps: false, passivateAfter: false },
        fenced: () => on.fenced?.(),
        ...(on.tookOver !== undefined ? { tookOver: on.tookOver } : {}),
      })
    const a = await host('a', proxy.url, { fenced })
    const b = await host('b', AMQP_URL, { tookOver })
    cleanups.push(async () => {
      service.answer()
      await b.close()
      await a.close().catch(() => {})
      await proxy.close()
      await service.close()
      for (const id of ['a', 'b']) await dropStreams(ns, id)
      await removeNamespace(ns, ['a', 'b'])
    })
    const id = a.weave.spawn('ship')
    await service.came
    proxy.cut()
    await took
    // a's first call comes back after b took a over: its queue lets the second one go.
    service.answer()
    await firstBack
    for (let i = 0; i < 3; i++) await ownTurn()
    const end = await b.hosted.get('a')!.join(id)
    expect(end.status === 'done' ? end.result : end).toEqual(['first: shipped', 'second: shipped'])
    proxy.restore()
    await isFenced
    expect(service.requests.filter((r) => r.endsWith('from a.db'))).toEqual(['first from a.db'])
    expect(service.requests.filter((r) => r.endsWith('from a.taken.db')).sort()).toEqual(['first from a.taken.db', 'second from a.taken.db'])
  }, 30_000)
})

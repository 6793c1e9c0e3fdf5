/**
 * A replicated weave makes a retry's next attempt only past its fencing gate. The attempt after
 * a back-off follows no release (the failed attempt's row was released before the wait), so a
 * weave frozen (SIGSTOP) or cut off from the broker during the wait, whose journal another weave
 * took over meanwhile, made it too when its timer fired: beside the attempt of the weave that now
 * runs the thread (a review: scratch/rvS/retry-stop.ts, retry-fenced.ts). The service counts the
 * requests by journal file: `a.db` is weave a's own, `a.taken.db` the copy of the weave that
 * took it over.
 */
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { ReplicatedHost } from '../src/replication/host.js'
import { pendingRetryWaits } from '../src/retry/run.js'
import { AMQP_URL, brokerTests, brokerUp, CI, freshNamespace, removeNamespace } from './support/broker.js'
import { brokerProxy } from './support/broker-proxy.js'
import { runChild, supportScript } from './support/child.js'
import { dropStreams } from './support/replication.js'
import { chargeService, chargesVia, payType } from './support/retry-fence.js'
import { tempDir } from './support/tmp.js'
import { signal, until } from './support/until.js'

const CHILD = supportScript('retry-fence-child.ts')

/** Weave `id` in a ReplicatedHost (taken over after 1 s of silence) on `url`. */
function host(id: string, url: string, ns: string, service: string, backoffMs: number, on: { tookOver?: () => void; fenced?: () => void } = {}): Promise<ReplicatedHost> {
  return ReplicatedHost.start({
    url,
    namespace: ns,
    heartbeatMs: 100,
    takeoverAfterMs: 1000,
    log: () => {},
    weave: { db: join(tempDir(), `${id}.db`), weaveId: id, durability: 'replicated', threads: { pay: payType(backoffMs) }, libraries: { charges: chargesVia(service) }, ioLibs: false, dumps: false, passivateAfter: false },
    fenced: () => on.fenced?.(),
    ...(on.tookOver !== undefined ? { tookOver: on.tookOver } : {}),
  })
}

describe.skipIf(!brokerUp && !CI)('a retry of a replicated weave taken over', () => {
  const cleanups = brokerTests()

  it('cut off from the broker in its back-off, the weave makes no attempt; the one that took it over makes it', async () => {
    const ns = freshNamespace()
    const service = await chargeService()
    const proxy = await brokerProxy()
    const { fired: took, fire: tookOver } = signal()
    const { fired: isFenced, fire: fenced } = signal()
    // The back-off ends past the cut (made as it begins) and before the takeover (1 s of silence after the cut).
    const a = await host('a', proxy.url, ns, service.url, 700, { fenced })
    const b = await host('b', AMQP_URL, ns, service.url, 700, { tookOver })
    cleanups.push(async () => {
      await b.close()
      await a.close().catch(() => {})
      await proxy.close()
      await service.close()
      for (const id of ['a', 'b']) await dropStreams(ns, id)
      await removeNamespace(ns, ['a', 'b'])
    })
    const id = a.weave.spawn('pay')
    await until('a to wait out its back-off', () => pendingRetryWaits() > 0)
    expect(service.requests).toEqual(['a.db'])
    proxy.cut()
    await took
    const end = await b.hosted.get('a')!.join(id)
    expect(end.status === 'done' ? end.result : end).toBe('order-1: charged')
    // a's timer fired before b took a over; a, back, finds it was taken over.
    proxy.restore()
    await isFenced
    expect(service.requests).toEqual(['a.db', 'a.taken.db'])
  }, 30_000)

  it('frozen (SIGSTOP) in its back-off and let run again after the takeover, the weave makes no attempt and exits 3', async () => {
    const ns = freshNamespace()
    const service = await chargeService()
    const b = await host('b', AMQP_URL, ns, service.url, 2000)
    let pid = 0
    let exited = false
    cleanups.push(async () => {
      if (pid !== 0 && !exited) process.kill(pid, 'SIGKILL')
      await b.close()
      await service.close()
      for (const id of ['a', 'b']) await dropStreams(ns, id)
      await removeNamespace(ns, ['a', 'b'])
    })
    const run = runChild(CHILD, [tempDir(), ns, AMQP_URL, service.url, '2000'], {
      onLine: (line) => {
        if (line.startsWith('pid ')) pid = Number(line.slice(4))
        // Frozen in its back-off: the attempt after it is due 2 s after the first, long before b can take a over.
        if (line === 'backoff') process.kill(pid, 'SIGSTOP')
      },
    }).finally(() => (exited = true))
    // b takes a over (its lease is free once the broker drops the frozen connection) and makes the attempt.
    await service.from('a.taken.db')
    expect(service.requests).toEqual(['a.db', 'a.taken.db'])
    process.kill(pid, 'SIGCONT')
    // Let run again, its timer long due: it finds its gate closed, then that it was taken over.
    const ended = await run
    expect(ended.code, ended.stderr).toBe(3)
    // (An attempt made as it exits may not reach the service: it says so as it starts.)
    expect(ended.lines.slice(1)).toEqual(['attempt', 'backoff', 'fenced RAIMENT_FENCED'])
    expect(service.requests).toEqual(['a.db', 'a.taken.db'])
  }, 30_000)
})

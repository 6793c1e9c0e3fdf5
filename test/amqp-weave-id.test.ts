/**
 * One weave id, one process on a broker. A user trial started a copy of a running weave's journal
 * under the same id (`raiment start --id x --db x-restored.db`): it joined with no warning, both
 * took x's messages and ran its threads, and 8 of 10 saga keys were charged twice. A weave that is
 * not replicated now claims its id's lease before it resumes anything; while another process
 * holds it, the weave is refused with RAIMENT_WEAVE_ID_IN_USE and runs nothing.
 */
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { thread, Weave } from 'raiment'
import { WeaveIdInUse } from 'raiment/broker'
import { AmqpLink } from '../src/amqp/link.js'
import { AMQP_URL, brokerTests, brokerUp, CI, freshNamespace, removeNamespace } from './support/broker.js'
import { tempDir } from './support/tmp.js'
import { openWeave } from './support/weaves.js'
import { brokerProxy } from './support/broker-proxy.js'

/** Takes one message and returns it. */
const take = thread({ uses: ['mailbox'], async does() { return this.mailbox.receive() } })
/** Each start of a copy's thread, replays included (its body runs again when its weave resumes it). */
const ran: string[] = []
const copyRuns = thread({ uses: ['mailbox'], async does() { ran.push('copy'); return this.mailbox.receive() } })

describe.skipIf(!brokerUp && !CI)('a weave id runs in one process of a broker', () => {
  const cleanups = brokerTests()

  it('a second journal under a running weave\'s id is refused before it runs anything; the first takes its messages; once it is closed, the id is free', async () => {
    const ns = freshNamespace()
    cleanups.push(() => removeNamespace(ns, ['x', 'y']))
    const first = await openWeave(cleanups, tempDir(), ns, 'x', { take, copyRuns })
    const taker = first.weave.spawn('take')
    await first.weave.committed()

    // The copy: another journal of weave x, with a thread of its own to resume.
    const copyDb = join(tempDir(), 'x-copy.db')
    const offline = await Weave.open({ db: copyDb, weaveId: 'x', threads: { take, copyRuns }, ioLibs: false, dumps: false, durability: 'memory' })
    const waiting = offline.spawn('copyRuns')
    await offline.committed()
    await offline.close()
    ran.length = 0

    const link = await AmqpLink.connect({ url: AMQP_URL, namespace: ns, heartbeatMs: 100, log: () => {} })
    cleanups.push(() => link.close())
    let err: unknown
    try {
      await Weave.open({ db: copyDb, weaveId: 'x', threads: { take, copyRuns }, ioLibs: false, dumps: false, durability: 'memory', remote: link })
    } catch (e) {
      err = e
    }
    expect(err).toBeInstanceOf(WeaveIdInUse)
    expect((err as WeaveIdInUse).code).toBe('RAIMENT_WEAVE_ID_IN_USE')
    expect((err as Error).message).toContain(`weave id 'x' is in use on this broker (namespace '${ns}')`)
    // Refused before it resumed anything: the copy's waiting thread did not run.
    expect(ran).toEqual([])

    // The running x still takes what is sent to it.
    const y = await openWeave(cleanups, tempDir(), ns, 'y', { take })
    expect(y.weave.send(taker, 'to x').delivered).toBe(true)
    expect(await first.weave.join(taker)).toMatchObject({ status: 'done', result: 'to x' })

    // Closed, it frees the id: the copy opens (its own journal, its own thread).
    await first.close()
    const copy = await Weave.open({ db: copyDb, weaveId: 'x', threads: { take, copyRuns }, ioLibs: false, dumps: false, durability: 'memory', remote: link })
    cleanups.push(() => copy.close())
    await link.start(copy)
    expect(ran).toEqual(['copy'])
    expect(y.weave.send(waiting, 'to the copy').delivered).toBe(true)
    expect(await copy.join(waiting)).toMatchObject({ status: 'done', result: 'to the copy' })
  })

  it('a weave whose host is lost (its connection silent) frees its id within the claim\'s wait: the same id opened elsewhere runs, with no heartbeat in the URL (before, the broker\'s 60 s heartbeat held it for minutes)', async () => {
    const ns = freshNamespace()
    cleanups.push(() => removeNamespace(ns, ['x', 'y']))
    const proxy = await brokerProxy()
    cleanups.push(() => proxy.close())
    const lost = await AmqpLink.connect({ url: proxy.url, namespace: ns, heartbeatMs: 100, log: () => {} })
    const x = await Weave.open({ db: join(tempDir(), 'x.db'), weaveId: 'x', threads: { take, copyRuns }, ioLibs: false, dumps: false, durability: 'memory', remote: lost })
    cleanups.push(async () => (await lost.close(), await x.close()))
    await lost.start(x)
    // Its journal, restored on another host: a copy with a thread of its own to resume.
    const copyDb = join(tempDir(), 'x-restored.db')
    const offline = await Weave.open({ db: copyDb, weaveId: 'x', threads: { take, copyRuns }, ioLibs: false, dumps: false, durability: 'memory' })
    const waiting = offline.spawn('copyRuns')
    await offline.committed()
    await offline.close()
    ran.length = 0
    // The host is lost: its connection goes silent, no FIN.
    proxy.drop()
    const link = await AmqpLink.connect({ url: AMQP_URL, namespace: ns, heartbeatMs: 100, log: () => {} })
    cleanups.push(() => link.close())
    const copy = await Weave.open({ db: copyDb, weaveId: 'x', threads: { take, copyRuns }, ioLibs: false, dumps: false, durability: 'memory', remote: link })
    cleanups.push(() => copy.close())
    await link.start(copy)
    expect(ran).toEqual(['copy'])
    const y = await openWeave(cleanups, tempDir(), ns, 'y', { take })
    expect(y.weave.send(waiting, 'to the restored x').delivered).toBe(true)
    expect(await copy.join(waiting)).toMatchObject({ status: 'done', result: 'to the restored x' })
  })

  it('a weave whose connection is lost while the broker still holds it waits for its own lease on the new one, then takes its messages (a review)', async () => {
    const ns = freshNamespace()
    cleanups.push(() => removeNamespace(ns, ['x', 'y']))
    const proxy = await brokerProxy()
    cleanups.push(() => proxy.close())
    const lines: string[] = []
    let back: () => void = () => {}
    const again = new Promise<void>((r) => (back = r))
    // A 1 s heartbeat: the broker drops the connection the proxy leaves silent within ~3 s.
    const link = await AmqpLink.connect({ url: `${proxy.url}?heartbeat=1`, namespace: ns, heartbeatMs: 100, log: (l) => (lines.push(l), /is this weave's again/.test(l) && back()) })
    const x = await Weave.open({ db: join(tempDir(), 'x.db'), weaveId: 'x', threads: { take }, ioLibs: false, dumps: false, durability: 'memory', remote: link })
    cleanups.push(async () => (await link.close(), await x.close()))
    await link.start(x)
    const y = await openWeave(cleanups, tempDir(), ns, 'y', { take })
    const taker = x.spawn('take')
    await x.committed()
    proxy.drop()
    await again
    expect(lines.some((l) => /^raiment: RAIMENT_WEAVE_ID_IN_USE: the lease of weave id 'x' is held by another connection: this weave's own, lost/.test(l)), lines.join('\n')).toBe(true)
    expect(y.weave.send(taker, 'after the loss').delivered).toBe(true)
    expect(await x.join(taker)).toMatchObject({ status: 'done', result: 'after the loss' })
  })
})

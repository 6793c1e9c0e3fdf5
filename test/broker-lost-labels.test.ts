/**
 * A process that hosts several journals (its own, one it took over) has a broker connection for
 * each, and each says when it is lost and restored: the lines name their weave. (A user trial saw
 * two identical "broker connection lost" lines and could not tell which journal each was for.)
 */
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { thread, Weave } from 'raiment'
import { AmqpLink } from '../src/amqp/link.js'
import { brokerTests, brokerUp, CI, freshNamespace, removeNamespace } from './support/broker.js'
import { brokerProxy } from './support/broker-proxy.js'
import { dropStreams } from './support/replication.js'
import { tempDir } from './support/tmp.js'

const idle = thread({
  uses: ['mailbox'],
  async does() {
    return await this.mailbox.receive()
  },
})

describe.skipIf(!brokerUp && !CI)('the lines of a lost broker connection', () => {
  const cleanups = brokerTests()

  it('name the weave whose connection it is, replicated or not', async () => {
    const proxy = await brokerProxy()
    const ns = freshNamespace()
    const dir = tempDir()
    const lines: string[] = []
    cleanups.push(async () => {
      await proxy.close()
      await dropStreams(ns, 'a')
      await removeNamespace(ns, ['a', 'b'])
    })
    const open = async (id: string, replicate: boolean) => {
      const link = await AmqpLink.connect({ url: proxy.url, namespace: ns, log: (l) => lines.push(l) })
      const weave = await Weave.open({ db: join(dir, `${id}.db`), weaveId: id, threads: { idle }, ioLibs: false, dumps: false, remote: link, ...(replicate ? { replicate: true, durability: 'replicated' as const } : { durability: 'memory' as const }) })
      await link.start(weave)
      cleanups.push(async () => {
        await weave.close()
        await link.close()
      })
      return link
    }
    const links = [await open('a', true), await open('b', false)]
    const down = links.map((l) => new Promise<void>((r) => l.broker.once('down', () => r())))
    proxy.cut()
    await Promise.all(down)
    const lost = lines.filter((l) => l.includes('broker connection lost'))
    expect(lost.map((l) => /^raiment: weave '(\w+)': broker connection lost: /.exec(l)?.[1]).sort(), lines.join('\n')).toEqual(['a', 'b'])
    const up = links.map((l) => new Promise<void>((r) => l.broker.once('up', () => r())))
    proxy.restore()
    await Promise.all(up)
    const restored = lines.filter((l) => l.includes('broker connection restored'))
    expect(restored.map((l) => /^raiment: weave '(\w+)': broker connection restored /.exec(l)?.[1]).sort(), lines.join('\n')).toEqual(['a', 'b'])
  })
})

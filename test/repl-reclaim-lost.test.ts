/**
 * A replicated weave that starts while another process holds its lease asks for it back; the
 * broker connection closing meanwhile ends the start with one line saying so
 * (RAIMENT_BROKER_LOST), not as a bug (a user trial's weave exited with RAIMENT_INTERNAL:
 * "Channel ended, no reply will be forthcoming"). Nothing of the weave ran.
 */
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { thread } from 'raiment'
import { ReplicatedHost } from 'raiment/broker'
import { AMQP_URL, brokerUp, CI, freshNamespace } from './support/broker.js'
import { brokerProxy } from './support/broker-proxy.js'
import { dropStreams } from './support/replication.js'
import { tempDir } from './support/tmp.js'

const idle = thread({ uses: [], async does() { return 1 } })

describe.skipIf(!brokerUp && !CI)('a replicated weave asking for its lease back', () => {
  it('loses the broker: the start ends with RAIMENT_BROKER_LOST, and the weave holding the lease runs on', async () => {
    const dir = tempDir()
    const namespace = freshNamespace()
    const holder = await ReplicatedHost.start({ url: AMQP_URL, namespace, weave: { db: join(dir, 'a.db'), weaveId: 'lost-a', threads: { idle }, ioLibs: false }, log: () => {}, fenced: () => {} })
    const proxy = await brokerProxy()
    try {
      let asking: () => void = () => {}
      const asked = new Promise<void>((resolve) => (asking = resolve))
      const second = ReplicatedHost.start({
        url: proxy.url,
        namespace,
        weave: { db: join(dir, 'a2.db'), weaveId: 'lost-a', threads: { idle }, ioLibs: false },
        log: (line) => {
          if (line.includes('asking for it back')) asking()
        },
        fenced: () => {},
        reclaimMs: 30_000,
      })
      const ended = second.then(
        () => null,
        (e: unknown) => e as Error,
      )
      await asked
      proxy.cut()
      const err = await ended
      expect(err).toMatchObject({ code: 'RAIMENT_BROKER_LOST' })
      expect(err!.message).toMatch(/^the connection to the broker at amqp:\/\/guest:\*\*\*@127\.0\.0\.1:\d+ closed while weave lost-a started \(.*\); nothing ran: start it again once the broker answers$/)
      expect(holder.weave.journal.closed).toBe(false)
    } finally {
      await proxy.close()
      await holder.close()
      await dropStreams(namespace, 'lost-a')
    }
  }, 60_000)
})

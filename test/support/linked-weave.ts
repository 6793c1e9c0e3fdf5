/**
 * A weave joined to a namespace of the service broker, in this process, on a journal of its own:
 * what the broker tests open again and again.
 */
import { join } from 'node:path'
import { Weave, type WeaveOptions } from 'raiment'
import { AmqpLink, type AmqpOptions } from '../../src/amqp/link.js'
import { AMQP_URL } from './broker.js'

export interface LinkedWeave {
  link: AmqpLink
  weave: Weave
  /** Closes the link, then the weave (once; again does nothing). */
  close(): Promise<void>
}

/**
 * Weave `id` of namespace `ns` on `dir/<id>.db` (durability 'memory', no io-libs, no dumps,
 * heartbeat 100 ms, unless `link` and `weave` say otherwise), started on its link; its close is
 * pushed to `cleanups`.
 */
export async function linkedWeave(
  o: { dir: string; ns: string; id: string; link?: Partial<AmqpOptions>; weave?: WeaveOptions },
  cleanups: Array<() => Promise<void>>,
): Promise<LinkedWeave> {
  const link = await AmqpLink.connect({ url: AMQP_URL, namespace: o.ns, heartbeatMs: 100, log: () => {}, ...o.link })
  const weave = await Weave.open({ db: join(o.dir, `${o.id}.db`), weaveId: o.id, ioLibs: false, dumps: false, durability: 'memory', ...o.weave, remote: link })
  await link.start(weave)
  let closed = false
  const close = async (): Promise<void> => {
    if (closed) return
    closed = true
    await link.close()
    await weave.close()
  }
  cleanups.push(close)
  return { link, weave, close }
}

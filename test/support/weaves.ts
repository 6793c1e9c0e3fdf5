/**
 * Weaves joined to the broker in the test's own process: each on its own journal in a temp dir,
 * all on one fresh namespace, closed (and the namespace removed) by the cleanups the caller runs
 * after the test.
 */
import { join } from 'node:path'
import { Weave, type AnyThreadType } from 'raiment'
import { AmqpLink } from '../../src/amqp/link.js'
import { AMQP_URL, freshNamespace, removeNamespace } from './broker.js'
import { tempDir } from './tmp.js'

export interface Weaves {
  ns: string
  w: Record<string, Weave>
  links: Record<string, AmqpLink>
}

/** Opens and starts weaves `ids` running `threads`; `batch` as for AmqpLink. */
export async function openWeaves(cleanups: Array<() => Promise<void>>, ids: string[], threads: Record<string, AnyThreadType>, batch?: number): Promise<Weaves> {
  const dir = tempDir()
  const ns = freshNamespace()
  cleanups.push(() => removeNamespace(ns, ids))
  const w: Record<string, Weave> = {}
  const links: Record<string, AmqpLink> = {}
  for (const id of ids) {
    const link = await AmqpLink.connect({ url: AMQP_URL, namespace: ns, heartbeatMs: 100, log: () => {}, ...(batch !== undefined ? { batch } : {}) })
    const weave = await Weave.open({ db: join(dir, `${id}.db`), weaveId: id, threads, ioLibs: false, dumps: false, durability: 'memory', remote: link })
    await link.start(weave)
    cleanups.push(async () => {
      await link.close()
      await weave.close()
    })
    w[id] = weave
    links[id] = link
  }
  return { ns, w, links }
}

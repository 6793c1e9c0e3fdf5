/**
 * Weaves joined to the broker in the test's own process: each on its own journal in a temp dir,
 * all on one fresh namespace, closed (and the namespace removed) by the cleanups the caller runs
 * after the test.
 */
import { join } from 'node:path'
import { Weave, type AnyThreadType, type WeaveOptions } from 'raiment'
import { AmqpLink } from '../../src/amqp/link.js'
import { AMQP_URL, freshNamespace, removeNamespace } from './broker.js'
import { tempDir } from './tmp.js'

export interface Weaves {
  ns: string
  w: Record<string, Weave>
  links: Record<string, AmqpLink>
}

/** One weave joined to the broker: closed once, by `close` or by the caller's cleanups. */
export interface OpenWeave {
  weave: Weave
  link: AmqpLink
  close(): Promise<void>
}

/**
 * Opens and starts weave `id` on `dir/<id>.db`, on namespace `ns`; `o` as for Weave.open (durability
 * 'memory' unless given), and the link's `batch` and `heartbeatMs` (100 unless given). Its close is pushed to `cleanups`, and may be called before (it is a
 * no-op after the first): a weave can be stopped and opened again on its journal.
 */
export async function openWeave(cleanups: Array<() => Promise<void>>, dir: string, ns: string, id: string, threads: Record<string, AnyThreadType>, o: { batch?: number; heartbeatMs?: number } & Partial<WeaveOptions> = {}): Promise<OpenWeave> {
  const { batch, heartbeatMs, ...options } = o
  const link = await AmqpLink.connect({ url: AMQP_URL, namespace: ns, heartbeatMs: heartbeatMs ?? 100, log: () => {}, ...(batch !== undefined ? { batch } : {}) })
  const weave = await Weave.open({ db: join(dir, `${id}.db`), weaveId: id, threads, ioLibs: false, dumps: false, durability: 'memory', ...options, remote: link })
  await link.start(weave)
  let open = true
  const close = async (): Promise<void> => {
    if (!open) return
    open = false
    await link.close()
    await weave.close()
  }
  cleanups.push(close)
  return { weave, link, close }
}

/** Opens and starts weaves `ids` running `threads`; `batch` as for AmqpLink. */
export async function openWeaves(cleanups: Array<() => Promise<void>>, ids: string[], threads: Record<string, AnyThreadType>, batch?: number): Promise<Weaves> {
  const dir = tempDir()
  const ns = freshNamespace()
  cleanups.push(() => removeNamespace(ns, ids))
  const w: Record<string, Weave> = {}
  const links: Record<string, AmqpLink> = {}
  for (const id of ids) {
    const { weave, link } = await openWeave(cleanups, dir, ns, id, threads, batch !== undefined ? { batch } : {})
    w[id] = weave
    links[id] = link
  }
  return { ns, w, links }
}

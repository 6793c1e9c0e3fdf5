/**
 * The supervisor thread type: starts children, and restarts them when they end, by strategy,
 * until they restart too often. Every weave knows it as `raiment/supervisor`; a project can also
 * re-export it from `threads/` under a name of its own.
 */
import './builtins.js'
import { registerError } from './encoding.js'
import { LinkedExit, RaimentError } from './errors.js'
import { thread } from './thread.js'

export type Restart = 'permanent' | 'transient' | 'temporary'
export type Strategy = 'one-for-one' | 'one-for-all' | 'rest-for-one'

export interface ChildSpec {
  /** A thread type name. */
  type: string
  params?: unknown
  /** permanent: always restarted (default); transient: restarted unless it ended done; temporary: never. */
  restart?: Restart
}

export interface SupervisorParams {
  children: ChildSpec[]
  /** Which children restart when one ends: it alone, all, or it and those started after it. */
  strategy?: Strategy
  /** At most `restarts` restarts within `withinMs` ms; one more and the supervisor fails. Default 3 in 5,000. */
  intensity?: { restarts: number; withinMs: number }
}

export interface ExitMessage {
  exit: string
  status: 'done' | 'failed' | 'killed'
  result?: unknown
  error?: { name: string; message: string; code?: unknown }
}

export class SupervisorGaveUp extends RaimentError {
  constructor(restarts: number, withinMs: number, last: ExitMessage) {
    super(
      'RAIMENT_SUPERVISOR_GAVE_UP',
      `more than ${restarts} restarts within ${withinMs} ms (last: ${last.exit} ${last.status}${last.error ? `: ${last.error.message}` : ''}); the supervisor gives up and fails`,
    )
  }
}

registerError(SupervisorGaveUp)

const isExit = (m: unknown): m is ExitMessage => typeof m === 'object' && m !== null && typeof (m as ExitMessage).exit === 'string'

/**
 * @example
 * // threads/pool.ts
 * import { supervisor } from 'raiment'
 * export default supervisor
 * // raiment spawn pool '{"strategy":"one-for-one","children":[{"type":"worker","params":{"n":1}}]}'
 */
export const supervisor = thread({
  uses: ['threads', 'mailbox', 'clock'],
  async does(p: SupervisorParams) {
    const specs = p.children
    const strategy = p.strategy ?? 'one-for-one'
    const { restarts: maxRestarts, withinMs } = p.intensity ?? { restarts: 3, withinMs: 5_000 }
    await this.threads.trapExits(true)
    const ids: Array<string | null> = specs.map(() => null)
    /** Children this supervisor stopped itself: their exit messages are expected. */
    const stopped = new Set<string>()
    const stop = async (j: number): Promise<void> => {
      const id = ids[j]
      if (id === null || id === undefined) return
      stopped.add(id)
      ids[j] = null
      await this.threads.kill(id)
    }
    const start = async (i: number): Promise<void> => {
      const id = await this.threads.spawn(specs[i]!.type, specs[i]!.params)
      ids[i] = id
      // Linked: should the supervisor end, its children end with it.
      await this.threads.link(id)
    }
    for (let i = 0; i < specs.length; i++) await start(i)
    const times: number[] = []
    let restarted = 0
    while (ids.some((x) => x !== null)) {
      const m = await this.mailbox.receive<ExitMessage>({ match: isExit })
      if (typeof m === 'symbol') continue
      const i = ids.indexOf(m.exit)
      if (i < 0) {
        if (stopped.delete(m.exit) || m.status === 'done') continue
        // A linked thread that is not a child (the parent supervisor) failed or was killed:
        // the whole subtree goes with it.
        for (let j = ids.length - 1; j >= 0; j--) await stop(j)
        throw new LinkedExit(await this.threads.self(), m.exit, m.status, m)
      }
      ids[i] = null
      const restart = specs[i]!.restart ?? 'permanent'
      if (restart === 'temporary' || (restart === 'transient' && m.status === 'done')) continue
      const now = await this.clock.now()
      times.push(now)
      while (times.length > 0 && times[0]! <= now - withinMs) times.shift()
      if (times.length > maxRestarts) {
        for (let j = ids.length - 1; j >= 0; j--) await stop(j)
        throw new SupervisorGaveUp(maxRestarts, withinMs, m)
      }
      const affected = strategy === 'one-for-one' ? [i] : strategy === 'one-for-all' ? specs.map((_, j) => j) : specs.map((_, j) => j).filter((j) => j >= i)
      for (const j of [...affected].reverse()) if (j !== i) await stop(j)
      for (const j of affected) if (j === i || specs[j]!.restart !== 'temporary') await start(j)
      restarted++
    }
    return { restarted }
  },
})

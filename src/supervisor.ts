/**
 * The supervisor thread type: starts children, and restarts them when they end, by strategy,
 * after a back-off, until they restart too often. Every weave knows it as `raiment/supervisor`; a
 * project can also re-export it from `threads/` under a name of its own.
 *
 * Invariants:
 * - A back-off is a wait through the weft (a receive with a timeout, its deadline recorded), never
 *   a timer of the process: a supervisor resumed after a crash waits only what is left of it, and
 *   a replay does not wait at all. Exit messages are taken during the wait.
 * - Children start in the order of `children`, and a group restart (one-for-all, rest-for-one)
 *   starts its children together, in that order, once the longest back-off among them is over.
 * - A supervisor that never restarts makes the same calls as one without back-off.
 */
import type { SuccessionOptions } from '../io-libs/threads.js'
import './builtins.js'
import { registerError } from './encoding.js'
import { InvalidArgument, LinkedExit, RaimentError } from './errors.js'
import { thread } from './thread.js'
import { valueText } from './value-text.js'
import { TIMED_OUT } from './weave-access.js'

export type Restart = 'permanent' | 'transient' | 'temporary'
export type Strategy = 'one-for-one' | 'one-for-all' | 'rest-for-one'

export interface ChildSpec {
  /** A thread type name. */
  type: string
  params?: unknown
  /** permanent: always restarted (default); transient: restarted unless it ended done; temporary: never. */
  restart?: Restart
}

/**
 * How long a supervisor waits before it restarts a child: `initial` ms before the first restart,
 * times `factor` before each next one, at most `max` ms; a child that ran at least `resetAfter` ms
 * before it ended is restarted after `initial` again. Counted for each child on its own.
 */
export interface Backoff {
  /** Ms before the first restart; 0 restarts at once (no back-off). Default 10. */
  initial?: number
  /** Each next wait is the last one times this (1 and up). Default 2. */
  factor?: number
  /** The longest wait, in ms (`initial` and up). Default 5,000. */
  max?: number
  /** A child that ran this long (ms) before it ended is deemed well: its waits start again from `initial`. Default 2 × `max`. */
  resetAfter?: number
}

export interface SupervisorParams {
  children: ChildSpec[]
  /** Which children restart when one ends: it alone, all, or it and those started after it. */
  strategy?: Strategy
  /** At most `restarts` restarts within `withinMs` ms; one more and the supervisor fails. Default 10 in 60,000. */
  intensity?: { restarts: number; withinMs: number }
  /** The wait before a restart. Default `{ initial: 10, factor: 2, max: 5_000, resetAfter: 10_000 }`. */
  backoff?: Backoff
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
      `more than ${restarts} restart${restarts === 1 ? '' : 's'} within ${withinMs} ms (last: ${last.exit} ${last.status}${last.error ? `: ${last.error.message}` : ''}); ` +
        `the supervisor stopped its children and fails. Find why the child fails (its dump replays it), or allow more with the param intensity`,
    )
  }
}

registerError(SupervisorGaveUp)

const EXIT_STATUSES: ReadonlySet<unknown> = new Set(['done', 'failed', 'killed'])
/** An exit message, as a link or monitor sends it (a message of another shape stays in the mailbox). */
const isExit = (m: unknown): m is ExitMessage => typeof m === 'object' && m !== null && typeof (m as ExitMessage).exit === 'string' && EXIT_STATUSES.has((m as ExitMessage).status)

const STRATEGIES: readonly Strategy[] = ['one-for-one', 'one-for-all', 'rest-for-one']
const RESTARTS: readonly Restart[] = ['permanent', 'transient', 'temporary']
const DEFAULT_BACKOFF = { initial: 10, factor: 2, max: 5_000 }
const DEFAULT_INTENSITY = { restarts: 10, withinMs: 60_000 }
/** The ends after which a child restarts, by its restart type: its messages and names are held for its successor then. */
const HOLD_PERMANENT: Array<'done' | 'failed' | 'killed'> = ['done', 'failed', 'killed']
const HOLD_TRANSIENT: Array<'done' | 'failed' | 'killed'> = ['failed', 'killed']

/** The options of a linked spawn that holds the child's messages for its successor, and succeeds `prev` if there was one (not on the public SpawnOptions). */
function succession(hold: Array<'done' | 'failed' | 'killed'>, prev: string | null | undefined): SuccessionOptions {
  return prev === null || prev === undefined ? { link: true, hold } : { link: true, hold, succeeds: prev }
}
const EXAMPLE = `{"children":[{"type":"counter","restart":"transient"}],"strategy":"one-for-one","intensity":{"restarts":10,"withinMs":60000},"backoff":{"initial":10,"factor":2,"max":5000}}`

/** The params of a supervisor, checked, with every default filled in. */
interface Settings {
  children: Array<Required<Pick<ChildSpec, 'type' | 'restart'>> & { params: unknown }>
  strategy: Strategy
  intensity: { restarts: number; withinMs: number }
  backoff: Required<Backoff>
}

/** Throws InvalidArgument saying what was wrong, with the value got and an example. */
function bad(what: string, got: unknown): never {
  throw new InvalidArgument(`raiment/supervisor: ${what}, got ${valueText(got)}. Example params: ${EXAMPLE}`)
}

function onlyKeys(where: string, o: object, known: readonly string[]): void {
  for (const k of Object.keys(o)) if (!known.includes(k)) bad(`unknown option '${k}' in ${where} (the options are ${known.join(', ')})`, o)
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/** A number from `min` up (`whole`: an integer), or `undefined` when absent and `dflt` is given. */
function num(where: string, v: unknown, min: number, whole: boolean, dflt?: number): number {
  if (v === undefined && dflt !== undefined) return dflt
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || (whole && !Number.isInteger(v))) {
    bad(`${where} must be ${whole ? 'a whole number' : 'a number'} from ${min} up`, v)
  }
  return v
}

/**
 * Checks a supervisor's params before it starts any child, and fills in the defaults.
 * @throws InvalidArgument naming the option, the value got, and an example
 */
export function supervisorSettings(p: unknown): Settings {
  if (!isObject(p)) bad('params must be an object with children', p)
  onlyKeys('the params', p, ['children', 'strategy', 'intensity', 'backoff'])
  if (!Array.isArray(p.children) || p.children.length === 0) bad('children must be a non-empty array of { type, params?, restart? }', p.children)
  const children = p.children.map((c: unknown, i) => {
    const where = `children[${i}]`
    if (!isObject(c)) bad(`${where} must be an object { type, params?, restart? }`, c)
    onlyKeys(where, c, ['type', 'params', 'restart'])
    if (typeof c.type !== 'string' || c.type === '') bad(`${where}.type must be the name of a thread type`, c.type)
    if (c.restart !== undefined && !RESTARTS.includes(c.restart as Restart)) bad(`${where}.restart must be one of ${RESTARTS.join(', ')}`, c.restart)
    return { type: c.type, params: c.params, restart: (c.restart as Restart | undefined) ?? 'permanent' }
  })
  if (p.strategy !== undefined && !STRATEGIES.includes(p.strategy as Strategy)) bad(`strategy must be one of ${STRATEGIES.join(', ')}`, p.strategy)
  let intensity = DEFAULT_INTENSITY
  if (p.intensity !== undefined) {
    if (!isObject(p.intensity)) bad('intensity must be { restarts, withinMs }', p.intensity)
    onlyKeys('intensity', p.intensity, ['restarts', 'withinMs'])
    intensity = { restarts: num('intensity.restarts', p.intensity.restarts, 0, true), withinMs: num('intensity.withinMs', p.intensity.withinMs, 1, false) }
  }
  const b = p.backoff ?? {}
  if (!isObject(b)) bad('backoff must be { initial?, factor?, max?, resetAfter? }', b)
  onlyKeys('backoff', b, ['initial', 'factor', 'max', 'resetAfter'])
  const initial = num('backoff.initial', b.initial, 0, false, DEFAULT_BACKOFF.initial)
  const factor = num('backoff.factor', b.factor, 1, false, DEFAULT_BACKOFF.factor)
  const max = num('backoff.max', b.max, initial, false, Math.max(DEFAULT_BACKOFF.max, initial))
  const resetAfter = num('backoff.resetAfter', b.resetAfter, 0, false, 2 * max)
  return { children, strategy: (p.strategy as Strategy | undefined) ?? 'one-for-one', intensity, backoff: { initial, factor, max, resetAfter } }
}

/**
 * The supervisor. Validates its params first (it fails with InvalidArgument, starting nothing,
 * when they are wrong), starts its children in order, and restarts one that ends as its `restart`
 * says, after its back-off, with the others its strategy names. More than `intensity.restarts`
 * restarts within `intensity.withinMs` ms and it stops its children and fails (SupervisorGaveUp).
 * It ends `done` with `{ restarted }` once no child runs and none is due to restart.
 * @example
 * // threads/pool.ts
 * import { supervisor } from 'raiment'
 * export default supervisor
 * // raiment spawn pool '{"children":[{"type":"counter","restart":"transient"}],"backoff":{"initial":100,"max":10000}}'
 */
export const supervisor = thread({
  uses: ['threads', 'mailbox', 'clock', 'patch'],
  async does(p: SupervisorParams) {
    const { children: specs, strategy, intensity, backoff } = supervisorSettings(p)
    // A child is linked in its spawn (before: spawned, then linked, a commit apart; a supervisor
    // killed between left its child running unsupervised). Records made before replay the old way.
    const spawnLinked = await this.patch.patched('raiment/supervisor: spawn linked')
    // A child that is to restart has its undelivered messages and names held for its successor,
    // which gets them in its spawn (before: they went to the dead letters at its end). Records made
    // before replay the old way.
    const holding = spawnLinked && (await this.patch.patched('raiment/supervisor: hold for the successor'))
    await this.threads.trapExits(true)
    const ids: Array<string | null> = specs.map(() => null)
    /** When each child not running is due to start again (ms since the epoch), or null. */
    const due: Array<number | null> = specs.map(() => null)
    /** Each child's restarts since it last ran well, and when it was last restarted. */
    const attempts = specs.map(() => 0)
    const restartedAt: Array<number | null> = specs.map(() => null)
    /** The last child of each slot, ended, whose held messages and names its next one takes. */
    const before: Array<string | null> = specs.map(() => null)
    /** Children this supervisor stopped itself: their exit messages are expected. */
    const stopped = new Set<string>()
    const stop = async (j: number): Promise<void> => {
      due[j] = null
      const id = ids[j]
      if (id === null || id === undefined) return
      stopped.add(id)
      ids[j] = null
      before[j] = id
      await this.threads.kill(id)
    }
    const start = async (i: number): Promise<void> => {
      due[i] = null
      // Linked: should the supervisor end, its children end with it.
      const { type, params, restart } = specs[i]!
      const hold = restart === 'permanent' ? HOLD_PERMANENT : restart === 'transient' ? HOLD_TRANSIENT : null
      const prev = before[i]
      before[i] = null
      const id = !spawnLinked
        ? await this.threads.spawn(type, params)
        : !holding || hold === null
          ? await this.threads.spawn(type, params, { link: true })
          : await this.threads.spawn(type, params, succession(hold, prev))
      ids[i] = id
      if (!spawnLinked) await this.threads.link(id)
    }
    /** Starts, in order, every child due at `at` or before; each was restarted at `at`. */
    const startDue = async (at: number): Promise<void> => {
      for (let j = 0; j < specs.length; j++) {
        if (due[j] !== null && due[j]! <= at) {
          restartedAt[j] = at
          await start(j)
        }
      }
    }
    for (let i = 0; i < specs.length; i++) await start(i)
    const times: number[] = []
    let restarted = 0
    while (ids.some((x) => x !== null) || due.some((x) => x !== null)) {
      const next = due.reduce<number | null>((a, d) => (d !== null && (a === null || d < a) ? d : a), null)
      let m: ExitMessage | typeof TIMED_OUT
      if (next === null) m = await this.mailbox.receive<ExitMessage>({ match: isExit })
      else {
        // A back-off: exit messages are still taken while it lasts.
        const wait = next - (await this.clock.now())
        m = wait > 0 ? await this.mailbox.receive<ExitMessage>({ match: isExit, timeout: wait }) : TIMED_OUT
      }
      if (m === TIMED_OUT) {
        // The restart's own time: later than due when the weave was down meanwhile, which is no
        // time the child ran (its back-off would start again from `initial`). Records made before
        // this change restart at the due time, as they did.
        await startDue((await this.patch.patched('supervisor-restart-time')) ? Math.max(next!, await this.clock.now()) : next!)
        continue
      }
      const i = ids.indexOf(m.exit)
      if (i < 0) {
        if (stopped.delete(m.exit) || m.status === 'done') continue
        // A linked thread that is not a child (the parent supervisor) failed or was killed:
        // the whole subtree goes with it.
        for (let j = ids.length - 1; j >= 0; j--) await stop(j)
        throw new LinkedExit(await this.threads.self(), m.exit, m.status, m)
      }
      ids[i] = null
      before[i] = m.exit
      const restart = specs[i]!.restart
      if (restart === 'temporary' || (restart === 'transient' && m.status === 'done')) continue
      const now = await this.clock.now()
      times.push(now)
      while (times.length > 0 && times[0]! <= now - intensity.withinMs) times.shift()
      if (times.length > intensity.restarts) {
        for (let j = ids.length - 1; j >= 0; j--) await stop(j)
        throw new SupervisorGaveUp(intensity.restarts, intensity.withinMs, m)
      }
      const since = restartedAt[i]
      if (since !== null && since !== undefined && now - since >= backoff.resetAfter) attempts[i] = 0
      const wait = backoff.initial === 0 ? 0 : Math.min(backoff.max, backoff.initial * backoff.factor ** attempts[i]!)
      attempts[i]!++
      const affected = strategy === 'one-for-one' ? [i] : specs.map((_, j) => j).filter((j) => strategy === 'one-for-all' || j >= i)
      // The group starts together, when the longest wait among its children is over.
      let at = now + wait
      for (const j of affected) if (due[j] !== null) at = Math.max(at, due[j]!)
      for (const j of [...affected].reverse()) if (j !== i) await stop(j)
      for (const j of affected) if (j === i || specs[j]!.restart !== 'temporary') due[j] = at
      restarted++
      if (wait === 0 && at <= now) await startDue(now)
    }
    return { restarted }
  },
})

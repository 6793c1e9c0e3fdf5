/**
 * ping-pong: plays `rounds` rounds with a partner it reaches by name. It spawns a
 * `ping-pong/pong` thread, which registers itself as `name` (default 'pong') and says when it is
 * ready; each round sends `{ ping: i, from }` to that name and waits for `{ pong: i }`. Then it
 * tells the partner to stop and returns what both counted.
 *
 * Every wait also watches for the partner's exit message (this thread is its parent), so a
 * partner that fails, or cannot take the name, ends the game with a clear error instead of a
 * thread waiting for ever.
 */
import { thread, TIMED_OUT, type ExitMessage } from 'raiment'

const exitOf = (id: string) => (m: unknown): m is ExitMessage => typeof m === 'object' && m !== null && (m as ExitMessage).exit === id

export default thread({
  uses: ['clock', 'log', 'mailbox', 'threads'],
  async does(params: { rounds: number; name?: string }) {
    const rounds = params?.rounds
    const name = params?.name ?? 'pong'
    if (!Number.isInteger(rounds) || rounds < 1 || typeof name !== 'string' || name === '') {
      throw new TypeError(`ping-pong expects params { rounds: whole number >= 1, name?: string }, got ${JSON.stringify(params)}`)
    }
    const self = await this.threads.self()
    const partner = await this.threads.spawn('ping-pong/pong', { name, ready: self })
    const ended = exitOf(partner)
    /** The next message that `wanted` accepts; throws if the partner ends first. */
    const next = async <T>(wanted: (m: unknown) => m is T, what: string): Promise<T> => {
      const m = await this.mailbox.receive({ match: (x: unknown) => wanted(x) || ended(x) })
      if (m === TIMED_OUT || ended(m)) {
        const why = m === TIMED_OUT ? 'timed out' : m.status === 'failed' ? `failed: ${m.error?.message}` : m.status
        throw new Error(`ping-pong: the partner '${name}' (${partner}) ended while this thread waited for ${what}: ${why}`)
      }
      return m as T
    }

    await next((m): m is { ready: string } => (m as { ready?: unknown })?.ready === name, 'it to be ready')
    const started = await this.clock.now()
    let pongs = 0
    for (let i = 1; i <= rounds; i++) {
      await this.mailbox.send(name, { ping: i, from: self })
      await next((m): m is { pong: number } => (m as { pong?: unknown })?.pong === i, `pong ${i}`)
      pongs++
    }
    const ms = (await this.clock.now()) - started
    await this.log.info(`${rounds} rounds with '${name}' in ${ms} ms`, { msPerRound: Math.round((ms / rounds) * 10) / 10 })
    await this.mailbox.send(name, { stop: true })
    const end = await this.mailbox.receive({ match: ended })
    return { rounds, pongs, partner: end !== TIMED_OUT && ended(end) && end.status === 'done' ? end.result : 'lost' }
  },
})

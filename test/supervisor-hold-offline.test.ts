/**
 * A supervised child killed by `raiment kill` while no weave runs (the weave SIGKILLed) is held
 * for its successor as a kill by a running weave holds it: a message sent to its name after the
 * kill, with no weave running, waits (before, a user trial saw it dead-lettered, `thread … has
 * ended`), and the child the supervisor restarts when a weave starts again gets the messages sent
 * before the kill and after it, in order, none a dead letter. When the supervisor will not restart
 * it after all (it gives up, or is killed too), what was held goes to the dead letters then,
 * saying why, as online.
 * Real processes: `raiment start`, `spawn`, `send`, `kill`, `dead-letters`; real SQLite files.
 */
import { join } from 'node:path'
import { afterEach, expect, it } from 'vitest'
import { raiment, raimentProcess, type Ended, type Running } from './support/raiment-process.js'
import { projectWith } from './support/threads-dir.js'

const RAIMENT = new URL('../src/index.ts', import.meta.url).href

const THREADS: Record<string, string> = {
  // Registers its name, keeps the numbers it is sent, and tells them to whoever asks.
  'keeper.ts': `import { thread } from '${RAIMENT}'
export default thread({
  uses: ['mailbox', 'registry', 'threads'],
  async does(p: { name: string }) {
    await this.registry.register(p.name)
    const got: number[] = []
    for (;;) {
      const m = await this.mailbox.receive<{ n: number } | { report: string }>()
      if ('report' in m) await this.mailbox.send(m.report, { got, self: await this.threads.self() })
      else got.push(m.n)
    }
  },
})
`,
  // Asks a keeper what it got, and returns its answer.
  'ask.ts': `import { thread } from '${RAIMENT}'
export default thread({
  uses: ['mailbox', 'threads'],
  async does(p: { to: string }) {
    const r = await this.mailbox.send(p.to, { report: await this.threads.self() })
    if (!r.delivered) return { notDelivered: r.reason }
    return await this.mailbox.receive()
  },
})
`,
}

const weaves: Running[] = []
afterEach(async () => {
  for (const w of weaves.splice(0)) {
    if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL')
    await w.ended
  }
})

const ok = (r: Ended): string => {
  expect(r.code, `stdout:\n${r.stdout}\nstderr:\n${r.stderr}`).toBe(0)
  return r.stdout.trim()
}

/** A weave on `db` in project `dir`, started (its first line out). */
async function start(dir: string, db: string): Promise<Running> {
  const w = raimentProcess(dir, ['start', '--db', db])
  weaves.push(w)
  await w.until((out) => /^weave \S+ on /m.test(out))
  return w
}

/**
 * A weave running a supervisor (params `sup`) over a keeper registered as `name`, SIGKILLed once
 * the keeper's name is recorded; returns the supervisor's and the keeper's ids.
 */
async function supervisedThenKilled(dir: string, db: string, name: string, sup: Record<string, unknown>): Promise<{ s: string; child: string }> {
  const w = await start(dir, db)
  const s = ok(await raiment(dir, 'spawn', 'raiment/supervisor', JSON.stringify({ ...sup, children: [{ type: 'keeper', params: { name } }] }), '--db', db))
  await w.until((out) => /^started \S+ keeper$/m.test(out))
  const child = /^started (\S+) keeper$/m.exec(w.stdout)![1]!
  // Its answer, committed after its registration, says the name is recorded.
  expect(JSON.parse(ok(await raiment(dir, 'spawn', 'ask', JSON.stringify({ to: child }), '--wait', '--db', db))) as unknown).toEqual({ got: [], self: child })
  w.child.kill('SIGKILL')
  expect((await w.ended).signal).toBe('SIGKILL')
  return { s, child }
}

/** Offline: a message to `name`, the kill of `child`, another message to `name`; all accepted. */
async function sendKillSend(dir: string, db: string, name: string, child: string): Promise<void> {
  expect(JSON.parse(ok(await raiment(dir, 'send', name, '{"n":1}', '--db', db))) as unknown).toEqual({ delivered: true, to: child })
  expect(ok(await raiment(dir, 'kill', child, '--db', db))).toBe(`killed ${child}`)
  const after = await raiment(dir, 'send', name, '{"n":2}', '--db', db)
  expect(JSON.parse(ok(after)) as unknown).toEqual({ delivered: true, to: child })
  expect(after.stderr).toContain(`${child} has ended and its supervisor`)
}

it('a supervised child killed with no weave running is held: its restarted successor gets what was sent before and after the kill, in order', async () => {
  const dir = projectWith(THREADS)
  const db = join(dir, 'w.db')
  const { s, child } = await supervisedThenKilled(dir, db, 'held-z', { backoff: { initial: 100 } })
  await sendKillSend(dir, db, 'held-z', child)
  // What a running weave says during the back-off: held for the successor.
  expect(ok(await raiment(dir, 'show', child, '--db', db))).toContain(`held for`)

  const w = await start(dir, db)
  const answer = JSON.parse(ok(await raiment(dir, 'spawn', 'ask', '{"to":"held-z"}', '--wait', '--db', db))) as { got: number[]; self: string }
  expect(answer.got).toEqual([1, 2])
  expect(answer.self).not.toBe(child)
  expect(ok(await raiment(dir, 'dead-letters', '--json', '--db', db))).toBe('[]')
  expect(ok(await raiment(dir, 'show', child, '--db', db))).toContain(`its messages and names went to its successor ${answer.self} (restarted by ${s})`)
  expect(w.stdout).not.toMatch(/^failed /m)
}, 60_000)

it('held by a kill with no weave running, and the supervisor gives up instead of restarting: the messages go to the dead letters, saying why', async () => {
  const dir = projectWith(THREADS)
  const db = join(dir, 'w.db')
  const { s, child } = await supervisedThenKilled(dir, db, 'held-y', { intensity: { restarts: 0, withinMs: 60_000 } })
  await sendKillSend(dir, db, 'held-y', child)

  const w = await start(dir, db)
  await w.until((out) => new RegExp(`^failed ${s} raiment/supervisor`, 'm').test(out))
  const dead = JSON.parse(ok(await raiment(dir, 'dead-letters', '--json', '--db', db))) as Array<{ recipient: string; reason: string; message: unknown }>
  expect(dead.map((d) => [d.recipient, d.message, d.reason])).toEqual([
    [child, { n: 1 }, `the recipient ended and its supervisor ${s} did not restart it`],
    [child, { n: 2 }, `the recipient ended and its supervisor ${s} did not restart it`],
  ])
  // The name is free again.
  expect(JSON.parse(ok(await raiment(dir, 'spawn', 'ask', '{"to":"held-y"}', '--wait', '--db', db))) as unknown).toEqual({ notDelivered: `no thread is registered as 'held-y'` })
}, 60_000)

it('held by a kill with no weave running, then its supervisor killed too: what is sent after is a dead letter, and what was held goes to the dead letters when a weave starts', async () => {
  const dir = projectWith(THREADS)
  const db = join(dir, 'w.db')
  const { s, child } = await supervisedThenKilled(dir, db, 'held-x', { backoff: { initial: 100 } })
  expect(JSON.parse(ok(await raiment(dir, 'send', 'held-x', '{"n":1}', '--db', db))) as unknown).toEqual({ delivered: true, to: child })
  const k = await raiment(dir, 'kill', child, '--db', db)
  expect(ok(k)).toBe(`killed ${child}`)
  expect(k.stderr).toContain(`its supervisor ${s} is to restart it: its messages and names are held for its successor`)
  expect(ok(await raiment(dir, 'kill', s, '--db', db))).toBe(`killed ${s}`)
  const late = await raiment(dir, 'send', 'held-x', '{"n":2}', '--db', db)
  expect(late.code).toBe(1)
  expect(JSON.parse(late.stdout) as unknown).toEqual({ delivered: false, to: 'held-x', reason: `thread ${child} has ended` })

  await start(dir, db)
  // Asked after the weave took both kills: the name is free.
  expect(JSON.parse(ok(await raiment(dir, 'spawn', 'ask', '{"to":"held-x"}', '--wait', '--db', db))) as unknown).toEqual({ notDelivered: `no thread is registered as 'held-x'` })
  const dead = JSON.parse(ok(await raiment(dir, 'dead-letters', '--json', '--db', db))) as Array<{ recipient: string; reason: string; message: unknown }>
  expect(dead.map((d) => [d.recipient, d.message, d.reason])).toEqual([
    ['held-x', { n: 2 }, `thread ${child} has ended`],
    [child, { n: 1 }, `the recipient ended and its supervisor ${s} did not restart it`],
    ['held-x', { report: expect.any(String) as unknown }, `no thread is registered as 'held-x'`],
  ])
}, 60_000)

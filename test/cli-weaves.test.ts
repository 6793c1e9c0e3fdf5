/**
 * `raiment start --weaves 2` as a real process in its own process group, on the broker: a
 * SIGTERM or SIGINT to the whole group (as Ctrl-C sends one), or a SIGTERM to its pid alone, or
 * its death stops every weave (not as retired, after its death: listed silent; else cleanly, each closing once, status 0); and the broker password is
 * on no weave's command line. With `--replicate`: a weave frozen (SIGSTOP) until the other took
 * it over exits 3 when let run, and its slot starts it again, under its own id: the other hands
 * it back.
 */
import { existsSync, readFileSync } from 'node:fs'
import { describe, expect, test } from 'vitest'
import { AMQP_URL, brokerUp, CI, freshNamespace, removeNamespace, brokerTests } from './support/broker.js'
import { raiment, raimentProcess, THREADS, type Running } from './support/raiment-process.js'
import { removeReplNamespace } from './support/repl-cluster.js'
import { tempDir } from './support/tmp.js'

/** Each weave is a Node process loading TypeScript through tsx. */
const SLOW = 120_000

/** The command line of a process as /proc shows it to every user. */
function cmdline(pid: number): string {
  return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ')
}

/** Resolves once process `pid` (not a child of this one: no exit event reaches us) is gone. */
async function gone(pid: number): Promise<void> {
  const deadline = Date.now() + 30_000
  while (existsSync(`/proc/${pid}`) && !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z ')) {
    if (Date.now() > deadline) throw new Error(`process ${pid} is still running`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

describe.skipIf(!brokerUp && !CI)('raiment start --weaves N and signals', () => {
  const cleanups = brokerTests()

  /** `start --weaves 2` in its own process group, once both weaves have joined; their pids. */
  async function twoWeaves(): Promise<{ run: Running; pids: number[]; ns: string; dir: string }> {
    const dir = tempDir()
    const ns = freshNamespace()
    cleanups.push(() => removeNamespace(ns, ['w-1', 'w-2']))
    const args = ['start', '--weaves', '2', '--amqp', AMQP_URL, '--namespace', ns, '--id', 'w', '--heartbeat', '100', '--durability', 'memory', '--threads', THREADS]
    const run = raimentProcess(dir, args, { group: true })
    cleanups.push(async () => {
      if (run.child.exitCode === null && run.child.signalCode === null) process.kill(-run.child.pid!, 'SIGKILL')
    })
    await run.until((out) => out.includes(`[1] joined namespace '${ns}'`) && out.includes(`[2] joined namespace '${ns}'`))
    const pids = [1, 2].map((i) => Number(new RegExp(`\\[${i}\\] weave w-${i} on \\S+ \\(pid (\\d+)\\)`).exec(run.stdout)![1]))
    return { run, pids, ns, dir }
  }

  async function expectCleanStop(run: Running, pids: number[], sig: string): Promise<void> {
    const end = await run.ended
    const output = end.stdout + end.stderr
    expect(end.code, output).toBe(0)
    expect(output).not.toMatch(/again/)
    expect(end.stderr).toMatch(new RegExp(`^${sig}: stopping 2 weaves$`, 'm'))
    for (const i of [1, 2]) {
      // Each weave was told once, and ended with status 0.
      expect(end.stderr.split('\n').filter((l) => l.startsWith(`[${i}] ${sig}: closing the weave`)), output).toHaveLength(1)
      expect(end.stderr, output).toMatch(new RegExp(`^\\[${i}\\] weave stopped$`, 'm'))
    }
    for (const pid of pids) await gone(pid)
  }

  test('SIGTERM to the process group stops every weave once, cleanly; the password is on no command line', async () => {
    const { run, pids } = await twoWeaves()
    const password = new URL(AMQP_URL).password
    expect(password).not.toBe('')
    for (const pid of [...pids, run.child.pid!]) expect(cmdline(pid)).not.toContain(`:${password}@`)
    expect(cmdline(pids[0]!)).not.toContain('--amqp')
    expect(run.stdout + run.stderr).not.toContain(`:${password}@`)
    process.kill(-run.child.pid!, 'SIGTERM')
    await expectCleanStop(run, pids, 'SIGTERM')
  }, SLOW)

  test('SIGINT to the process group (Ctrl-C) stops every weave once, cleanly', async () => {
    const { run, pids } = await twoWeaves()
    process.kill(-run.child.pid!, 'SIGINT')
    await expectCleanStop(run, pids, 'SIGINT')
  }, SLOW)

  test('SIGTERM to the parent alone stops every weave', async () => {
    const { run, pids } = await twoWeaves()
    run.child.kill('SIGTERM')
    await expectCleanStop(run, pids, 'SIGTERM')
  }, SLOW)

  test('the weaves stop by themselves when the parent dies by SIGKILL, not as retired: listed silent', async () => {
    const { run, pids, ns, dir } = await twoWeaves()
    run.child.kill('SIGKILL')
    expect((await run.ended).signal).toBe('SIGKILL')
    for (const pid of pids) await gone(pid)
    const look = await raiment(dir, 'weaves', '--amqp', AMQP_URL, '--namespace', ns)
    for (const i of [1, 2]) expect(look.stderr).toMatch(new RegExp(`^weave w-${i} is silent since `, 'm'))
    expect(look.stderr).not.toContain('stopped cleanly')
  }, SLOW)

  test('--replicate: a weave taken over while frozen exits 3, and its slot starts it again: the other weave hands it back', async () => {
    const dir = tempDir()
    const ns = freshNamespace()
    cleanups.push(() => removeReplNamespace(AMQP_URL, ns, ['w-1', 'w-2']))
    const args = ['start', '--weaves', '2', '--amqp', AMQP_URL, '--namespace', ns, '--id', 'w', '--heartbeat', '100', '--replicate', '--takeover-after', '1000', '--threads', THREADS]
    const run = raimentProcess(dir, args, { group: true })
    cleanups.push(async () => {
      if (run.child.exitCode === null && run.child.signalCode === null) process.kill(-run.child.pid!, 'SIGKILL')
    })
    await run.until((out) => out.includes(`[1] joined namespace '${ns}'`) && out.includes(`[2] joined namespace '${ns}'`))
    const frozen = Number(/\[1\] weave w-1 on \S+ \(pid (\d+)\)/.exec(run.stdout)![1])
    process.kill(frozen, 'SIGSTOP')
    await run.until((out) => out.includes('[2] raiment: took over weave w-1'))
    process.kill(frozen, 'SIGCONT')
    await run.until((out) => out.includes('[2] raiment: weave w-1 is starting again in another process; handing it back') && /^\[1\] raiment: rebuilt \S+ from the stream of weave w-1/m.test(out))
    await run.until((out) => out.split(`[1] joined namespace '${ns}'`).length === 3)
    const output = run.stdout + run.stderr
    expect(output).toMatch(/^\[1\] raiment: RAIMENT_FENCED: /m)
    expect(output).toMatch(/^\[1\] weave w-1 was taken over by another \(exit 3\); starting it again/m)
    expect(output).not.toContain('starting a fresh weave')
    process.kill(-run.child.pid!, 'SIGTERM')
    expect((await run.ended).code, run.stdout + run.stderr).toBe(0)
  }, SLOW)
})

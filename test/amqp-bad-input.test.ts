/**
 * The broker transport's edges: a broker that cannot be reached and a wrong password are clear
 * one-line errors at `raiment start` (real CLI processes); a spawn on a weave that never joined
 * is a clear error in the spawning thread; a message for such a weave is a dead letter on the
 * sending weave; names registered on one weave resolve from another; a remote spawn's parent
 * hears of its end; `raiment weaves` lists the live weaves; `--weaves N` runs and restarts N.
 */
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it, vi } from 'vitest'
import { thread, Weave, type AnyThreadType, type ThreadEnd } from 'raiment'
import { AmqpLink } from '../src/amqp/link.js'
import { main } from '../src/cli/main.js'
import { AMQP_URL, brokerUp, CI, freshNamespace, removeNamespace, brokerTests } from './support/broker.js'
import { tempDir } from './support/tmp.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const BIN = join(ROOT, 'bin', 'raiment.js')

interface Out {
  code: number | null
  stdout: string
  stderr: string
}

/** Runs `raiment ARGS` as a child process; `until` (on stdout+stderr) lets a test act mid-run. */
function raiment(args: string[], cwd: string, until?: (text: string, child: ReturnType<typeof spawn>) => void): Promise<Out> {
  const child = spawn(process.execPath, ['--conditions=raiment-source', BIN, ...args], { cwd, env: { ...process.env, RAIMENT_AMQP_URL: '' } })
  const out: Out = { code: null, stdout: '', stderr: '' }
  const seen = (): void => until?.(out.stdout + out.stderr, child)
  child.stdout.setEncoding('utf8').on('data', (s: string) => ((out.stdout += s), seen()))
  child.stderr.setEncoding('utf8').on('data', (s: string) => ((out.stderr += s), seen()))
  return new Promise((resolve) => child.on('close', (code) => resolve({ ...out, code })))
}

function oneLineError(o: Out, re: RegExp): void {
  expect(o.code, o.stderr).toBe(1)
  const lines = o.stderr.trim().split('\n')
  expect(lines, o.stderr).toHaveLength(1)
  expect(lines[0]).toMatch(/^raiment: /)
  expect(lines[0]).toMatch(re)
}

describe('without a broker URL', () => {
  it('--weaves N is a clear error that says to pass --amqp', async () => {
    const dir = tempDir()
    oneLineError(await raiment(['start', '--weaves', '2'], dir), /--weaves .*pass --amqp URL/)
  })
})

describe.skipIf(!brokerUp && !CI)('with a broker', () => {
  const cleanups = brokerTests()

  it('an unreachable broker and a wrong password are one-line errors at start, and nothing is left running', async () => {
    const dir = tempDir()
    const wrong = AMQP_URL.replace(/\/\/([^:@]+):[^@]*@/, '//$1:not-the-password@')
    const [unreachable, refused] = await Promise.all([
      raiment(['start', '--amqp', 'amqp://guest:guest@127.0.0.1:1', '--db', 'a.db'], dir),
      raiment(['start', '--amqp', wrong, '--db', 'b.db'], dir),
    ])
    oneLineError(unreachable, /cannot reach the broker at amqp:\/\/guest:\*\*\*@127\.0\.0\.1:1.*rabbitmq-server -detached/)
    oneLineError(refused, /refused the login.*check the user name and password/)
    expect(refused.stderr).not.toContain('not-the-password')
  })

  /** Two weaves joined to a fresh namespace, in this process. */
  async function pair(types: Record<string, unknown>) {
    const threads = types as Record<string, AnyThreadType>
    const dir = tempDir()
    const ns = freshNamespace()
    const open = async (id: string) => {
      const link = await AmqpLink.connect({ url: AMQP_URL, namespace: ns, heartbeatMs: 100, log: () => {} })
      const weave = await Weave.open({ db: join(dir, `${id}.db`), weaveId: id, threads, ioLibs: false, dumps: false, durability: 'memory', remote: link })
      await link.start(weave)
      cleanups.push(async () => {
        await link.close()
        await weave.close()
      })
      return { link, weave }
    }
    const a = await open('a')
    const b = await open('b')
    cleanups.unshift(() => removeNamespace(ns, ['a', 'b']))
    return { a, b, ns }
  }

  it('a spawn on an unknown weave id fails the thread clearly; a message for one is a dead letter', async () => {
    const toNowhere = thread({
      uses: ['threads', 'mailbox'],
      async does() {
        const sent = await this.mailbox.send('nowhere/1', { hello: 1 })
        await this.threads.spawn('toNowhere', {}, { on: 'nowhere' })
        return sent
      },
    })
    const { a } = await pair({ toNowhere })
    const end = await a.weave.join(a.weave.spawn('toNowhere'))
    expect(end.status).toBe('failed')
    const err = (end as Extract<ThreadEnd, { status: 'failed' }>).error as Error & { code?: string }
    expect(err.code).toBe('RAIMENT_UNKNOWN_WEAVE')
    expect(err.message).toMatch(/no weave 'nowhere' has joined .*live weaves: a(, b)?\. .*spawn with on: 'any'/)
    await a.link.outboxEmpty()
    await a.weave.committed()
    const dead = a.weave.journal.db.prepare('SELECT sender, recipient, body, reason FROM dead_letters').all()
    expect(dead).toEqual([{ sender: end.id, recipient: 'nowhere/1', body: 'J{"hello":1}', reason: expect.stringMatching(/no weave 'nowhere' has joined namespace/) }])
  })

  it('names resolve across weaves; a remote spawn runs there and its parent gets the exit message', async () => {
    const server = thread({
      uses: ['registry', 'mailbox'],
      async does() {
        await this.registry.register('echo')
        const m = await this.mailbox.receive<{ reply: string; text: string }>()
        await this.mailbox.send(m.reply, { echoed: m.text })
        return 'served'
      },
    })
    const client = thread({
      uses: ['threads', 'mailbox', 'registry'],
      async does() {
        const child = await this.threads.spawn('child', { n: 2 }, { on: 'b' })
        const exit = await this.mailbox.receive({ match: { exit: child } })
        const self = await this.threads.self()
        await this.mailbox.send('echo', { reply: self, text: 'hi' })
        return { child, exit, echo: await this.mailbox.receive({ match: { echoed: 'hi' } }) }
      },
    })
    const child = thread({
      uses: ['threads'],
      async does(p: { n: number }) {
        return { doubled: p.n * 2, on: await this.threads.self() }
      },
    })
    const { a, b } = await pair({ server, client, child })
    const s = b.weave.spawn('server')
    // The name is known on a once b has announced it (at once on registering).
    await vi.waitFor(() => expect(a.link.resolveName('echo')).toEqual({ thread: s }), { timeout: 5_000, interval: 20 })
    const end = await a.weave.join(a.weave.spawn('client'))
    expect(end.status, JSON.stringify(end)).toBe('done')
    const r = (end as Extract<ThreadEnd, { status: 'done' }>).result as { child: string; exit: unknown; echo: unknown }
    expect(r.child).toMatch(/^b\//)
    expect(r.exit).toEqual({ exit: r.child, status: 'done', result: { doubled: 4, on: r.child } })
    expect(r.echo).toEqual({ echoed: 'hi' })
    expect((await b.weave.join(s)).status).toBe('done')
  })

  it('raiment weaves lists the live weaves of a namespace', async () => {
    const { ns } = await pair({})
    const printed: string[] = []
    const write = vi.spyOn(process.stdout, 'write').mockImplementation((s) => (printed.push(String(s)), true))
    const warn = vi.spyOn(process.stderr, 'write').mockImplementation((s) => (printed.push(String(s)), true))
    let code: number
    try {
      code = await main(['weaves', '--amqp', AMQP_URL, '--namespace', ns, '--json'])
    } finally {
      write.mockRestore()
      warn.mockRestore()
    }
    expect(code, printed.join('')).toBe(0)
    const listed = JSON.parse(printed.at(-1)!) as Array<{ id: string; pid: number; threads: number; host: string; lastHeartbeat: string }>
    expect(listed.map((w) => w.id)).toEqual(['a', 'b'])
    expect(listed[0]!.pid).toBe(process.pid)
    expect(listed[0]!.lastHeartbeat).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
  })

  it('start --weaves 2 runs two weaves, restarts one that dies, and stops both on SIGTERM', async () => {
    const dir = tempDir()
    const ns = freshNamespace()
    cleanups.push(() => removeNamespace(ns, ['w-1', 'w-2']))
    let killed = 0
    const out = await raiment(['start', '--weaves', '2', '--amqp', AMQP_URL, '--namespace', ns, '--id', 'w', '--heartbeat', '100', '--durability', 'memory'], dir, (text, child) => {
      const joined = (i: number) => text.split('\n').filter((l) => l.startsWith(`[${i}] joined namespace`)).length
      if (killed === 0 && joined(1) === 1 && joined(2) === 1) {
        killed = Number(/\[1\] weave w-1 on \S+ \(pid (\d+)\)/.exec(text)?.[1])
        process.kill(killed, 'SIGKILL')
      }
      if (killed > 0 && joined(1) === 2 && !child.killed) child.kill('SIGTERM')
    })
    expect(out.code, out.stderr).toBe(0)
    expect(out.stderr).toMatch(/\[1\] weave exited \(SIGKILL\); restarting/)
    expect(out.stdout).toContain(`[2] joined namespace '${ns}'`)
    expect(out.stderr).toMatch(/SIGTERM: stopping 2 weaves/)
    expect(() => process.kill(killed, 0)).toThrow()
  })
})

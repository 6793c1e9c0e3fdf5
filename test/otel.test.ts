/**
 * OpenTelemetry with the SDK's in-memory exporters: spans of thread runs, live calls, messages
 * and commits; a resumed run linked to the one before; metrics.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { join } from 'node:path'
import { context, trace } from '@opentelemetry/api'
import { thread, Weave, type AnyThreadType } from 'raiment'
import { readAhead } from '../src/replay-ahead.js'
import { threadJson, threadView } from '../src/cli/records.js'
import { runChild, supportScript } from './support/child.js'
import { named, parentOf, registerSdk, type Sdk } from './support/otel.js'
import { passivatedOnce } from './support/passivated.js'
import { tempDir } from './support/tmp.js'

declare module 'raiment' {
  interface Libraries {
    otelwork: { echo<T>(v: T): Promise<T>; fail(why: string): Promise<never>; hang(): Promise<never>; client(): Promise<string | null>; late(fail: boolean): Promise<string> }
  }
}

const otelwork = {
  async echo(v: unknown) {
    return v
  },
  async fail(why: string) {
    throw new Error(why)
  },
  /** As an instrumented client does: a span of its own in the active context, after an await; answers the span id active at its start. */
  async client() {
    const active = trace.getActiveSpan()?.spanContext().spanId ?? null
    await Promise.resolve()
    trace.getTracer('client').startSpan('client request').end()
    return active
  },
  /** Answers (or fails) a turn later: asked and not awaited, after the thread that asked returned. */
  async late(fail: boolean) {
    await new Promise((resolve) => setImmediate(resolve))
    if (fail) throw new Error('late failure')
    return 'late'
  },
  /** Never answers, and takes no abort (as an I/O call stuck on its network); `hanging` resolves as it is asked. */
  hang(): Promise<never> {
    entered()
    return new Promise(() => {})
  },
}
let entered = (): void => {}
/** Resolves once otelwork.hang is next asked. */
const hanging = (): Promise<void> => new Promise((resolve) => (entered = resolve))

const worker = thread({
  uses: ['otelwork', 'mailbox', 'threads'],
  async does() {
    const self = await this.threads.self()
    const m = await this.mailbox.receive<{ reply: string }>()
    await this.mailbox.send(m.reply, { from: self, echoed: await this.otelwork.echo(1) })
    return 'served'
  },
})

const boss = thread({
  uses: ['otelwork', 'mailbox', 'threads'],
  async does() {
    const self = await this.threads.self()
    const child = await this.threads.spawn('worker', {})
    await this.mailbox.send(child, { reply: self })
    const answer = await this.mailbox.receive()
    await this.threads.join(child)
    return answer
  },
})

const failing = thread({
  uses: ['otelwork'],
  async does() {
    await this.otelwork.fail('no luck')
  },
})

const waiter = thread({
  uses: ['otelwork', 'mailbox'],
  async does() {
    await this.otelwork.echo('before')
    return this.mailbox.receive()
  },
})

/** A record longer than a block (read ahead at a resume), then a wait. */
const looper = thread({
  uses: ['otelwork', 'mailbox'],
  async does(p: { n: number }) {
    for (let i = 0; i < p.n; i++) await this.otelwork.echo(i)
    return this.mailbox.receive()
  },
})

const stuck = thread({
  uses: ['otelwork'],
  async does() {
    await this.otelwork.hang()
  },
})

const instrumented = thread({
  uses: ['otelwork'],
  async does() {
    return this.otelwork.client()
  },
})

/** Asks two calls it does not await, and returns: they are made all the same. */
const unawaited = thread({
  uses: ['otelwork'],
  async does() {
    void this.otelwork.late(false)
    this.otelwork.late(true).catch(() => {})
    return 'returned'
  },
})

const threads = { worker, boss, failing, waiter, looper, stuck, instrumented, unawaited } as Record<string, AnyThreadType>

let sdk: Sdk
const defaultMinRows = readAhead.minRows
beforeAll(() => {
  sdk = registerSdk()
})
afterAll(async () => {
  await sdk.shutdown()
})

const open = (db: string) => Weave.open({ db, durability: 'memory', threads, libraries: { otelwork }, ioLibs: false, dumps: false })

describe('OpenTelemetry', () => {
  it('traces a thread run, its live calls, the threads it spawns and the messages between them as one trace', async () => {
    sdk.spans.reset()
    let shown: Record<string, unknown> | undefined
    const weave = await open(join(tempDir(), 'w.db'))
    try {
      // Spawned inside a span of the caller: the run joins the caller's trace.
      const outer = trace.getTracer('test').startSpan('request')
      const id = context.with(trace.setSpan(context.active(), outer), () => weave.spawn('boss'))
      const end = await weave.join(id)
      outer.end()
      expect(end).toMatchObject({ status: 'done', result: { echoed: 1 } })
      await weave.committed()
      // Where its run is in the traces, as `raiment show --json` prints it.
      shown = threadJson(threadView(weave.journal.thread(id)!, weave.journal))
    } finally {
      await weave.close()
    }
    const spans = sdk.spans.getFinishedSpans()
    const request = named(sdk.spans, 'request')[0]!
    const traceId = request.spanContext().traceId
    expect(shown?.['trace']).toMatch(new RegExp(`^00-${traceId}-[0-9a-f]{16}-0[01]$`))
    const [bossRun] = named(sdk.spans, 'thread boss')
    const [workerRun] = named(sdk.spans, 'thread worker')
    expect(bossRun).toBeDefined()
    expect(workerRun).toBeDefined()
    // One trace: the request, both runs, every call and both deliveries.
    for (const s of spans.filter((x) => x.name !== 'raiment.commit')) expect(s.spanContext().traceId, s.name).toBe(traceId)
    expect(parentOf(bossRun!)).toBe(request.spanContext().spanId)
    const spawn = spans.find((s) => s.name === 'threads.spawn')!
    expect(parentOf(spawn)).toBe(bossRun!.spanContext().spanId)
    expect(parentOf(workerRun!)).toBe(spawn.spanContext().spanId)
    expect(bossRun!.attributes).toMatchObject({ 'raiment.thread.type': 'boss', 'raiment.resumed': false, 'raiment.thread.status': 'done' })
    // A live call: its attributes.
    const echo = spans.find((s) => s.name === 'otelwork.echo')!
    expect(echo.attributes).toMatchObject({ 'raiment.thread.id': workerRun!.attributes['raiment.thread.id'], 'raiment.thread.type': 'worker', 'raiment.call': 'otelwork.echo', 'raiment.call.ordinal': 0 })
    expect(String(echo.attributes['raiment.call.id'])).toMatch(/:0$/)
    expect(parentOf(echo)).toBe(workerRun!.spanContext().spanId)
    // Each message taken: a 'deliver' span, child of its send, linked to the receive that took it.
    const sends = spans.filter((s) => s.name === 'mailbox.send')
    const delivers = named(sdk.spans, 'deliver')
    expect(delivers).toHaveLength(2)
    for (const d of delivers) {
      expect(sends.map((s) => s.spanContext().spanId)).toContain(parentOf(d))
      const takes = spans.filter((s) => s.name === 'mailbox.take' || s.name === 'mailbox.peek' || s.name === 'mailbox.takeNumber')
      expect(takes.map((s) => s.spanContext().spanId)).toContain(d.links[0]!.context.spanId)
    }
    // Group commits: entries and the time of the COMMIT.
    const commits = named(sdk.spans, 'raiment.commit')
    expect(commits.length).toBeGreaterThan(0)
    expect(commits.reduce((n, c) => n + Number(c.attributes['raiment.commit.entries']), 0)).toBeGreaterThan(0)
    expect(typeof commits[0]!.attributes['raiment.commit.fsync_ms']).toBe('number')
  })

  it('records a failed call and a failed run as errors', async () => {
    sdk.spans.reset()
    const weave = await open(join(tempDir(), 'w.db'))
    try {
      const end = await weave.join(weave.spawn('failing'))
      expect(end.status).toBe('failed')
    } finally {
      await weave.close()
    }
    const call = named(sdk.spans, 'otelwork.fail')[0]!
    expect(call.status).toMatchObject({ code: 2, message: 'no luck' })
    expect(call.events.map((e) => e.name)).toContain('exception')
    const run = named(sdk.spans, 'thread failing')[0]!
    expect(run.status.code).toBe(2)
    expect(run.attributes['raiment.thread.status']).toBe('failed')
  })

  it('links a resumed run to the run before it, in the same trace; its message keeps the sender\'s context', async () => {
    sdk.spans.reset()
    const db = join(tempDir(), 'resume.db')
    let weave = await open(db)
    const id = weave.spawn('waiter')
    // Sent while the weave runs, inside a span: recorded with the message in its inbox.
    await new Promise<void>((resolve) => weave.on('thread-start', () => resolve()))
    // Its first call (the echo) recorded: it waits in its receive now.
    while (weave.journal.entries(id).length === 0) await weave.committed().then(() => new Promise((r) => setImmediate(r)))
    await weave.close()
    const first = named(sdk.spans, 'thread waiter')[0]!
    expect(first.attributes['raiment.thread.status']).toBe('detached')

    weave = await open(db)
    try {
      const sender = trace.getTracer('test').startSpan('sender')
      context.with(trace.setSpan(context.active(), sender), () => weave.send(id, 'hello'))
      sender.end()
      expect(await weave.join(id)).toMatchObject({ status: 'done', result: 'hello' })
      const runs = named(sdk.spans, 'thread waiter')
      const resumed = runs.find((s) => s.attributes['raiment.resumed'] === true)!
      expect(resumed.spanContext().traceId).toBe(first.spanContext().traceId)
      expect(parentOf(resumed)).toBe(first.spanContext().spanId)
      expect(resumed.links.map((l) => l.context.spanId)).toEqual([first.spanContext().spanId])
      expect(resumed.attributes['raiment.woke']).toBeUndefined()
      // The replayed echo made no span; the receive did, and the message came in the sender's trace.
      expect(named(sdk.spans, 'otelwork.echo')).toHaveLength(1)
      const deliver = named(sdk.spans, 'deliver')[0]!
      expect(deliver.spanContext().traceId).toBe(sender.spanContext().traceId)
      expect(parentOf(deliver)).toBe(sender.spanContext().spanId)
      // Metrics of this weave (the other tests' weaves have other ids).
      const all = await sdk.metrics()
      const ours = (name: string) => (all.get(name) ?? []).filter((p) => p.attributes['raiment.weave.id'] === weave.journal.weaveId)
      expect(ours('raiment.replayed.entries')[0]?.value).toBe(1)
      expect(ours('raiment.calls').find((p) => p.attributes['raiment.call'] === 'otelwork.echo')?.value).toBe(1)
      expect(ours('raiment.commits')[0]?.value).toBeGreaterThan(0)
      expect((ours('raiment.commit.duration')[0]?.value as { count: number }).count).toBeGreaterThan(0)
      expect(ours('raiment.threads').find((p) => p.attributes['raiment.thread.status'] === 'done')?.value).toBe(1)
      expect(ours('raiment.mailbox.depth')[0]?.value).toBe(0)
      expect(ours('raiment.outbox.depth')[0]?.value).toBe(0)
    } finally {
      await weave.close()
    }
  })

  it('counts the entries a long record replayed as its thread goes live, while it waits', async () => {
    readAhead.minRows = 0
    try {
      const db = join(tempDir(), 'long.db')
      let weave = await open(db)
      const id = weave.spawn('looper', { n: 6_000 })
      const count = weave.journal.db.prepare('SELECT count(*) FROM journal WHERE thread = ?').pluck()
      while ((count.get(id) as number) < 6_000) await weave.committed().then(() => new Promise((r) => setImmediate(r)))
      await weave.close()
      weave = await open(db)
      try {
        const replayed = async (): Promise<unknown> => {
          const all = await sdk.metrics()
          return (all.get('raiment.replayed.entries') ?? []).find((p) => p.attributes['raiment.weave.id'] === weave.journal.weaveId)?.value
        }
        // Its length is not known before the last block came: told once the replay is over,
        // with the thread still waiting (no progress asked, no end).
        for (let turn = 0; turn < 2_000 && (await replayed()) === undefined; turn++) await new Promise((r) => setImmediate(r))
        expect(await replayed()).toBe(6_000)
        weave.send(id, 'go')
        expect(await weave.join(id)).toMatchObject({ status: 'done', result: 'go' })
      } finally {
        await weave.close()
      }
    } finally {
      readAhead.minRows = defaultMinRows
    }
  })

  it('a passivated thread woken records its new run\'s trace in its row and counts the entries it replayed', async () => {
    sdk.spans.reset()
    const weave = await Weave.open({ db: join(tempDir(), 'w.db'), durability: 'memory', threads, libraries: { otelwork }, ioLibs: false, dumps: false, passivateAfter: 0 })
    try {
      const id = weave.spawn('waiter')
      await passivatedOnce(weave, [id])
      await weave.committed()
      const traceOf = () => weave.journal.thread(id)!.trace
      const asleep = traceOf()
      weave.send(id, 'wake up')
      expect(await weave.join(id)).toMatchObject({ status: 'done', result: 'wake up' })
      await weave.committed()
      const [first, woken] = named(sdk.spans, 'thread waiter')
      expect(asleep).toContain(first!.spanContext().spanId)
      expect(woken!.attributes['raiment.resumed']).toBe(true)
      // A wake, told apart from a resume after a crash or a restart (which has no raiment.woke).
      expect(woken!.attributes['raiment.woke']).toBe('message')
      expect(first!.attributes['raiment.woke']).toBeUndefined()
      expect(woken!.links.map((l) => l.context.spanId)).toEqual([first!.spanContext().spanId])
      expect(traceOf()).toContain(woken!.spanContext().spanId)
      const all = await sdk.metrics()
      expect((all.get('raiment.replayed.entries') ?? []).find((p) => p.attributes['raiment.weave.id'] === weave.journal.weaveId)?.value).toBe(1)
    } finally {
      await weave.close()
    }
  })

  it('a call cut short by a close is abandoned: no error span, counted as abandoned, not as an error', async () => {
    sdk.spans.reset()
    // A db name of its own: its weave id (host and name) is no other test's, for the metrics.
    const weave = await open(join(tempDir(), 'cut-short.db'))
    const weaveId = weave.journal.weaveId
    const id = weave.spawn('waiter')
    // Its echo recorded: it waits in its receive now, which the close aborts.
    while (weave.journal.entries(id).length === 0) await weave.committed().then(() => new Promise((r) => setImmediate(r)))
    await weave.close()
    const take = named(sdk.spans, 'mailbox.take')[0]!
    expect(take.status.code).not.toBe(2)
    expect(take.events).toEqual([])
    expect(take.attributes['raiment.call.abandoned']).toBe(true)
    const calls = ((await sdk.metrics()).get('raiment.calls') ?? []).filter((p) => p.attributes['raiment.weave.id'] === weaveId && p.attributes['raiment.call'] === 'mailbox.take')
    expect(calls.map((p) => [p.attributes['raiment.outcome'], p.value])).toEqual([['abandoned', 1]])
  })

  it('a call in flight that never answers ends its span, abandoned, when its thread is killed or the weave closes', async () => {
    sdk.spans.reset()
    const weave = await open(join(tempDir(), 'w.db'))
    try {
      let asked = hanging()
      const killed = weave.spawn('stuck')
      await asked
      weave.kill(killed)
      expect(await weave.join(killed)).toMatchObject({ status: 'killed' })
      asked = hanging()
      weave.spawn('stuck')
      await asked
    } finally {
      await weave.close()
    }
    const hangs = named(sdk.spans, 'otelwork.hang')
    expect(hangs.map((s) => [s.attributes['raiment.call.abandoned'], s.status.code])).toEqual([
      [true, 0],
      [true, 0],
    ])
  })

  it('a call its thread did not await, answered after the thread returned, is made: its span ends as it answered, not abandoned', async () => {
    sdk.spans.reset()
    const weave = await open(join(tempDir(), 'w.db'))
    try {
      expect(await weave.join(weave.spawn('unawaited'))).toMatchObject({ status: 'done' })
      await expect.poll(() => named(sdk.spans, 'otelwork.late').length).toBe(2)
    } finally {
      await weave.close()
    }
    const late = named(sdk.spans, 'otelwork.late')
    expect(late.map((s) => [s.attributes['raiment.call.abandoned'], s.status.code]).sort()).toEqual([
      [undefined, 0],
      [undefined, 2],
    ])
  })

  it('the call\'s span is the active span in the library\'s code: an instrumented client\'s span nests under it', async () => {
    sdk.spans.reset()
    const weave = await open(join(tempDir(), 'w.db'))
    let end
    try {
      end = await weave.join(weave.spawn('instrumented'))
    } finally {
      await weave.close()
    }
    const call = named(sdk.spans, 'otelwork.client')[0]!
    expect(end).toMatchObject({ status: 'done', result: call.spanContext().spanId })
    const inner = named(sdk.spans, 'client request')[0]!
    expect(parentOf(inner)).toBe(call.spanContext().spanId)
    expect(inner.spanContext().traceId).toBe(call.spanContext().traceId)
  })

  it('telemetry: false makes no spans', async () => {
    sdk.spans.reset()
    const weave = await Weave.open({ db: join(tempDir(), 'w.db'), durability: 'memory', threads, libraries: { otelwork }, ioLibs: false, dumps: false, telemetry: false })
    try {
      await weave.join(weave.spawn('failing'))
    } finally {
      await weave.close()
    }
    expect(sdk.spans.getFinishedSpans()).toHaveLength(0)
  })
})

describe('without @opentelemetry/api', () => {
  it('a weave runs as ever where the package cannot be imported (even with telemetry: true)', async () => {
    const run = await runChild(supportScript('no-otel-child.ts'), [])
    expect(run.code, run.stderr).toBe(0)
    expect(run.lines).toEqual(['api missing: true', expect.stringMatching(/^end: \{.*"status":"done","result":"hi"\}$/)])
  })
})

/**
 * OpenTelemetry across weaves on the real broker: a thread on weave a spawns one on weave b and
 * they talk; the spawn and the messages carry their trace context in AMQP headers, so the whole
 * conversation is one trace.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { context, trace } from '@opentelemetry/api'
import { thread, type AnyThreadType } from 'raiment'
import { brokerUp, CI, requireBroker } from './support/broker.js'
import { named, parentOf, registerSdk, type Sdk } from './support/otel.js'
import { openWeaves } from './support/weaves.js'

const remoteWorker = thread({
  uses: ['mailbox', 'threads'],
  async does() {
    const self = await this.threads.self()
    const m = await this.mailbox.receive<{ reply: string }>()
    await this.mailbox.send(m.reply, { from: self })
    return 'served'
  },
})

const remoteBoss = thread({
  uses: ['mailbox', 'threads'],
  async does() {
    const self = await this.threads.self()
    const child = await this.threads.spawn('remoteWorker', {}, { on: 'b' })
    await this.mailbox.send(child, { reply: self })
    const answer = await this.mailbox.receive<{ from: string }>()
    return { child, answer }
  },
})

const namedBox = thread({
  uses: ['mailbox', 'registry'],
  async does() {
    await this.registry.register('box')
    return await this.mailbox.receive()
  },
})

const byName = thread({
  uses: ['mailbox'],
  async does() {
    await this.mailbox.send('box', { hi: 1 })
  },
})

const types = { remoteWorker, remoteBoss, namedBox, byName } as Record<string, AnyThreadType>

describe.skipIf(!brokerUp && !CI)('OpenTelemetry across weaves', () => {
  let sdk: Sdk
  beforeAll(() => {
    requireBroker()
    sdk = registerSdk()
  })
  afterAll(async () => {
    await sdk?.shutdown()
  })
  const cleanups: Array<() => Promise<void>> = []
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c()
  })

  it('a spawn on another weave and the messages both ways are one trace', async () => {
    const { w } = await openWeaves(cleanups, ['a', 'b'], types)
    const a = w['a']!
    const b = w['b']!
    const outer = trace.getTracer('test').startSpan('request')
    const id = context.with(trace.setSpan(context.active(), outer), () => a.spawn('remoteBoss'))
    const end = await a.join(id)
    outer.end()
    expect(end.status).toBe('done')
    const { child } = (end as { result: { child: string } }).result
    expect(await b.join(child)).toMatchObject({ status: 'done', result: 'served' })

    const traceId = outer.spanContext().traceId
    const spans = sdk.spans.getFinishedSpans().filter((s) => s.name !== 'raiment.commit')
    for (const s of spans) expect(s.spanContext().traceId, s.name).toBe(traceId)
    const bossRun = named(sdk.spans, 'thread remoteBoss')[0]!
    const workerRun = named(sdk.spans, 'thread remoteWorker')[0]!
    expect(workerRun.attributes['raiment.weave.id']).toBe('b')
    expect(bossRun.attributes['raiment.weave.id']).toBe('a')
    // The worker's run, on b, is a child of the spawn call on a (its context came in a header).
    const spawn = named(sdk.spans, 'threads.spawn')[0]!
    expect(parentOf(workerRun)).toBe(spawn.spanContext().spanId)
    // Each message taken: a child of its send, on the other weave.
    const sends = named(sdk.spans, 'mailbox.send')
    const delivers = named(sdk.spans, 'deliver')
    expect(delivers).toHaveLength(2)
    const sendOf = (d: (typeof delivers)[number]) => sends.find((s) => s.spanContext().spanId === parentOf(d))!
    expect(delivers.map((d) => [sendOf(d).attributes['raiment.thread.type'], d.attributes['raiment.thread.id']])).toEqual(
      expect.arrayContaining([
        ['remoteBoss', child],
        ['remoteWorker', id],
      ]),
    )
  })

  it('a message sent by name to a thread on another weave is a child of its send', async () => {
    sdk.spans.reset() // The test before ran threads of the same ids (a/1, b/1) in its own namespace.
    const { w, links } = await openWeaves(cleanups, ['a', 'b'], types)
    const box = w['b']!.spawn('namedBox')
    // a hears of the name from b's announcements.
    await vi.waitFor(() => expect(links['a']!.resolveName('box')).toMatchObject({ thread: box }), { timeout: 10_000, interval: 20 })
    const outer = trace.getTracer('test').startSpan('request by name')
    const sender = context.with(trace.setSpan(context.active(), outer), () => w['a']!.spawn('byName'))
    expect(await w['a']!.join(sender)).toMatchObject({ status: 'done' })
    expect(await w['b']!.join(box)).toMatchObject({ status: 'done', result: { hi: 1 } })
    outer.end()
    const traceId = outer.spanContext().traceId
    const send = named(sdk.spans, 'mailbox.send').find((s) => s.attributes['raiment.thread.id'] === sender)!
    const deliver = named(sdk.spans, 'deliver').find((s) => s.attributes['raiment.thread.id'] === box)!
    expect(send.spanContext().traceId).toBe(traceId)
    expect(deliver.spanContext().traceId).toBe(traceId)
    expect(parentOf(deliver)).toBe(send.spanContext().spanId)
  })
})

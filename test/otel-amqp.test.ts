/**
 * OpenTelemetry across weaves on the real broker: a thread on weave a spawns one on weave b and
 * they talk; the spawn and the messages carry their trace context in AMQP headers, so the whole
 * conversation is one trace.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { context, trace } from '@opentelemetry/api'
import { thread, type AnyThreadType } from 'raiment'
import { AMQP_URL, brokerUp, CI } from './support/broker.js'
import { named, parentOf, registerSdk, type Sdk } from './support/otel.js'
import { openWeaves } from './support/weaves.js'

const remoteWorker = thread({
  uses: ['mailbox', 'threads'],
  async does() {
    const self = await this.threads.self()
    const m = (await this.mailbox.receive()) as { reply: string }
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
    const answer = (await this.mailbox.receive()) as { from: string }
    return { child, answer }
  },
})

const types = { remoteWorker, remoteBoss } as Record<string, AnyThreadType>

describe.skipIf(!brokerUp && !CI)('OpenTelemetry across weaves', () => {
  let sdk: Sdk
  beforeAll(() => {
    if (!brokerUp) throw new Error(`CI=true and no RabbitMQ answers at ${new URL(AMQP_URL).host}: start it (rabbitmq-server -detached)`)
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
})

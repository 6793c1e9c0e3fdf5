/**
 * OpenTelemetry with a meter provider registered and no tracer provider: metrics are reported,
 * and no trace context is made up (the API's non-recording span has an invalid one, all zeros).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { join } from 'node:path'
import { metrics } from '@opentelemetry/api'
import { AggregationTemporality, InMemoryMetricExporter, MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics'
import { callContext, thread, Weave, type AnyThreadType } from 'raiment'
import { tempDir } from './support/tmp.js'

declare module 'raiment' {
  interface Libraries {
    tpwork: { seen(): Promise<string | null> }
  }
}

const tpwork = {
  async seen() {
    return callContext().traceparent
  },
}

const child = thread({
  uses: ['tpwork'],
  async does() {
    return this.tpwork.seen()
  },
})

const parent = thread({
  uses: ['tpwork', 'threads'],
  async does() {
    const seen = await this.tpwork.seen()
    const id = await this.threads.spawn('child')
    return { seen, child: await this.threads.join(id) }
  },
})

const threads = { child, parent } as Record<string, AnyThreadType>

let provider: MeterProvider
let reader: PeriodicExportingMetricReader
const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE)
beforeAll(() => {
  reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000 })
  provider = new MeterProvider({ readers: [reader] })
  metrics.setGlobalMeterProvider(provider)
})
afterAll(async () => {
  await provider.shutdown()
  metrics.disable()
})

describe('OpenTelemetry with a meter provider alone', () => {
  it('counts the calls, and a call and a run have no trace context (null, never the invalid one)', async () => {
    const weave = await Weave.open({ db: join(tempDir(), 'w.db'), durability: 'memory', threads, libraries: { tpwork }, ioLibs: false, dumps: false })
    try {
      const id = weave.spawn('parent')
      const end = await weave.join(id)
      expect(end).toMatchObject({ status: 'done', result: { seen: null, child: null } })
      await weave.committed()
      const traces = weave.journal.db.prepare('SELECT trace FROM threads').pluck().all()
      expect(traces).toEqual([null, null])
    } finally {
      await weave.close()
    }
    await reader.forceFlush()
    const last = exporter.getMetrics().at(-1)
    const calls = last?.scopeMetrics.flatMap((sm) => sm.metrics).find((m) => m.descriptor.name === 'raiment.calls')
    const seen = calls?.dataPoints.find((p) => p.attributes['raiment.call'] === 'tpwork.seen')
    expect(seen?.value).toBe(2)
  })
})

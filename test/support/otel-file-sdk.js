// An OpenTelemetry SDK for a `raiment` child process, loaded with NODE_OPTIONS='--import <this>'
// (as docs/observability.md shows): a BatchSpanProcessor and a metric reader that export only
// when flushed (their intervals are an hour), each export appended as JSON lines to the file
// RAIMENT_TEST_OTEL_OUT: {"span": name, "attributes": …} and {"metric": name}. With
// RAIMENT_TEST_OTEL_STUCK=1 the span exporter never answers (an exporter stuck on its network).
import { appendFileSync } from 'node:fs'
import { metrics, trace } from '@opentelemetry/api'
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base'
import { AggregationTemporality, MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics'

const out = process.env.RAIMENT_TEST_OTEL_OUT
const stuck = process.env.RAIMENT_TEST_OTEL_STUCK === '1'
const write = (objs) => {
  if (out !== undefined && objs.length > 0) appendFileSync(out, objs.map((o) => JSON.stringify(o) + '\n').join(''))
}

const spanExporter = {
  export(spans, done) {
    if (stuck) return
    write(spans.map((s) => ({ span: s.name, attributes: s.attributes })))
    done({ code: 0 })
  },
  async shutdown() {},
  async forceFlush() {},
}
const metricExporter = {
  export(rm, done) {
    write(rm.scopeMetrics.flatMap((sm) => sm.metrics.map((m) => ({ metric: m.descriptor.name }))))
    done({ code: 0 })
  },
  selectAggregationTemporality: () => AggregationTemporality.CUMULATIVE,
  async shutdown() {},
  async forceFlush() {},
}
const hour = 3_600_000
trace.setGlobalTracerProvider(
  new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor(spanExporter, { scheduledDelayMillis: hour, exportTimeoutMillis: hour, maxQueueSize: 100_000, maxExportBatchSize: 100_000 })] }),
)
metrics.setGlobalMeterProvider(new MeterProvider({ readers: [new PeriodicExportingMetricReader({ exporter: metricExporter, exportIntervalMillis: hour, exportTimeoutMillis: hour })] }))

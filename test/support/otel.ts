/**
 * An OpenTelemetry SDK registered globally for a test file (vitest runs each file in its own
 * worker): spans and metrics go to the SDK's in-memory exporters.
 */
import { context, metrics, trace } from '@opentelemetry/api'
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks'
import { AggregationTemporality, InMemoryMetricExporter, MeterProvider, PeriodicExportingMetricReader, type ResourceMetrics } from '@opentelemetry/sdk-metrics'
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan, type SpanProcessor } from '@opentelemetry/sdk-trace-base'
import { afterAll, beforeAll } from 'vitest'

export interface Sdk {
  spans: InMemorySpanExporter
  /** Collects the metrics now: the last export (cumulative), as name → data points. */
  metrics(): Promise<Map<string, Array<{ attributes: Record<string, unknown>; value: unknown }>>>
  shutdown(): Promise<void>
}

export function registerSdk(): Sdk {
  const spans = new InMemorySpanExporter()
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] })
  trace.setGlobalTracerProvider(tracerProvider)
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())
  const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE)
  const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000 })
  const meterProvider = new MeterProvider({ readers: [reader] })
  metrics.setGlobalMeterProvider(meterProvider)
  return {
    spans,
    async metrics() {
      await reader.forceFlush()
      const all: ResourceMetrics[] = exporter.getMetrics()
      const last = all[all.length - 1]
      const out = new Map<string, Array<{ attributes: Record<string, unknown>; value: unknown }>>()
      for (const sm of last?.scopeMetrics ?? []) {
        for (const m of sm.metrics) out.set(m.descriptor.name, m.dataPoints.map((p) => ({ attributes: p.attributes, value: p.value })))
      }
      return out
    },
    async shutdown() {
      await tracerProvider.shutdown()
      await meterProvider.shutdown()
      trace.disable()
      context.disable()
      metrics.disable()
    },
  }
}

/** The spans named `name`. */
export function named(spans: InMemorySpanExporter, name: string): ReadableSpan[] {
  return spans.getFinishedSpans().filter((s) => s.name === name)
}

/** The span's parent span id ('' for a root). */
export function parentOf(s: ReadableSpan): string {
  return s.parentSpanContext?.spanId ?? ''
}

/** For the test file: a global tracer provider whose one span processor is `processor` (its hooks are the test's). */
export function withSpanProcessor(processor: SpanProcessor): void {
  let provider: BasicTracerProvider
  beforeAll(() => {
    provider = new BasicTracerProvider({ spanProcessors: [processor] })
    trace.setGlobalTracerProvider(provider)
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())
  })
  afterAll(async () => {
    await provider.shutdown()
    trace.disable()
    context.disable()
  })
}

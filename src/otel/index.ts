/**
 * OpenTelemetry for a weave: loads `@opentelemetry/api` (an optional peer dependency) once, with a
 * dynamic import, and makes an observer (src/observer.ts) when an SDK is registered. Without the
 * package, or with it and no SDK, there is no observer: the weave runs as if this folder did not
 * exist.
 */
import type * as Api from '@opentelemetry/api'
import type { Observer } from '../observer.js'
import { OtelObserver } from './otel-observer.js'

type OtelApi = typeof Api

let loading: Promise<OtelApi | null> | null = null

/** `@opentelemetry/api`, or null when it is not installed (imported once per process). */
export function otelApi(): Promise<OtelApi | null> {
  loading ??= import('@opentelemetry/api').then(
    (m) => m,
    () => null,
  )
  return loading
}

/** Is a tracer provider or a meter provider registered (anything but the API's no-ops)? */
export function sdkRegistered(api: OtelApi): boolean {
  let tp: unknown = api.trace.getTracerProvider()
  if (tp instanceof api.ProxyTracerProvider) tp = tp.getDelegate()
  const noopTracer = new api.ProxyTracerProvider().getDelegate()
  const noopMeter = api.createNoopMeter().constructor
  return tp !== noopTracer || !(api.metrics.getMeter('raiment') instanceof noopMeter)
}

/**
 * The observer for a weave: with `telemetry` true, whenever the API is installed; by default,
 * when it is and an SDK is registered (register it before the weave opens); never with false.
 * `warn`: where it reports the first throw of the SDK (the weave's `onWarning`).
 */
export async function otelObserver(telemetry: boolean | undefined, warn: (w: Error) => void): Promise<Observer | null> {
  if (telemetry === false) return null
  const api = await otelApi()
  if (api === null) return null
  if (telemetry !== true && !sdkRegistered(api)) return null
  return new OtelObserver(api, warn)
}

/** How long `flushTelemetry` waits for the SDK at most (ms): a stuck exporter must not hang a weave's exit. */
export const FLUSH_MS = 2_000

/**
 * Flushes what the globally registered SDK still buffers (a BatchSpanProcessor's spans, a metric
 * reader's metrics) through its providers' `forceFlush`, waiting `ms` at most: what is not out by
 * then is left. Does nothing in a process that never loaded the API. Never throws.
 * @returns false when the flush did not finish in time
 * @example
 * await weave.close()
 * await flushTelemetry()
 */
export async function flushTelemetry(ms = FLUSH_MS): Promise<boolean> {
  if (loading === null) return true
  const api = await loading
  if (api === null) return true
  let tp: unknown = api.trace.getTracerProvider()
  if (tp instanceof api.ProxyTracerProvider) tp = tp.getDelegate()
  const flushes: Array<Promise<unknown>> = []
  for (const p of [tp, api.metrics.getMeterProvider()] as Array<{ forceFlush?: unknown }>) {
    if (typeof p.forceFlush !== 'function') continue
    try {
      flushes.push(Promise.resolve((p.forceFlush as () => unknown).call(p)).catch(() => {}))
    } catch {
      // A provider that throws has nothing more to give.
    }
  }
  if (flushes.length === 0) return true
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<boolean>((resolve) => (timer = setTimeout(resolve, ms, false)).unref())
  try {
    return await Promise.race([Promise.all(flushes).then(() => true), late])
  } finally {
    clearTimeout(timer)
  }
}

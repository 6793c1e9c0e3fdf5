/**
 * W3C trace context (`traceparent`: version-traceid-spanid-flags) to and from OpenTelemetry span
 * contexts. Our own few lines rather than the API's propagator: with no propagator registered the
 * API's is a no-op, and what we record must not depend on how the SDK was set up.
 */
import type { SpanContext } from '@opentelemetry/api'

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/

export function toTraceparent(sc: SpanContext): string {
  return `00-${sc.traceId}-${sc.spanId}-${(sc.traceFlags & 0xff).toString(16).padStart(2, '0')}`
}

/** The span context a traceparent names (remote), or null for anything else. */
export function fromTraceparent(tp: unknown): SpanContext | null {
  if (typeof tp !== 'string') return null
  const m = TRACEPARENT.exec(tp)
  if (m === null || /^0+$/.test(m[1]!) || /^0+$/.test(m[2]!)) return null
  return { traceId: m[1]!, spanId: m[2]!, traceFlags: parseInt(m[3]!, 16), isRemote: true }
}

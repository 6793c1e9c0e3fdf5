/**
 * The OpenTelemetry observer: a span per thread run, per live weft call, per message taken and
 * per group commit, and the weave's metrics (src/otel/metrics.ts). Made only when an SDK is
 * registered (src/otel/index.ts).
 *
 * Spans:
 * - `thread <type>`: one run of a thread, from its spawn (or resume) to its end. Its parent is
 *   where it was spawned: the spawning call (another thread, on this weave or another), or the
 *   caller's active span. A resumed run is a child of the run before it, and linked to it.
 * - `<lib>.<method>`: a live weft call (replayed calls make none), child of its run; one cut
 *   short (its outcome not recorded: a kill, a close, a move, a passivation) ends without an
 *   error, `raiment.call.abandoned` true.
 * - `deliver`: a message taken by a receive, child of the send that made it (so a conversation
 *   is one trace), linked to the receiving call.
 * - `raiment.commit`: a group commit (its entries, and the time of its COMMIT: the fsync).
 *
 * Invariant: nothing the SDK throws (a span processor's onStart or onEnd, a metric reader) leaves
 * this observer. Each call into OpenTelemetry is caught; the first throw is reported to the
 * weave's warnings (`onWarning`) as TelemetryFailed, the others are dropped; a span that could not
 * start is a non-recording one. The weave goes on as if the SDK had done its part.
 */
import type * as Api from '@opentelemetry/api'
import type { Attributes, Context, Link, Span, Tracer } from '@opentelemetry/api'
import { RaimentError } from '../errors.js'
import type { CallObservation, ObservedWeave, Observer, RunObservation } from '../observer.js'
import { WeaveMetrics } from './metrics.js'
import { fromTraceparent, toTraceparent } from './traceparent.js'

type OtelApi = typeof Api

const VERSION = '0.1.0'

/** Calls that hand something to another thread: producer spans. */
const PRODUCERS = new Set(['mailbox.send', 'threads.spawn'])

/** The OpenTelemetry SDK threw (a span processor, an exporter, a metric reader); reported once per weave, as a warning. */
export class TelemetryFailed extends RaimentError {
  constructor(cause: unknown) {
    super(
      'RAIMENT_TELEMETRY_FAILED',
      `the OpenTelemetry SDK threw (${cause instanceof Error ? cause.message : String(cause)}): the weave goes on, but its spans and metrics may be incomplete from now on. ` +
        'Fix the span processor, exporter or metric reader that threw (reported once; later throws are not)',
      { cause },
    )
  }
}

export class OtelObserver implements Observer {
  readonly #api: OtelApi
  readonly #tracer: Tracer
  readonly metrics: WeaveMetrics
  readonly #warn: (w: Error) => void
  #faulted = false
  #weaveId = ''

  /** `warn`: where the first throw of the SDK is reported (the weave's `onWarning`). */
  constructor(api: OtelApi, warn: (w: Error) => void) {
    this.#api = api
    this.#warn = warn
    this.#tracer = api.trace.getTracer('raiment', VERSION)
    this.metrics = new WeaveMetrics(api)
  }

  /** @internal The SDK threw `e`: reported the first time, never thrown on. */
  fault(e: unknown): void {
    if (this.#faulted) return
    this.#faulted = true
    try {
      this.#warn(new TelemetryFailed(e))
    } catch {
      // A warning handler that throws must not break the weave either.
    }
  }

  /** @internal `fn()`, or `fallback` if the SDK threw (reported once, never thrown on). */
  guard<T>(fn: () => T, fallback: T): T {
    try {
      return fn()
    } catch (e) {
      this.fault(e)
      return fallback
    }
  }

  /** A span that records nothing, for one the SDK failed to start. */
  #nonRecording(): Span {
    return this.#api.trace.wrapSpanContext(this.#api.INVALID_SPAN_CONTEXT)
  }

  /** A context whose span is the one `tp` names, or null. */
  #contextOf(tp: string | null): Context | null {
    const sc = fromTraceparent(tp)
    return sc === null ? null : this.#api.trace.setSpanContext(this.#api.ROOT_CONTEXT, sc)
  }

  active(): string | null {
    const span = this.guard(() => this.#api.trace.getSpan(this.#api.context.active()), undefined)
    return span === undefined ? null : this.traceparentOf(span)
  }

  /** @internal The span's context as a traceparent; null for an invalid one (no tracer provider: a non-recording span of zeros). */
  traceparentOf(span: Span): string | null {
    return this.guard(() => {
      const sc = span.spanContext()
      return this.#api.trace.isSpanContextValid(sc) ? toTraceparent(sc) : null
    }, null)
  }

  run(id: string, type: string, resumed: boolean, parent: string | null): RunObservation {
    let span: Span
    try {
      const api = this.#api
      const parentCtx = this.#contextOf(parent)
      const links: Link[] = []
      if (resumed && parentCtx !== null) links.push({ context: api.trace.getSpanContext(parentCtx)!, attributes: { 'raiment.link': 'resumed-from' } })
      const attributes: Attributes = { 'raiment.thread.id': id, 'raiment.thread.type': type, 'raiment.resumed': resumed }
      if (this.#weaveId !== '') attributes['raiment.weave.id'] = this.#weaveId
      span = this.#tracer.startSpan(`thread ${type}`, { attributes, links }, parentCtx ?? api.context.active())
    } catch (e) {
      this.fault(e)
      span = this.#nonRecording()
    }
    return new RunSpan(this, span, id, type)
  }

  /** @internal */
  startCall(run: RunSpan, lib: string, method: string, ord: number, callId: () => string): CallObservation {
    const api = this.#api
    const name = `${lib}.${method}`
    let span: Span
    try {
      span = this.#tracer.startSpan(
        name,
        {
          kind: PRODUCERS.has(name) ? api.SpanKind.PRODUCER : api.SpanKind.INTERNAL,
          attributes: {
            'raiment.thread.id': run.id,
            'raiment.thread.type': run.type,
            'raiment.call': name,
            'raiment.call.id': callId(),
            'raiment.call.ordinal': ord,
          },
        },
        api.trace.setSpan(api.ROOT_CONTEXT, run.span),
      )
    } catch (e) {
      this.fault(e)
      span = this.#nonRecording()
    }
    return new CallSpan(this, span, run, name)
  }

  /** @internal A message sent in context `tp` was taken by the call of `call`. */
  deliver(call: CallSpan, tp: string, from: string | null): void {
    const api = this.#api
    const parent = this.#contextOf(tp)
    if (parent === null) return
    const attributes: Attributes = { 'raiment.thread.id': call.run.id, 'messaging.system': 'raiment' }
    if (from !== null) attributes['raiment.message.from'] = from
    this.guard(() => this.#tracer.startSpan('deliver', { kind: api.SpanKind.CONSUMER, attributes, links: [{ context: call.span.spanContext() }] }, parent).end(), undefined)
  }

  /** @internal Ends `span`: with an error status unless `ok` (the error `value`); `attribute`: one more to set first. */
  ended(span: Span, ok: boolean, value: unknown, attribute?: [string, string | boolean]): void {
    this.guard(() => {
      if (attribute !== undefined) span.setAttribute(attribute[0], attribute[1])
      if (!ok) {
        if (value instanceof Error) span.recordException(value)
        span.setStatus({ code: this.#api.SpanStatusCode.ERROR, message: value instanceof Error ? value.message : String(value) })
      }
      span.end()
    }, undefined)
  }

  commit(entries: number, writes: number, ms: number, fsyncMs: number): void {
    this.guard(() => {
      const now = performance.timeOrigin + performance.now()
      const attributes: Attributes = { 'raiment.commit.entries': entries, 'raiment.commit.writes': writes, 'raiment.commit.fsync_ms': fsyncMs }
      if (this.#weaveId !== '') attributes['raiment.weave.id'] = this.#weaveId
      this.#tracer.startSpan('raiment.commit', { attributes, startTime: now - ms, root: true }).end(now)
      this.metrics.commit(entries, ms)
    }, undefined)
  }

  replayed(entries: number): void {
    this.guard(() => this.metrics.replayed(entries), undefined)
  }

  /** @internal Runs `fn` with `span` active (in the context manager registered, if any); `fn`'s throw is its own, never a fault. */
  within<T>(span: Span, fn: () => T): T {
    let ctx: Context
    try {
      ctx = this.#api.trace.setSpan(this.#api.context.active(), span)
    } catch (e) {
      this.fault(e)
      return fn()
    }
    return this.#api.context.with(ctx, fn)
  }

  /** @internal A call ended with `outcome` (src/otel/metrics.ts). */
  counted(name: string, outcome: 'ok' | 'error' | 'abandoned'): void {
    this.guard(() => this.metrics.call(name, outcome), undefined)
  }

  attach(weave: ObservedWeave): void {
    this.#weaveId = weave.weaveId
    this.guard(() => this.metrics.attach(weave), undefined)
  }

  detach(): void {
    this.guard(() => this.metrics.detach(), undefined)
  }
}

class RunSpan implements RunObservation {
  readonly #o: OtelObserver
  readonly span: Span
  readonly id: string
  readonly type: string
  #tp: string | null | undefined = undefined
  #ended = false

  constructor(o: OtelObserver, span: Span, id: string, type: string) {
    this.#o = o
    this.span = span
    this.id = id
    this.type = type
  }

  get traceparent(): string | null {
    if (this.#tp === undefined) this.#tp = this.#o.traceparentOf(this.span)
    return this.#tp
  }

  call(lib: string, method: string, ord: number, callId: () => string): CallObservation {
    return this.#o.startCall(this, lib, method, ord, callId)
  }

  woke(by: string): void {
    this.#o.guard(() => this.span.setAttribute('raiment.woke', by), undefined)
  }

  end(status: string, error?: unknown): void {
    // Once: a run ending as the weave closes is told 'detached', then perhaps its end.
    if (this.#ended) return
    this.#ended = true
    this.#o.ended(this.span, status !== 'failed', error, ['raiment.thread.status', status])
  }
}

class CallSpan implements CallObservation {
  readonly #o: OtelObserver
  readonly span: Span
  readonly run: RunSpan
  readonly #name: string
  #done = false

  constructor(o: OtelObserver, span: Span, run: RunSpan, name: string) {
    this.#o = o
    this.span = span
    this.run = run
    this.#name = name
  }

  get traceparent(): string | null {
    return this.#o.traceparentOf(this.span)
  }

  end(ok: boolean, value: unknown): void {
    if (this.#done) return
    this.#done = true
    this.#o.counted(this.#name, ok ? 'ok' : 'error')
    this.#o.ended(this.span, ok, value)
  }

  abandon(): void {
    if (this.#done) return
    this.#done = true
    this.#o.counted(this.#name, 'abandoned')
    this.#o.ended(this.span, true, undefined, ['raiment.call.abandoned', true])
  }

  within<T>(fn: () => T): T {
    return this.#o.within(this.span, fn)
  }

  took(traceparent: string, from: string | null): void {
    this.#o.deliver(this, traceparent, from)
  }
}

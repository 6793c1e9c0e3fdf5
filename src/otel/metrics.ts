/**
 * A weave's metrics through the OpenTelemetry metrics API:
 * - `raiment.calls` (counter): live weft calls, by `raiment.call` (lib.method) and `raiment.outcome`
 *   (ok, error, or abandoned: cut short by a kill, close, move or passivation, its outcome not recorded);
 * - `raiment.commits` (counter) and `raiment.commit.duration` (histogram, ms): group commits;
 * - `raiment.commit.entries` (counter): journal entries committed;
 * - `raiment.replayed.entries` (counter): entries replayed by resumed threads;
 * - `raiment.threads` (gauge): threads in the journal by `raiment.thread.status`;
 * - `raiment.mailbox.depth`, `raiment.outbox.depth` (gauges): messages waiting in inboxes, and
 *   envelopes waiting in the outbox for other weaves.
 * The gauges read the journal only when a metric reader collects.
 */
import type * as Api from '@opentelemetry/api'
import type { BatchObservableCallback, Counter, Histogram, Observable, ObservableGauge } from '@opentelemetry/api'
import type { ObservedWeave } from '../observer.js'

type OtelApi = typeof Api

export class WeaveMetrics {
  readonly #calls: Counter
  readonly #commits: Counter
  readonly #commitEntries: Counter
  readonly #commitMs: Histogram
  readonly #replayed: Counter
  readonly #threads: ObservableGauge
  readonly #mailbox: ObservableGauge
  readonly #outbox: ObservableGauge
  readonly #meter: Api.Meter
  #callback: BatchObservableCallback | null = null
  #attrs: Record<string, string> = {}
  /** The attributes of each call name and outcome, made once (a call then allocates none). */
  readonly #callAttrs = new Map<string, Record<string, string>>()

  constructor(api: OtelApi) {
    const m = api.metrics.getMeter('raiment', '0.1.0')
    this.#meter = m
    this.#calls = m.createCounter('raiment.calls', { description: 'Live weft calls' })
    this.#commits = m.createCounter('raiment.commits', { description: 'Group commits of the journal' })
    this.#commitEntries = m.createCounter('raiment.commit.entries', { description: 'Journal entries committed' })
    this.#commitMs = m.createHistogram('raiment.commit.duration', { description: 'Time of a group commit (fsync included)', unit: 'ms' })
    this.#replayed = m.createCounter('raiment.replayed.entries', { description: 'Journal entries replayed by resumed threads' })
    this.#threads = m.createObservableGauge('raiment.threads', { description: 'Threads in the journal, by status' })
    this.#mailbox = m.createObservableGauge('raiment.mailbox.depth', { description: 'Messages waiting in inboxes' })
    this.#outbox = m.createObservableGauge('raiment.outbox.depth', { description: 'Envelopes waiting in the outbox for other weaves' })
  }

  /** A live call ended: answered (`ok`, `error`), or cut short, its outcome not recorded (`abandoned`). */
  call(name: string, outcome: 'ok' | 'error' | 'abandoned'): void {
    const k = outcome === 'ok' ? name : name + '\0' + outcome
    let attrs = this.#callAttrs.get(k)
    if (attrs === undefined) this.#callAttrs.set(k, (attrs = { 'raiment.call': name, 'raiment.outcome': outcome, ...this.#attrs }))
    this.#calls.add(1, attrs)
  }

  commit(entries: number, ms: number): void {
    this.#commits.add(1, this.#attrs)
    if (entries > 0) this.#commitEntries.add(entries, this.#attrs)
    this.#commitMs.record(ms, this.#attrs)
  }

  replayed(entries: number): void {
    this.#replayed.add(entries, this.#attrs)
  }

  attach(weave: ObservedWeave): void {
    this.detach()
    const attrs = { 'raiment.weave.id': weave.weaveId }
    this.#attrs = attrs
    this.#callAttrs.clear()
    const cb: BatchObservableCallback = (r) => {
      for (const [status, n] of weave.threadsByStatus()) r.observe(this.#threads, n, { ...attrs, 'raiment.thread.status': status })
      const d = weave.depths()
      r.observe(this.#mailbox, d.mailbox, attrs)
      r.observe(this.#outbox, d.outbox, attrs)
    }
    this.#callback = cb
    const observables: Observable[] = [this.#threads, this.#mailbox, this.#outbox]
    this.#meter.addBatchObservableCallback(cb, observables)
  }

  detach(): void {
    if (this.#callback === null) return
    this.#meter.removeBatchObservableCallback(this.#callback, [this.#threads, this.#mailbox, this.#outbox])
    this.#callback = null
  }
}

// `npm run bench -- --only otel`: what OpenTelemetry costs (issue 15). W2 (100 threads x 100
// steps, all at once, durability sync, as bench/replication.ts measures it) on a weave:
// - without the hook (`telemetry: false`: no observer is looked for);
// - with `@opentelemetry/api` installed and no SDK registered (the default: the weave finds no
//   SDK and runs without an observer), target within 3 % of the first;
// - with an SDK registered (BasicTracerProvider + BatchSpanProcessor, MeterProvider + a periodic
//   reader) whose exporters drop everything: the cost of making the spans and metrics.
// The first two alternate run by run, so a slow moment of the machine hits both alike.
import { metrics, trace } from '@opentelemetry/api'
import { AggregationTemporality, MeterProvider, PeriodicExportingMetricReader, type PushMetricExporter } from '@opentelemetry/sdk-metrics'
import { BasicTracerProvider, BatchSpanProcessor, type SpanExporter } from '@opentelemetry/sdk-trace-base'
import { Weave } from '../src/index.js'
import { fmt, line, noop, runSteps, sequential, summarize, tempDir, verdict, W2 } from './common.js'

const TARGET = { atLeast: 0.97, text: 'W2 with the API and no SDK within 3 % of W2 without the hook' }

/** Steps per second of W2 on a fresh weave. */
async function w2(telemetry: false | undefined): Promise<number> {
  const tmp = tempDir()
  const weave = await Weave.open({
    db: tmp.file('w.db'),
    durability: 'sync',
    threads: { sequential },
    libraries: { noop },
    ioLibs: false,
    dumps: false,
    ...(telemetry === false ? { telemetry } : {}),
  })
  try {
    return (W2.threads * W2.steps) / ((await runSteps(weave, W2)) / 1000)
  } finally {
    await weave.close()
    tmp.done()
  }
}

const dropSpans: SpanExporter = { export: (_spans, done) => done({ code: 0 }), shutdown: async () => {} }
const dropMetrics: PushMetricExporter = {
  export: (_m, done) => done({ code: 0 }),
  forceFlush: async () => {},
  shutdown: async () => {},
  selectAggregationTemporality: () => AggregationTemporality.CUMULATIVE,
}

export async function otelBench(runs: number, log: (s: string) => void, progress: (s: string) => void): Promise<void> {
  log('')
  log(`## OpenTelemetry: W2 (${W2.threads} threads x ${W2.steps} steps, all at once, sync), steps/s`)
  const rounds = Math.max(runs, 7)
  const off: number[] = []
  const api: number[] = []
  const ratios: number[] = []
  for (let r = 0; r < rounds; r++) {
    let a: number
    let b: number
    if (r % 2 === 0) {
      a = await w2(false)
      b = await w2(undefined)
    } else {
      b = await w2(undefined)
      a = await w2(false)
    }
    off.push(a)
    api.push(b)
    ratios.push(b / a)
    progress(`  otel run ${r + 1}/${rounds}: no hook ${fmt(a)}, API and no SDK ${fmt(b)} steps/s (${(b / a).toFixed(3)})`)
  }
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor(dropSpans)] })
  const meterProvider = new MeterProvider({ readers: [new PeriodicExportingMetricReader({ exporter: dropMetrics, exportIntervalMillis: 1_000 })] })
  trace.setGlobalTracerProvider(tracerProvider)
  metrics.setGlobalMeterProvider(meterProvider)
  const sdk: number[] = []
  try {
    for (let r = 0; r < rounds; r++) {
      sdk.push(await w2(undefined))
      progress(`  otel run ${r + 1}/${rounds}: SDK and a no-op exporter ${fmt(sdk[r]!)} steps/s`)
    }
  } finally {
    await tracerProvider.shutdown()
    await meterProvider.shutdown()
    trace.disable()
    metrics.disable()
  }
  const offS = summarize(off)
  log(line('W2 without the hook (telemetry: false)', offS, 'steps/s'))
  log(line('W2 with @opentelemetry/api installed, no SDK', summarize(api), 'steps/s'))
  // The ratio of the medians: the two differ only in Weave.open (the look for an SDK), and the
  // machine's noise from run to run is far above 3 %, so run-by-run ratios tell little alone.
  const ratio = summarize(api).median / offS.median
  log(line('  run by run, API and no SDK / no hook', summarize(ratios), 'x'))
  log(`  API and no SDK / no hook, medians: ${ratio.toFixed(3)}x ` + verdict(ratio, TARGET, 'OTel API, no SDK / no hook'))
  const sdkS = summarize(sdk)
  log(line('W2 with an SDK and a no-op exporter (a span per call, run and commit; metrics)', sdkS, 'steps/s'))
  log(`  SDK / no hook: ${(sdkS.median / offS.median).toFixed(2)}x, ${fmt((1e6 / sdkS.median) - (1e6 / offS.median))} µs more per step`)
}

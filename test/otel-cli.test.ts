/**
 * OpenTelemetry in `raiment start`, with an SDK loaded as docs/observability.md shows
 * (NODE_OPTIONS='--import …', test/support/otel-file-sdk.js): a thread queued by `raiment spawn`
 * keeps its trace across a SIGKILL; a weave stopped by a signal flushes what the SDK buffered.
 */
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { Weave } from 'raiment'
import { Journal } from '../src/journal.js'
import listener from '../threads/listener.js'
import { named, registerSdk, type Sdk } from './support/otel.js'
import { raiment, raimentProcess, THREADS } from './support/raiment-process.js'
import { supportScript } from './support/child.js'
import { tempDir } from './support/tmp.js'

const T = ['--threads', THREADS]
/** Several Node processes, each loading TypeScript through tsx. */
const SLOW = 120_000

const sdkEnv = (out: string, more: Record<string, string> = {}): Record<string, string> => ({
  NODE_OPTIONS: `--import ${supportScript('otel-file-sdk.js')}`,
  RAIMENT_TEST_OTEL_OUT: out,
  ...more,
})

let sdk: Sdk
beforeAll(() => {
  sdk = registerSdk()
})
afterAll(async () => {
  await sdk.shutdown()
})

function traceOf(db: string, id: string): string | null {
  const journal = new Journal(db, { readonly: true })
  try {
    return journal.thread(id)!.trace ?? null
  } finally {
    journal.close()
  }
}

describe('raiment start with an OpenTelemetry SDK', () => {
  test(
    'a thread spawned while no weave ran, started, then SIGKILLed: its row keeps its run\'s trace, and its resumed run is linked to it',
    async () => {
      const dir = tempDir()
      const db = join(dir, 'raiment.db')
      const spawned = await raiment(dir, 'spawn', 'listener', JSON.stringify({ timeout: 600_000 }), ...T)
      expect(spawned.code, spawned.stderr).toBe(0)
      const id = spawned.stdout.trim()
      expect(traceOf(db, id)).toBeNull()

      const weave = raimentProcess(dir, ['start', ...T], { env: sdkEnv(join(dir, 'otel.jsonl')) })
      // 'started' is logged once its status 'running' is durable.
      await weave.until((out) => out.includes(`started ${id} listener`))
      weave.child.kill('SIGKILL')
      expect((await weave.ended).signal).toBe('SIGKILL')
      const first = traceOf(db, id)
      expect(first).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/)

      const resumed = await Weave.open({ db, threads: { listener }, dumps: false })
      try {
        expect(resumed.resumed).toBe(1)
      } finally {
        await resumed.close()
      }
      const run = named(sdk.spans, 'thread listener').find((s) => s.attributes['raiment.thread.id'] === id)!
      const [, traceId, spanId] = first!.split('-')
      expect(run.attributes['raiment.resumed']).toBe(true)
      expect(run.spanContext().traceId).toBe(traceId)
      expect(run.links.map((l) => [l.context.spanId, l.attributes?.['raiment.link']])).toEqual([[spanId, 'resumed-from']])
    },
    SLOW,
  )

  test(
    'SIGTERM: what a BatchSpanProcessor and a metric reader still buffer is flushed as the weave closes',
    async () => {
      const dir = tempDir()
      const out = join(dir, 'otel.jsonl')
      const spawned = await raiment(dir, 'spawn', 'greet', JSON.stringify({ name: 'ada' }), ...T)
      expect(spawned.code, spawned.stderr).toBe(0)
      const id = spawned.stdout.trim()
      const weave = raimentProcess(dir, ['start', ...T], { env: sdkEnv(out) })
      await weave.until((o) => o.includes(`done ${id} greet`))
      weave.child.kill('SIGTERM')
      const ended = await weave.ended
      expect(ended.code, ended.stderr).toBe(0)
      const lines = readFileSync(out, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { span?: string; metric?: string })
      expect(lines.filter((l) => l.span === 'thread greet')).toHaveLength(1)
      expect(lines.map((l) => l.metric)).toContain('raiment.calls')
    },
    SLOW,
  )

  test(
    'SIGTERM with an exporter that never answers: the flush gives up after a short while, says so, and the weave exits',
    async () => {
      const dir = tempDir()
      const out = join(dir, 'otel.jsonl')
      const spawned = await raiment(dir, 'spawn', 'greet', JSON.stringify({ name: 'ada' }), ...T)
      const id = spawned.stdout.trim()
      const weave = raimentProcess(dir, ['start', ...T], { env: sdkEnv(out, { RAIMENT_TEST_OTEL_STUCK: '1' }) })
      await weave.until((o) => o.includes(`done ${id} greet`))
      weave.child.kill('SIGTERM')
      const ended = await weave.ended
      expect(ended.code, ended.stderr).toBe(0)
      expect(ended.stderr).toMatch(/OpenTelemetry: the SDK did not flush its spans and metrics within \d+ ms/)
      // The metrics went out; the spans, stuck, did not.
      expect(existsSync(out) ? readFileSync(out, 'utf8') : '').not.toContain('"span"')
    },
    SLOW,
  )
})

/**
 * An OpenTelemetry SDK that throws (a span processor's onStart or onEnd): the weave reports it
 * once, as a warning, and goes on: spawns, outcomes and ends are as without it.
 */
import { describe, expect, it } from 'vitest'
import { join } from 'node:path'
import type { SpanProcessor } from '@opentelemetry/sdk-trace-base'
import { thread, Weave, type AnyThreadType } from 'raiment'
import { withSpanProcessor } from './support/otel.js'
import { tempDir } from './support/tmp.js'

declare module 'raiment' {
  interface Libraries {
    faultwork: { echo<T>(v: T): Promise<T> }
  }
}

const faultwork = {
  async echo(v: unknown) {
    return v
  },
}

const echoer = thread({
  uses: ['faultwork', 'threads', 'mailbox'],
  async does() {
    const self = await this.threads.self()
    await this.mailbox.send(self, 'note')
    const got = await this.mailbox.receive()
    return [await this.faultwork.echo(1), await this.faultwork.echo(2), got]
  },
})

const threads = { echoer } as Record<string, AnyThreadType>

/** Which of its hooks throw. */
const throwing = { onStart: false, onEnd: false }
const processor: SpanProcessor = {
  onStart() {
    if (throwing.onStart) throw new Error('onStart broke')
  },
  onEnd() {
    if (throwing.onEnd) throw new Error('onEnd broke')
  },
  async forceFlush() {},
  async shutdown() {},
}

withSpanProcessor(processor)

async function runWith(hook: 'onStart' | 'onEnd'): Promise<{ end: unknown; warnings: Error[] }> {
  throwing[hook] = true
  const warnings: Error[] = []
  try {
    const weave = await Weave.open({ db: join(tempDir(), 'w.db'), durability: 'memory', threads, libraries: { faultwork }, ioLibs: false, dumps: false, onWarning: (w) => warnings.push(w) })
    try {
      const id = weave.spawn('echoer')
      const end = await weave.join(id)
      // The end is committed (the commit's span ends after its COMMIT, before its callbacks).
      expect(weave.journal.thread(id)!.status).toBe('done')
      return { end, warnings }
    } finally {
      await weave.close()
    }
  } finally {
    throwing[hook] = false
  }
}

describe('an OpenTelemetry SDK that throws', () => {
  it('a span processor whose onEnd throws: the thread runs to its end, and the weave warns once', async () => {
    const { end, warnings } = await runWith('onEnd')
    expect(end).toMatchObject({ status: 'done', result: [1, 2, 'note'] })
    expect(warnings.map((w) => (w as { code?: string }).code)).toEqual(['RAIMENT_TELEMETRY_FAILED'])
    expect(warnings[0]!.message).toContain('onEnd broke')
  })

  it('a span processor whose onStart throws: weave.spawn does not throw, the thread runs to its end, and the weave warns once', async () => {
    const { end, warnings } = await runWith('onStart')
    expect(end).toMatchObject({ status: 'done', result: [1, 2, 'note'] })
    expect(warnings.map((w) => (w as { code?: string }).code)).toEqual(['RAIMENT_TELEMETRY_FAILED'])
    expect(warnings[0]!.message).toContain('onStart broke')
  })
})

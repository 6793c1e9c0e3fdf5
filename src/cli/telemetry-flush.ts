/** `raiment start`'s last step: what an OpenTelemetry SDK still buffers goes out, or is given up on. */
import { weaveLog } from './weave-log.js'

/**
 * What an OpenTelemetry SDK still buffers (a BatchSpanProcessor's spans, a metric reader's last
 * metrics) is flushed as the weave closes, for at most FLUSH_MS: a stuck exporter cannot hang the
 * exit. When it gives up, the export still in flight may hold the process (its socket, the SDK's
 * own timeout): the process exits anyway FLUSH_MS later, with its exit status, if nothing else
 * has ended it by then (the timer does not hold it).
 */
export async function flushOtel(): Promise<void> {
  const { flushTelemetry, FLUSH_MS } = await import('../otel/index.js')
  if (await flushTelemetry()) return
  weaveLog.warn(`OpenTelemetry: the SDK did not flush its spans and metrics within ${FLUSH_MS} ms; what it had not exported is lost`, { event: 'warning' })
  setTimeout(() => process.exit(), FLUSH_MS).unref()
}

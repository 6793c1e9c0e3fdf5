/**
 * `raiment ui`: the web UI on 127.0.0.1 (src/ui/), until SIGINT or SIGTERM. It opens the
 * journals read-only (each once now, so a file that is not a journal is refused at the start);
 * only kill and send, with the token it prints, write to them.
 */
import { InvalidArgument } from '../errors.js'
import { Journals } from '../ui/data.js'
import { startUi } from '../ui/server.js'
import type { LiveWeaves } from '../ui/weaves.js'
import { brokerUrl, namespaceOf } from './amqp-commands.js'
import { DEFAULT_DB, note, openReadonly, say } from './common.js'

export interface UiCommandOptions {
  db?: string[]
  amqp?: string
  namespace?: string
  port?: string
  threads: string
  ioLibs: string
}

export async function ui(o: UiCommandOptions): Promise<number> {
  const files = o.db !== undefined && o.db.length > 0 ? [...new Set(o.db)] : [DEFAULT_DB]
  const port = o.port === undefined ? 0 : Number(o.port)
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new InvalidArgument(`--port must be a port number from 0 to 65535 (0: a free one), got '${o.port}'`)
  for (const f of files) openReadonly(f).close()
  const url = brokerUrl(o)
  let weaves: LiveWeaves | null = null
  if (url !== undefined) weaves = await (await import('../ui/weaves.js')).LiveWeaves.open(url, namespaceOf(o), note)
  const server = await startUi({ journals: new Journals(files), port, weaves, project: { threads: o.threads, ioLibs: o.ioLibs } }).catch(async (e: unknown) => {
    await weaves?.close()
    throw e
  })
  say(`raiment ui: ${server.url}`)
  say(`token: ${server.token}`)
  note(`reading ${files.join(', ')} (read-only)${weaves ? ` and the live weaves of namespace '${weaves.namespace}'` : ''}; kill and send need the token (or open ${server.url}#token=${server.token}); Ctrl-C stops`)
  await new Promise<void>((resolve) => {
    const stop = (): void => {
      process.off('SIGINT', stop)
      process.off('SIGTERM', stop)
      resolve()
    }
    process.on('SIGINT', stop)
    process.on('SIGTERM', stop)
  })
  await server.close()
  await weaves?.close()
  return 0
}

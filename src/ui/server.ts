/**
 * The UI's web server (hono on node:http), on 127.0.0.1 only.
 *
 * Invariants:
 * - Nothing mutates without the token: every POST must carry it (header `x-raiment-token`), and
 *   the only POSTs are kill and send, which go through the CLI's own `killThread` and
 *   `sendMessage` (so a running weave acts on them as on `raiment kill` and `raiment send`).
 *   The one other write is the question a running thread's page asks the weave running on its
 *   journal, as `raiment show` asks it: what the thread waits for (src/ui/thread-waits.ts); with
 *   no weave there, nothing is asked.
 * - Requests whose Host is not this server's loopback address are refused (a page of another
 *   site that rebinds a name to 127.0.0.1 reads nothing).
 * - Journals are read as src/ui/data.ts says: read-only, for one request at a time.
 */
import { serve, type ServerType } from '@hono/node-server'
import { Hono, type Context } from 'hono'
import { streamSSE } from 'hono/streaming'
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describeError } from '../cli/common.js'
import { parseMessage, sendMessage } from '../cli/messages.js'
import { killThread } from '../cli/weave-commands.js'
import { dumpText, makeDump } from '../dump.js'
import { withProjectClasses } from '../project-classes.js'
import { InvalidArgument, RaimentError } from '../errors.js'
import type { ThreadStatus } from '../journal.js'
import { deadLetters, journalSummaries, Journals, STATUSES, threadPage, threadsById, threadTypes, type ThreadFilter } from './data.js'
import { threadDetail } from './thread-data.js'
import { ThreadWaits } from './thread-waits.js'
import { deadLettersPage, IMPORT_MAP, notFound, page, threadsPage, weavesPage, type Tab } from './pages.js'
import { Html, raw } from './html.js'
import { dumpFileName, threadPage as renderThread } from './thread-page.js'
import type { LiveWeaves } from './weaves.js'

export interface UiOptions {
  journals: Journals
  /** 0: a free port. */
  port: number
  weaves?: LiveWeaves | null
  /** Defaults to a random one. */
  token?: string
  /** Where the project's thread types and libraries are (default `threads`, `io-libs`): a dump of a value of a class they register needs them. */
  project?: { threads: string; ioLibs: string }
}

export interface UiServer {
  url: string
  port: number
  token: string
  close(): Promise<void>
}

const PAGE_SIZE = 50
/** How often the journals are looked at for changes (the live pages update within this). */
const WATCH_MS = 250

/** The client's files: ours (src/ui/assets), and preact, its hooks and htm from their packages. */
function assets(): Map<string, { file: string; type: string }> {
  const here = dirname(fileURLToPath(import.meta.url))
  // From the sources (src/ui) or the build (dist/src/ui): the assets ship in src/ui/assets.
  const own = [join(here, 'assets'), join(here, '..', '..', '..', 'src', 'ui', 'assets')].find((d) => {
    try {
      readFileSync(join(d, 'app.js'))
      return true
    } catch {
      return false
    }
  })!
  const require = createRequire(import.meta.url)
  // The package's directory: up from its entry point to the package.json that names it.
  const pkg = (name: string): string => {
    let dir = dirname(require.resolve(name))
    while (!isPackage(dir, name)) {
      if (dirname(dir) === dir) throw new Error(`cannot find the directory of package ${name}`)
      dir = dirname(dir)
    }
    return dir
  }
  const js = 'text/javascript; charset=utf-8'
  return new Map([
    ['app.js', { file: join(own, 'app.js'), type: js }],
    ['ui.css', { file: join(own, 'ui.css'), type: 'text/css; charset=utf-8' }],
    ['preact.mjs', { file: join(pkg('preact'), 'dist', 'preact.mjs'), type: js }],
    ['hooks.mjs', { file: join(pkg('preact'), 'hooks', 'dist', 'hooks.mjs'), type: js }],
    ['htm.mjs', { file: join(pkg('htm'), 'dist', 'htm.mjs'), type: js }],
  ])
}

function isPackage(dir: string, name: string): boolean {
  try {
    return (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string }).name === name
  } catch {
    return false
  }
}

function sameToken(given: string | undefined, token: string): boolean {
  if (given === undefined) return false
  const a = Buffer.from(given)
  const b = Buffer.from(token)
  return a.length === b.length && timingSafeEqual(a, b)
}

/** Starts the UI; resolves once it listens. */
export async function startUi(o: UiOptions): Promise<UiServer> {
  const { journals } = o
  const token = o.token ?? randomBytes(18).toString('base64url')
  const files = assets()
  const mapHash = createHash('sha256').update(IMPORT_MAP).digest('base64')
  const csp = `default-src 'self'; script-src 'self' 'sha256-${mapHash}'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; form-action 'self'`
  let port = 0
  const app = new Hono()

  app.use('*', async (c, next) => {
    const host = c.req.header('host') ?? ''
    if (host !== `127.0.0.1:${port}` && host !== `localhost:${port}`) return c.text(`refused: Host ${host} is not this server (127.0.0.1:${port})`, 403)
    await next()
    c.header('content-security-policy', csp)
    c.header('x-content-type-options', 'nosniff')
    c.header('referrer-policy', 'no-referrer')
  })

  app.onError((e, c) => {
    const { code, message } = describeError(e)
    if (process.env['RAIMENT_DEBUG'] === '1') console.error(e)
    return c.html(page('Error', 'threads', notFound(`${code}: ${message}`), { fragment: c.req.query('fragment') === '1' }), 500)
  })

  const html = (c: Context, title: string, tab: Tab, render: () => Html | { top: Html; main: Html }, status: 200 | 404 = 200) => {
    const fragment = c.req.query('fragment') === '1'
    try {
      const r = render()
      return r instanceof Html ? c.html(page(title, tab, r, { fragment }), status) : c.html(page(title, tab, r.main, { fragment, top: r.top }), status)
    } catch (e) {
      const { code, message } = describeError(e)
      return c.html(page('Error', tab, notFound(`${code}: ${message}`), { fragment }), 500)
    }
  }

  app.get('/', (c) => {
    const q = c.req.query()
    const status = STATUSES.includes(q['status'] as ThreadStatus) ? (q['status'] as ThreadStatus) : undefined
    const filter: ThreadFilter & { id?: string } = {
      ...(status ? { status } : {}),
      ...(q['type'] ? { type: q['type'] } : {}),
      ...(q['name'] ? { name: q['name'] } : {}),
      ...(q['id'] ? { id: q['id'].trim() } : {}),
    }
    if (filter.id && c.req.query('fragment') !== '1' && journals.find(filter.id) >= 0) return c.redirect(`/thread?id=${encodeURIComponent(filter.id)}`)
    const query = new URLSearchParams(Object.entries(filter).filter(([, v]) => v) as Array<[string, string]>).toString()
    const types = threadTypes(journals)
    return html(c, 'Threads', 'threads', () => {
      const byId = filter.id ? threadsById(journals, filter.id, PAGE_SIZE) : null
      return threadsPage({
        filter,
        types,
        query,
        ...(byId ? { page: { rows: byId.rows, next: null }, byId: { cut: byId.cut } } : { page: threadPage(journals, filter, q['after'], PAGE_SIZE) }),
      })
    })
  })

  const waits = new ThreadWaits()
  app.get('/thread', async (c) => {
    const id = c.req.query('id') ?? ''
    const from = Number(c.req.query('from') ?? 0)
    const d = threadDetail(journals, id, Number.isSafeInteger(from) && from > 0 ? from : 0)
    if (d === null) return html(c, 'Not found', 'thread', () => notFound(`No thread ${id} in these journals.`), 404)
    // Running in memory: what it waits for, asked of the weave running it as `raiment show` asks.
    d.waiting = await waits.of(d)
    const fragment = c.req.query('fragment') === '1'
    const aside = `<aside id="actions" data-thread="${escapeAttr(d.thread.id)}"></aside>`
    return c.html(page(d.thread.id, 'thread', renderThread(d), { fragment, top: raw(aside) }))
  })

  app.get('/dump', async (c) => {
    const id = c.req.query('id') ?? ''
    const i = journals.find(id)
    if (i < 0) return c.text(`no thread ${id}`, 404)
    // A value of a class the project registers: its modules, where the UI runs, register it.
    const text = await withProjectClasses(() => journals.read(i, (j) => dumpText(makeDump(j, id))), `the record of ${id}`, o.project?.threads ?? 'threads', o.project?.ioLibs ?? 'io-libs')
    c.header('content-disposition', `attachment; filename="${dumpFileName(id)}"`)
    return c.body(text, 200, { 'content-type': 'application/json; charset=utf-8' })
  })

  app.get('/weaves', (c) => {
    const w = o.weaves ?? null
    return html(c, 'Weaves', 'weaves', () => weavesPage(journalSummaries(journals), w === null ? null : w.live(), w === null ? null : (w.problem ?? `namespace '${w.namespace}'`)))
  })

  app.get('/dead-letters', (c) => html(c, 'Dead letters', 'dead-letters', () => deadLettersPage(deadLetters(journals, 200), 200)))

  app.get('/favicon.ico', (c) => c.body(null, 204))

  app.get('/assets/:name', (c) => {
    const a = files.get(c.req.param('name'))
    if (a === undefined) return c.text('not found', 404)
    return c.body(readFileSync(a.file), 200, { 'content-type': a.type, 'cache-control': 'no-cache' })
  })

  // Server-sent events: `change` whenever a journal changed, `weaves` whenever a heartbeat of the
  // broker's weaves was heard (only the Weaves page follows those).
  const listeners = new Set<(event: 'change' | 'weaves') => void>()
  let lastJournals = journals.signature()
  let lastWeaves = o.weaves?.signature() ?? ''
  const watch = setInterval(() => {
    const j = journals.signature()
    const w = o.weaves?.signature() ?? ''
    const events: Array<'change' | 'weaves'> = []
    if (j !== lastJournals) events.push('change')
    if (w !== lastWeaves) events.push('weaves')
    lastJournals = j
    lastWeaves = w
    for (const e of events) for (const l of listeners) l(e)
  }, WATCH_MS)
  watch.unref()

  app.get('/events', (c) =>
    streamSSE(c, async (stream) => {
      let wake: (() => void) | null = null
      const pending = new Set<'change' | 'weaves'>()
      const l = (event: 'change' | 'weaves'): void => {
        pending.add(event)
        wake?.()
      }
      listeners.add(l)
      let open = true
      stream.onAbort(() => {
        open = false
        listeners.delete(l)
        wake?.()
      })
      await stream.writeSSE({ event: 'hello', data: '' })
      while (open) {
        // A comment every 15 s keeps proxies and the browser from closing an idle stream.
        if (pending.size === 0) {
          await new Promise<void>((r) => {
            wake = r
            setTimeout(r, 15_000).unref()
          })
          wake = null
        }
        if (!open) break
        if (pending.size === 0) await stream.write(': idle\n\n')
        for (const event of [...pending]) {
          pending.delete(event)
          await stream.writeSSE({ event, data: String(Date.now()) })
        }
      }
      listeners.delete(l)
    }),
  )

  const guarded = async (c: Context, act: (body: Record<string, unknown>) => Promise<unknown>) => {
    if (!sameToken(c.req.header('x-raiment-token'), token)) {
      return c.json({ error: { code: 'RAIMENT_UI_TOKEN', message: 'refused: this action needs the token that raiment ui printed when it started' } }, 403)
    }
    let body: unknown
    try {
      body = await c.req.json<unknown>()
    } catch {
      body = undefined
    }
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      return c.json({ error: { code: 'RAIMENT_USAGE', message: 'the body must be a JSON object, e.g. {"id":"w/1"}' } }, 400)
    }
    try {
      return c.json(await act(body as Record<string, unknown>))
    } catch (e) {
      return c.json({ error: describeError(e) }, 400)
    }
  }

  const journalOf = (id: unknown): string => {
    if (typeof id !== 'string' || id === '') throw new InvalidArgument(`a thread id is needed, got ${JSON.stringify(id)}`)
    const i = journals.find(id)
    if (i < 0) throw new InvalidArgument(`no thread ${id} in these journals`)
    return journals.files[i]!
  }

  app.post('/api/kill', (c) => guarded(c, async (b) => killThread(journalOf(b['id']), b['id'] as string)))
  app.post('/api/send', (c) =>
    guarded(c, async (b) => {
      const to = b['to']
      const file = journalOf(to)
      const text = b['message']
      if (typeof text !== 'string') throw new InvalidArgument('the message must be JSON text, e.g. {"hello":"world"}')
      // As `raiment send --key`: once per receiver and key (src/send-keys.ts); empty is none.
      const key = b['key'] ?? ''
      if (typeof key !== 'string') throw new InvalidArgument(`the key must be text, e.g. "order-42" (or left out: no key), got ${JSON.stringify(key)}`)
      return sendMessage(file, to as string, parseMessage(text, to as string), undefined, key === '' ? undefined : key)
    }),
  )

  const server: ServerType = await new Promise((resolve, reject) => {
    const s = serve({ fetch: app.fetch, port: o.port, hostname: '127.0.0.1' }, (info) => {
      port = info.port
      resolve(s)
    })
    s.once('error', (e: NodeJS.ErrnoException) => {
      clearInterval(watch)
      reject(e.code === 'EADDRINUSE' ? new RaimentError('RAIMENT_PORT_IN_USE', `port ${o.port} on 127.0.0.1 is in use; pass another --port, or leave --port out to take a free one`) : e)
    })
  })
  return {
    url: `http://127.0.0.1:${port}/`,
    port,
    token,
    close: () =>
      new Promise<void>((resolve) => {
        clearInterval(watch)
        listeners.clear()
        journals.close()
        ;(server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.()
        server.close(() => resolve())
      }),
  }
}

function escapeAttr(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
}

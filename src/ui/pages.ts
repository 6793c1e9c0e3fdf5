/**
 * The UI's pages as server-rendered HTML: the layout, the threads table, the weaves and the dead
 * letters (the thread page is in thread-page.ts). Every value from a journal is escaped (html.ts).
 *
 * The part of a page that changes as the journals do is `<main id="live">`: the client fetches
 * the page again with `?fragment=1` and swaps it in when the server says a journal changed.
 */
import { isoTime } from '../cli/common.js'
import { jsonValue } from '../cli/records.js'
import type { DeadLetterItem, JournalSummary, ThreadFilter, ThreadItem, ThreadPage } from './data.js'
import { STATUSES } from './data.js'
import { h, raw, type Html } from './html.js'
import type { LiveWeave } from './weaves.js'
import { clip, Cut, sizeText } from './values.js'

/** The import map of the client (its hash goes into the Content-Security-Policy). */
export const IMPORT_MAP = JSON.stringify({
  imports: { preact: '/assets/preact.mjs', 'preact/hooks': '/assets/hooks.mjs', htm: '/assets/htm.mjs' },
})

export type Tab = 'threads' | 'weaves' | 'dead-letters' | 'thread'

/** A whole page; with `fragment`, only what goes into `<main id="live">`. */
export function page(title: string, tab: Tab, main: Html, opts: { fragment?: boolean; top?: Html } = {}): string {
  if (opts.fragment) return main.text
  const link = (t: Tab, href: string, label: string): Html => h`<a href="${href}" class="${tab === t ? 'on' : ''}">${label}</a>`
  return h`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · Raiment</title>
<link rel="stylesheet" href="/assets/ui.css">
<script type="importmap">${raw(IMPORT_MAP)}</script>
<script type="module" src="/assets/app.js"></script>
</head>
<body>
<header>
  <a class="brand" href="/">Raiment</a>
  <nav>${link('threads', '/', 'Threads')}${link('weaves', '/weaves', 'Weaves')}${link('dead-letters', '/dead-letters', 'Dead letters')}</nav>
  <span id="status" class="live" title="updates as the journals change">live</span>
  <span id="token"></span>
</header>
${opts.top ?? ''}
<main id="live">${main}</main>
</body>
</html>`.text
}

/**
 * `1.2 s`, `340 ms`, `3 min 4 s`, `2 h 5 min`. Each unit is chosen by the value as rounded for
 * it, so a value just under the next unit is shown in that unit (59.96 s is `1 min 0 s`, never
 * `60.0 s` or `59 min 60 s`).
 */
export function duration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '-'
  if (ms < 0.995) return `${ms.toFixed(2)} ms`
  if (ms < 9.95) return `${ms.toFixed(1)} ms`
  if (ms < 999.5) return `${Math.round(ms)} ms`
  const s = ms / 1000
  if (s < 9.995) return `${s.toFixed(2)} s`
  if (s < 59.95) return `${s.toFixed(1)} s`
  const m = Math.floor(Math.round(s) / 60)
  if (m < 60) return `${m} min ${Math.round(s) % 60} s`
  const minutes = Math.round(s / 60)
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`
}

export const statusBadge = (s: string, label = s): Html => h`<span class="badge ${s}">${label}</span>`

/** A thread's status badge in a table: passivated and waiting for its type are kinds of running. */
export const rowBadge = (r: { status: string; passivated?: true; waitingForType?: true; waitingForCode?: true; oldCode?: true }): Html =>
  r.passivated ? statusBadge('passivated') : r.waitingForType ? statusBadge('waiting', 'waiting for type') : r.waitingForCode ? statusBadge('waiting', 'waiting for code') : r.oldCode ? statusBadge('running', 'running (old code)') : statusBadge(r.status)

/** A thread id as a link to its page. */
export const threadLink = (id: string): Html => h`<a class="id" href="/thread?id=${encodeURIComponent(id)}">${id}</a>`

/** A decoded value as indented JSON (see records.ts `jsonValue`); a `Cut`, the start of its text. */
export function json(v: unknown, indent = 2): string {
  if (v === undefined) return 'undefined'
  if (v instanceof Cut) return v.head
  const text = JSON.stringify(jsonValue(v), null, indent)
  return text === undefined ? 'undefined' : text
}

/**
 * A value as indented JSON in a `<pre>`, cut at VALUE_MAX characters with a note of how much is
 * left out (src/ui/values.ts).
 */
export function valueBlock(v: unknown): Html {
  if (v instanceof Cut) return h`<pre class="value">${v.head}…</pre>${moreNote(v.length - v.head.length, ' (shown as recorded)')}`
  const { text, more } = clip(json(v))
  return h`<pre class="value">${text}</pre>${more > 0 ? moreNote(more) : ''}`
}

/** "… 488 KB more: the dump has it whole". */
export function moreNote(more: number, how = ''): Html {
  return h`<p class="note cut">… ${sizeText(more)} more${how}: the dump has it whole</p>`
}

export function shortJson(v: unknown, max = 80): string {
  const t = json(v, 0)
  return t.length > max ? t.slice(0, max - 1) + '…' : t
}

/** When a thread started, and how long it ran (or has been running). */
function timing(t: { created: number; ended: number | null }, now: number): { started: string; took: string } {
  return { started: isoTime(t.created).replace('T', ' ').replace('Z', ''), took: duration((t.ended ?? now) - t.created) }
}

export interface ThreadsView {
  filter: ThreadFilter & { id?: string }
  page: ThreadPage
  types: string[]
  /** The query string of this page without its cursor (for the next link). */
  query: string
  /** When searching by id: the threads found, no paging; `cut`: there are more than the page. */
  byId?: { cut: boolean }
}

export function threadsPage(v: ThreadsView, now = Date.now()): { top: Html; main: Html } {
  const f = v.filter
  const rows = v.page.rows
  const option = (value: string, label: string, selected: boolean): Html => h`<option value="${value}" ${selected ? h`selected` : ''}>${label}</option>`
  const filters = h`<form class="filters" method="get" action="/">
  <label>Status <select name="status" data-autosubmit>${option('', 'any', !f.status)}${STATUSES.map((s) => option(s, s, f.status === s))}</select></label>
  <label>Type <select name="type" data-autosubmit>${option('', 'any', !f.type)}${v.types.map((t) => option(t, t, f.type === t))}</select></label>
  <label>Name <input name="name" value="${f.name ?? ''}" placeholder="registered name" size="14"></label>
  <label>Id <input name="id" value="${f.id ?? ''}" placeholder="thread id or its start" size="22"></label>
  <button type="submit">Filter</button>
  ${f.status || f.type || f.name || f.id ? h`<a class="clear" href="/">clear</a>` : ''}
</form>`
  const body =
    rows.length === 0
      ? h`<p class="empty">No threads ${f.status || f.type || f.name || f.id ? 'match these filters' : 'in these journals yet'}.</p>`
      : h`<table class="threads">
<thead><tr><th>Id</th><th>Type</th><th>Name</th><th>Status</th><th>Weave</th><th>Started (UTC)</th><th class="num">Duration</th><th class="num">Calls</th></tr></thead>
<tbody>${rows.map((r) => threadRow(r, now))}</tbody>
</table>`
  const next = v.page.next === null ? '' : h`<a class="next" rel="next" href="/?${v.query ? v.query + '&' : ''}after=${v.page.next}">Older threads →</a>`
  const first = v.query.length > 0 || v.page.rows.length > 0 ? h`<a href="/${v.query ? '?' + v.query : ''}">Newest</a>` : ''
  return { top: h`<div class="top"><h1>Threads</h1>${filters}</div>`, main: h`${body}<nav class="pager">${first}${next}${v.byId ? h`<span class="note">threads whose id starts with this, in id order${v.byId.cut ? h`; the first ${rows.length} only: type more of the id` : ''}</span>` : ''}</nav>` }
}

function threadRow(r: ThreadItem, now: number): Html {
  const t = timing(r, now)
  return h`<tr data-id="${r.id}" class="${r.status}">
<td>${threadLink(r.id)}</td><td>${r.type}</td><td>${r.names.join(', ')}</td><td>${rowBadge(r)}</td><td>${r.weave}</td>
<td class="time">${t.started}</td><td class="num">${t.took}</td><td class="num">${r.calls}</td></tr>`
}

export function weavesPage(journals: JournalSummary[], live: LiveWeave[] | null, brokerNote: string | null, now = Date.now()): Html {
  // How many of a live weave's threads are passivated: as its heartbeat says, or (a weave of an
  // earlier build) as its journal shown here does.
  const passivatedOf = (w: LiveWeave): Html | '' => {
    const p = w.passivated ?? journals.find((j) => j.weave === w.id)?.passivated ?? 0
    return p > 0 ? h` <span class="note">+ ${p} passivated</span>` : ''
  }
  const liveSection =
    live === null
      ? h`<p class="note">Start the UI with <code>--amqp URL</code> to see the live weaves of a broker namespace, their heartbeats and threads.</p>`
      : live.length === 0
        ? h`<p class="empty">No live weave in the namespace${brokerNote ? h` (${brokerNote})` : ''}.</p>`
        : h`<table><thead><tr><th>Weave</th><th>Host</th><th class="num">Pid</th><th class="num">Threads in memory</th><th class="num">Outbox</th><th>Last heartbeat</th><th>Replicated</th><th>Journals</th></tr></thead><tbody>
${live.map(
  (w) => h`<tr><td>${w.id}</td><td>${w.host}</td><td class="num">${w.pid}</td><td class="num">${w.threads}${passivatedOf(w)}</td><td class="num">${w.outbox ?? '-'}</td><td>${duration(now - w.at)} ago (every ${w.intervalMs} ms)</td>
<td>${w.replication ? `epoch ${w.replication.epoch}, lag ${w.replication.lag.entries} entries` : 'no'}</td><td>${w.hostedBy ? `hosted by ${w.hostedBy}` : (w.journals ?? [w.id]).join(', ')}</td></tr>`,
)}</tbody></table>
<p class="note">Threads in memory: what its heartbeat counts. Passivated threads (out of memory, waiting: they wake when what they wait for comes) are not among them: they are the + N beside it; its journal, below, counts them as running.</p>${brokerNote ? h`<p class="note">${brokerNote}</p>` : ''}`
  const journalRows = journals.map(
    (j) => h`<tr><td>${j.weave}</td><td><code>${j.file}</code></td><td>${j.running ? h`<span class="badge running">running</span> ${j.owner ? `pid ${j.owner.pid} on ${j.owner.host}` : ''}` : h`<span class="badge done">stopped</span>`}</td>
<td>${STATUSES.filter((s) => j.statuses[s]).map((s) => h`<a href="/?status=${s}">${statusBadge(s)} ${j.statuses[s]}</a> `)}${j.passivated > 0 ? h`<span class="note">(${j.passivated} of them passivated)</span>` : ''}</td>
<td class="num">${j.outbox}</td><td class="num">${j.inbox}</td><td class="num"><a href="/dead-letters">${j.deadLetters}</a></td></tr>`,
  )
  return h`<h1>Weaves</h1>
<h2>Live weaves</h2>${liveSection}
<h2>Journals</h2>
<table><thead><tr><th>Weave</th><th>Journal</th><th>Weave process</th><th>Threads</th><th class="num">Outbox</th><th class="num">Inboxes</th><th class="num">Dead letters</th></tr></thead><tbody>${journalRows}</tbody></table>
<p class="note">Outbox: messages and spawns for other weaves not yet confirmed by the broker. Inboxes: messages waiting to be received.</p>`
}

export function deadLettersPage(rows: DeadLetterItem[], limit: number): Html {
  if (rows.length === 0) return h`<h1>Dead letters</h1><p class="empty">No dead letters: every message was delivered.</p>`
  return h`<h1>Dead letters</h1>
<table><thead><tr><th class="num">N</th><th>At (UTC)</th><th>Weave</th><th>Sender</th><th>Recipient</th><th>Reason</th><th>Message</th></tr></thead><tbody>
${rows.map(
  (d) => h`<tr><td class="num">${d.n}</td><td class="time">${isoTime(d.at).replace('T', ' ').replace('Z', '')}</td><td>${d.weave}</td><td>${d.sender === null ? '(outside)' : threadLink(d.sender)}</td>
<td>${d.recipient.includes('/') ? threadLink(d.recipient) : d.recipient}</td><td>${d.reason}</td><td><code>${shortJson(d.message, 120)}</code></td></tr>`,
)}</tbody></table>
${rows.length >= limit ? h`<p class="note">The newest ${limit}.</p>` : ''}
<p class="note">To send one again or drop it: <code>raiment dead-letters --resend N</code> (<code>--to ID_OR_NAME</code>) or <code>--drop N</code>, with <code>--db</code> the journal of its weave.</p>`
}

export function notFound(what: string): Html {
  return h`<h1>Not found</h1><p class="empty">${what}</p><p><a href="/">All threads</a></p>`
}

/**
 * A thread's page: its record (params, result or error, dump and the command that replays it),
 * its journal as a timeline (a page of entries at a time), its children as a tree, its
 * conversation as a sequence diagram, its mailbox, its links and monitors.
 */
import { errorText, isoTime } from '../cli/common.js'
import type { ErrorRecord } from '../error-records.js'
import { INBOX_COUNTED, type Attempt, type CallItem, type MessageItem, type ThreadDetail } from './thread-data.js'
import { h, type Html } from './html.js'
import { duration, moreNote, rowBadge, shortJson, statusBadge, threadLink, valueBlock } from './pages.js'
import { clip, Cut } from './values.js'
import { waitText } from '../passivation/listing.js'
import { waitingText } from '../cli/show-waits.js'
import { attemptErrorText } from '../retry/view.js'

/** The file name a thread's dump downloads as. */
export function dumpFileName(id: string): string {
  return `${id.replace(/[^A-Za-z0-9_.-]+/g, '-')}.json`
}

const time = (ms: number): string => isoTime(ms).replace('T', ' ').replace('Z', '')

function errorBlock(e: ErrorRecord | Cut | undefined): Html {
  if (e === undefined || e === null) return h`<pre class="error">(no error recorded)</pre>`
  if (e instanceof Cut) return h`<div class="error">${valueBlock(e)}</div>`
  const fields = e.fields && Object.keys(e.fields).length > 0 ? h`<div class="fields">fields <code>${shortJson(e.fields, 400)}</code></div>` : ''
  const stack = typeof e.stack === 'string' ? clip(e.stack) : null
  const stackBlock = stack === null ? '' : h`<details class="stack"><summary>stack</summary><pre>${stack.text}</pre>${stack.more > 0 ? moreNote(stack.more) : ''}</details>`
  const cause = e.cause === undefined ? '' : h`<div class="cause">cause: ${'name' in e.cause ? clip(errorText(e.cause), 400).text : shortJson(e.cause.value, 200)}</div>`
  const message = clip(errorText(e))
  return h`<div class="error"><strong>${message.text}</strong>${message.more > 0 ? moreNote(message.more) : ''}${fields}${cause}${stackBlock}</div>`
}

export function threadPage(d: ThreadDetail, now = Date.now()): Html {
  const t = d.thread
  const took = duration((t.ended ?? now) - t.created)
  const file = dumpFileName(t.id)
  const facts = h`<dl class="facts">
<dt>Type</dt><dd>${t.type}</dd>
<dt>Status</dt><dd>${statusBadge(t.status)}${d.waiting ? h` — ${waitingText(d.waiting, (ms) => `${time(ms)} UTC`)}` : ''}${t.movedTo ? h` to weave ${t.movedTo}` : ''}${t.passivated ? h` — passivated: out of memory since ${time(t.passivated.since)} UTC, waiting for ${waitText(t.passivated, (ms) => `${time(ms)} UTC`)}` : ''}${t.waitingForType !== undefined ? h` — waiting for its type since ${time(t.waitingForType)} UTC: the last weave on this journal could not run '${t.type}' (its RAIMENT_THREADS_WAIT_FOR_TYPE warning says why); a reload or a start that loads it resumes it` : ''}${t.waitingForCode !== undefined ? h` — waiting since ${time(t.waitingForCode.since)} UTC for code that replays its record: it ${t.waitingForCode.diverges} (on-divergence wait; nothing recorded). Fix the code and reload it or restart; or fork it, kill it, or restart with --on-divergence continue` : ''}${t.oldCode !== undefined ? h` — on old code: a reload kept it on the code it started with (${t.oldCode}); a restart or a crash resumes it under the file on disk, where it diverges` : ''}</dd>
<dt>Weave</dt><dd>${d.weave} <span class="note">(${d.journal})</span></dd>
<dt>Started</dt><dd class="time">${time(t.created)} UTC</dd>
<dt>${t.ended === null ? 'Running for' : 'Duration'}</dt><dd>${took}${t.ended === null ? '' : h` <span class="note">ended ${time(t.ended)}</span>`}</dd>
<dt>Calls</dt><dd>${d.total}${t.continued ? h` <span class="note">of its current run: it continued as new ${t.continued} time${t.continued === 1 ? '' : 's'}</span>` : ''}</dd>
${t.parent ? h`<dt>Parent</dt><dd>${threadLink(t.parent)}</dd>` : ''}
${d.names.length ? h`<dt>Names</dt><dd>${d.names.join(', ')}</dd>` : ''}
</dl>`
  const outcome =
    t.status === 'done'
      ? h`<section><h2>Result</h2>${valueBlock(t.result)}</section>`
      : t.status === 'failed'
        ? h`<section><h2>Error</h2>${errorBlock(t.error)}</section>`
        : ''
  const dump = h`<section class="dump"><h2>Dump</h2>
<p><a class="button" id="dump" href="/dump?id=${encodeURIComponent(t.id)}" download="${file}">Download ${file}</a>
its spawn record and every journaled call; replay it, from the project's directory, with no I/O library called:</p>
<pre class="command"><code>npx raiment replay ${file}</code></pre></section>`
  return h`<h1 class="thread-title" data-status="${t.status}">${threadLink(t.id)} ${statusBadge(t.status)}</h1>
<div class="cols">${facts}<section><h2>Params</h2>${valueBlock(t.params)}</section></div>
${outcome}${dump}
${unanswered(d)}${inFlight(d)}
${timeline(d)}
${sequence(t.id, d.messages, d.messagesCut, d.extent > d.pageSize ? `in calls ${d.from}–${d.from + d.calls.length - 1}` : '') ?? ''}
${children(d) ?? ''}
${mailbox(d) ?? ''}
${watches(d) ?? ''}
${none(d)}`
}

/** One line for what the thread does not have (messages, children, mailbox, links). */
function none(d: ThreadDetail): Html {
  const missing = [
    d.messages.length === 0 ? (d.extent > d.pageSize ? 'no messages in these calls' : 'no messages sent or received') : '',
    d.children.length === 0 ? 'no children' : '',
    d.inbox.length === 0 ? 'nothing waits in its mailbox' : '',
    d.watches.length === 0 ? 'no links or monitors' : '',
  ].filter(Boolean)
  if (missing.length === 0) return h``
  const text = missing.join(' · ')
  return h`<section class="none"><p class="empty">${text[0]!.toUpperCase() + text.slice(1)}.</p></section>`
}

function timeline(d: ThreadDetail): Html {
  const calls = d.calls
  const pager = d.extent > d.pageSize ? pages(d) : ''
  if (calls.length === 0) return h`<section id="timeline"><h2>Timeline</h2><p class="empty">${d.unanswered.length > 0 ? 'No call has an outcome yet (its failed attempts are above).' : 'No calls recorded.'}</p></section>`
  const t0 = Math.min(...calls.map((c) => c.started))
  const t1 = Math.max(...calls.map((c) => c.started + c.duration))
  const span = Math.max(t1 - t0, 1)
  const row = (c: CallItem): Html => {
    const left = ((c.started - t0) / span) * 100
    const width = Math.max((c.duration / span) * 100, 0.4)
    return h`<details class="call ${c.ok ? 'ok' : 'err'}" id="call-${c.seq}" data-key="call-${c.seq}">
<summary><span class="seq">${c.seq}</span><span class="name">${c.call}</span><span class="args">${shortJson(c.args.length === 1 ? c.args[0] : c.args, 60)}</span>
<span class="track"><span class="bar" style="left:${left.toFixed(3)}%;width:${Math.min(width, 100 - left).toFixed(3)}%"></span></span>
<span class="ms">${duration(c.duration)}</span><span class="badge ${c.ok ? 'done' : 'failed'}">${c.ok ? 'ok' : 'error'}</span>${c.attempts ? h`<span class="note retried">after ${c.attempts.length} failed attempt${c.attempts.length === 1 ? '' : 's'}</span>` : ''}</summary>
<div class="call-body">
<div><span class="label">call id</span> <code>${c.callId}</code> <span class="label">ordinal</span> ${c.ord} <span class="label">started</span> ${time(c.started)} UTC</div>
<div class="label">arguments</div>${valueBlock(c.args.length === 1 && c.args[0] instanceof Cut ? c.args[0] : c.args)}
<div class="label">${c.ok ? 'outcome' : 'error'}</div>${c.ok ? valueBlock(c.value) : errorBlock(c.error)}
${c.attempts ? h`<div class="label">failed attempts (retried)</div>${attemptList(c.attempts, true)}` : ''}
</div></details>`
  }
  return h`<section class="timeline" id="timeline"><h2>Timeline <span class="note">calls ${d.from}–${d.from + calls.length - 1} of ${d.total}, in the order they completed; each bar runs from request to outcome (${duration(span)} in all)</span></h2>
${pager}<div class="calls">${calls.map(row)}</div>${pager}</section>`
}

/** A call's failed attempts: when each started, its error, and (`next`) when the next was due. */
function attemptList(attempts: Attempt[], next: boolean): Html {
  return h`<ul class="attempts">${attempts.map(
    (a) => h`<li>attempt ${a.n} <span class="time">${time(a.started)} UTC</span> <code>${a.error instanceof Cut ? a.error.head : clip(attemptErrorText(a.error), 400).text}</code>${next ? h` <span class="note">next at ${time(a.due)} UTC</span>` : ''}</li>`,
  )}</ul>`
}

/**
 * Calls with failed attempts and no outcome: for a running thread, waiting for their next
 * attempt; for one that ended in such a wait, never answered (as `raiment show` says).
 */
function unanswered(d: ThreadDetail): Html {
  if (d.unanswered.length === 0) return h``
  const live = d.thread.status === 'running' || d.thread.status === 'pending'
  const title = live ? h`Retrying <span class="note">calls waiting for their next attempt</span>` : h`Never answered <span class="note">the thread ${d.thread.status} while these calls waited for their next attempt</span>`
  return h`<section class="retrying"><h2>${title}</h2>${d.unanswered.map(
    (u) => h`<div class="call-retrying"><span class="name">${u.call}</span> <span class="label">call id</span> <code>${u.callId}</code>${attemptList(u.attempts, live)}</div>`,
  )}</section>`
}

/** Calls asked of their library with no outcome yet, as the journal says (a slow call, or one whose weave was killed in it). */
function inFlight(d: ThreadDetail): Html {
  if (d.inFlight.length === 0) return h``
  const live = d.thread.status === 'running' || d.thread.status === 'pending'
  const note = live ? 'asked of their library, no outcome yet: a weave that resumes the thread makes them again, with their call ids' : `never answered: the thread ${d.thread.status}`
  return h`<section class="in-flight"><h2>In flight <span class="note">${note}</span></h2>${d.inFlight.map(
    (c) => h`<div class="call-in-flight"><span class="name">${c.call}</span> <code>${shortJson(c.args.length === 1 ? c.args[0] : c.args, 200)}</code> <span class="time">since ${time(c.started)} UTC</span></div>`,
  )}</section>`
}

function pages(d: ThreadDetail): Html {
  const id = encodeURIComponent(d.thread.id)
  const last = Math.floor((d.extent - 1) / d.pageSize) * d.pageSize
  const link = (from: number, label: string, on: boolean): Html => (on ? h`<a href="/thread?id=${id}&from=${from}#timeline">${label}</a>` : h`<span class="off">${label}</span>`)
  return h`<nav class="pager">${link(0, '« first', d.from > 0)} ${link(Math.max(0, d.from - d.pageSize), '‹ earlier', d.from > 0)}
<span>page ${Math.floor(d.from / d.pageSize) + 1} of ${Math.floor((d.extent - 1) / d.pageSize) + 1}</span>
${link(d.from + d.pageSize, 'later ›', d.from + d.pageSize < d.extent)} ${link(last, 'last »', d.from < last)}
<form method="get" action="/thread#timeline"><input type="hidden" name="id" value="${d.thread.id}"><label>from call <input name="from" size="7" value="${d.from}"></label></form></nav>`
}

/** The conversation as a sequence diagram: one lifeline for the thread and each peer. */
function sequence(self: string, messages: MessageItem[], cut: boolean, range: string): Html | null {
  if (messages.length === 0) return null
  const peers: string[] = []
  for (const m of messages) if (!peers.includes(m.peer) && m.peer !== self) peers.push(m.peer)
  const shown = peers.slice(0, 7)
  const lanes = [self, ...shown, ...(peers.length > shown.length ? ['(others)'] : [])]
  const lane = (p: string): number => (p === self ? 0 : shown.includes(p) ? shown.indexOf(p) + 1 : lanes.length - 1)
  const W = 230
  const top = 56
  const step = 30
  const width = lanes.length * W
  const height = top + messages.length * step + 20
  const x = (i: number): number => i * W + W / 2
  const heads = lanes.map((p, i) => {
    const label = p.length > 26 ? '…' + p.slice(-25) : p
    const box = h`<rect x="${x(i) - 86}" y="8" width="172" height="28" rx="6" class="${i === 0 ? 'self' : 'peer'}"/><text x="${x(i)}" y="27" text-anchor="middle">${label}</text>`
    return p.includes('/') && i > 0 ? h`<a href="/thread?id=${encodeURIComponent(p)}"><title>${p}</title>${box}</a>` : h`<g><title>${p}</title>${box}</g>`
  })
  const lines = lanes.map((_p, i) => h`<line x1="${x(i)}" y1="36" x2="${x(i)}" y2="${height - 8}" class="life"/>`)
  const arrows = messages.map((m, k) => {
    const y = top + k * step + 12
    const [a, b] = m.dir === 'sent' ? [0, lane(m.peer)] : [lane(m.peer), 0]
    const x1 = x(a)
    const x2 = x(b)
    const dirn = x2 >= x1 ? 1 : -1
    const label = shortJson(m.message, 30)
    const cls = m.dir === 'sent' ? (m.delivered === false ? 'undelivered' : 'sent') : 'received'
    return h`<g class="msg ${cls}"><title>${m.dir} ${time(m.at)} UTC (call ${m.seq}): ${shortJson(m.message, 400)}</title>
<line x1="${x1}" y1="${y}" x2="${x2 - dirn * 6}" y2="${y}"/><path d="M${x2} ${y} l${-dirn * 8} -4 v8 z"/>
<text x="${(x1 + x2) / 2}" y="${y - 5}" text-anchor="middle">${label}</text></g>`
  })
  return h`<section><h2>Messages <span class="note">${messages.filter((m) => m.dir === 'sent').length} sent, ${messages.filter((m) => m.dir === 'received').length} received${range ? ` ${range}` : ''}${cut ? ' (the first ones only)' : ''}</span></h2>
<div class="seqwrap"><svg class="sequence" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="sequence diagram">${lines}${heads}${arrows}</svg></div></section>`
}

function children(d: ThreadDetail): Html | null {
  if (d.children.length === 0) return null
  return h`<section><h2>Children</h2><ul class="tree">${d.children.map(
    (c) => h`<li style="margin-left:${c.depth * 1.4}rem">${threadLink(c.id)} <span class="type">${c.type}</span> ${rowBadge(c)} <span class="note">${c.calls} calls</span></li>`,
  )}</ul>${d.childrenCut ? h`<p class="note">The first ${d.children.length} only.</p>` : ''}</section>`
}

function mailbox(d: ThreadDetail): Html | null {
  if (d.inbox.length === 0) return null
  const count = d.inboxCount > INBOX_COUNTED ? `over ${INBOX_COUNTED.toLocaleString('en-US')}` : String(d.inboxCount)
  const shown = d.inboxCount > d.inbox.length ? `, the first ${d.inbox.length} shown` : ''
  return h`<section><h2>Mailbox <span class="note">${count} waiting${shown}</span></h2><table><thead><tr><th>#</th><th>From</th><th>Arrived (UTC)</th><th>Message</th></tr></thead><tbody>
${d.inbox.map((m) => h`<tr><td>${m.n}</td><td>${m.sender === null ? '(outside)' : threadLink(m.sender)}</td><td class="time">${time(m.at)}</td><td><code>${shortJson(m.message, 160)}</code></td></tr>`)}</tbody></table></section>`
}

/**
 * Its links (each peer once: a link is stored in both directions), what monitors it, and what it
 * monitors.
 */
function watches(d: ThreadDetail): Html | null {
  if (d.watches.length === 0) return null
  const id = d.thread.id
  const lines = new Map<string, Html>()
  for (const w of d.watches) {
    const peer = w.target === id ? w.watcher : w.target
    if (w.kind === 'link') lines.set(`link ${peer}`, h`<li>linked with ${threadLink(peer)}</li>`)
    else if (w.target === id) lines.set(`by ${w.kind} ${peer}`, h`<li>${w.kind}ed by ${threadLink(peer)}</li>`)
    else lines.set(`${w.kind} ${peer}`, h`<li>${w.kind}s ${threadLink(peer)}</li>`)
  }
  return h`<section><h2>Links and monitors</h2><ul>${[...lines.values()]}</ul></section>`
}

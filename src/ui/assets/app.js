// The UI's light client (no build step): keeps the page live through server-sent events, holds
// the token for actions, and renders the actions of a thread page with preact + htm.
import { h, render } from 'preact'
import { useState } from 'preact/hooks'
import htm from 'htm'

const html = htm.bind(h)
const KEY = 'raiment-ui-token:' + location.port

// A token passed as #token=… is kept, and taken off the address bar.
if (location.hash.startsWith('#token=')) {
  localStorage.setItem(KEY, decodeURIComponent(location.hash.slice('#token='.length)))
  history.replaceState(null, '', location.pathname + location.search)
}
const token = () => localStorage.getItem(KEY) || ''

// Live updates: the server says `change` when a journal changed; the page's <main id="live">
// is fetched again and swapped in, keeping what the reader opened and where they were.
let busy = false
let again = false
export async function refresh() {
  if (busy) {
    again = true
    return
  }
  busy = true
  try {
    const url = new URL(location.href)
    url.searchParams.set('fragment', '1')
    const res = await fetch(url, { headers: { accept: 'text/html' } })
    const text = await res.text()
    const main = document.getElementById('live')
    if (!main) return
    const open = [...main.querySelectorAll('details[open][id]')].map((d) => d.id)
    const x = window.scrollX
    const y = window.scrollY
    main.innerHTML = text
    for (const id of open) document.getElementById(id)?.setAttribute('open', '')
    window.scrollTo(x, y)
    mountActions()
    document.body.dataset.refreshed = String(Date.now())
  } catch {
    // The next change tries again.
  } finally {
    busy = false
    if (again) {
      again = false
      void refresh()
    }
  }
}

const status = document.getElementById('status')
const events = new EventSource('/events')
events.addEventListener('hello', () => {
  status.textContent = 'live'
  status.className = 'live'
})
events.addEventListener('change', () => void refresh())
events.addEventListener('weaves', () => {
  if (location.pathname === '/weaves') void refresh()
})
events.onerror = () => {
  status.textContent = 'offline'
  status.className = 'offline'
}

// Filters take effect as soon as a choice is made.
document.addEventListener('change', (e) => {
  const t = e.target
  if (t instanceof HTMLSelectElement && t.dataset.autosubmit !== undefined) t.form?.submit()
})

function TokenBox() {
  const [has, setHas] = useState(token() !== '')
  const [text, setText] = useState('')
  if (has) {
    return html`<span class="token-set" title="kill and send send it with each request">token ✓ <button class="link" onClick=${() => {
      localStorage.removeItem(KEY)
      setHas(false)
    }}>forget</button></span>`
  }
  return html`<form class="token-form" onSubmit=${(e) => {
    e.preventDefault()
    if (text.trim() === '') return
    localStorage.setItem(KEY, text.trim())
    setHas(true)
  }}><input name="token" type="password" autocomplete="off" placeholder="token (for kill and send)" value=${text} onInput=${(e) => setText(e.target.value)} /><button>Use</button></form>`
}

async function post(path, body) {
  const res = await fetch(path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-raiment-token': token() },
    body: JSON.stringify(body),
  })
  const answer = await res.json()
  if (answer.error) throw new Error(`${answer.error.code}: ${answer.error.message}`)
  return answer
}

function Actions({ id, live }) {
  const [message, setMessage] = useState('')
  const [key, setKey] = useState('')
  const [said, setSaid] = useState(null)
  const [busy, setBusy] = useState(false)
  const act = async (what, fn) => {
    setBusy(true)
    try {
      setSaid({ ok: true, text: await fn() })
    } catch (e) {
      setSaid({ ok: false, text: e.message })
    } finally {
      setBusy(false)
      void refresh()
    }
  }
  const kill = () => {
    if (!confirm(`Kill ${id}? Its pending and later calls fail with ThreadKilled.`)) return
    void act('kill', async () => {
      const r = await post('/api/kill', { id })
      return r.killed ? `killed ${id}` : `${id} had already ended (${r.status})`
    })
  }
  const send = (e) => {
    e.preventDefault()
    void act('send', async () => {
      // As typed, as raiment send --key takes it; empty: no key.
      const k = key
      const r = await post('/api/send', k === '' ? { to: id, message } : { to: id, message, key: k })
      if (r.result.duplicate) return `already sent to ${r.result.to} with key '${k}'${r.result.delivered ? '' : ' (it went to the dead letters then)'}: not sent again`
      return r.result.delivered ? `delivered to ${r.result.to}${r.waits ? ` (${r.waits})` : ''}` : `not delivered: ${r.result.reason}`
    })
  }
  return html`<div class="actions">
    <button class="danger" id="kill" disabled=${busy || !live} onClick=${kill}>Kill</button>
    <form onSubmit=${send}><input id="message" placeholder='message as JSON, e.g. {"hello":"world"}' value=${message} onInput=${(e) => setMessage(e.target.value)} /><input id="send-key" class="key" placeholder="key (optional)" title="a message with a key reaches its thread once per key for 24 hours, however often it is sent (raiment send --key)" value=${key} onInput=${(e) => setKey(e.target.value)} /><button id="send" disabled=${busy || message.trim() === ''}>Send</button></form>
    ${said && html`<output id="said" class=${said.ok ? 'ok' : 'err'}>${said.text}</output>`}
  </div>`
}

function mountActions() {
  const aside = document.getElementById('actions')
  if (!aside) return
  const st = document.querySelector('#live [data-status]')?.getAttribute('data-status')
  const live = st === 'running' || st === 'pending'
  // A thread that has ended takes no kill; once it ends under the reader's eyes, what was said stays.
  if (live || aside.dataset.acted) render(html`<${Actions} id=${aside.dataset.thread} live=${live} />`, aside)
  if (live) aside.dataset.acted = '1'
}

render(html`<${TokenBox} />`, document.getElementById('token'))
mountActions()

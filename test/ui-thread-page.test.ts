/**
 * What a thread's page in `raiment ui` shows (src/ui/thread-page.ts), of threads a real weave ran:
 * values cut at a few KB with a note of how much more the dump holds.
 */
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { thread, Weave, type AnyThreadType } from 'raiment'
import { makeDump } from '../src/dump.js'
import { encodeArgs, encodeValue } from '../src/encoding.js'
import { Journal } from '../src/journal.js'
import { Journals } from '../src/ui/data.js'
import { threadDetail } from '../src/ui/thread-data.js'
import { threadPage } from '../src/ui/thread-page.js'
import { pendingRetryWaits } from '../src/retry/run.js'
import { markKey } from '../src/in-flight.js'
import { startUi } from '../src/ui/server.js'
import { tempDir } from './support/tmp.js'
import { until } from './support/until.js'

declare module 'raiment' {
  interface Libraries {
    big: { blob(kb: number): Promise<string>; fail(kb: number): Promise<never> }
    flaky: { flip(): Promise<string>; down(): Promise<string> }
    uiSignal: { ready(): Promise<void> }
  }
}

const big = {
  async blob(kb: number) {
    return 'x'.repeat(kb * 1024)
  },
  async fail(kb: number): Promise<never> {
    throw new Error('y'.repeat(kb * 1024))
  },
}

/** Calls `blob` `n` times (500 KB each, then 10 KB), and ends with a large result. */
const hoarder = thread({
  uses: ['big'],
  async does(p: { n: number; pad: string }) {
    let got = 0
    for (let i = 0; i < p.n; i++) got += (await this.big.blob(500)).length
    got += (await this.big.blob(10)).length
    await this.big.fail(100).catch(() => {})
    return { got, pad: p.pad.repeat(2) }
  },
})

/** `flip` fails twice, then answers; `down` always fails (503, as a service that is down). */
function flakyLibrary(onDown: () => void = () => {}) {
  let flips = 0
  return {
    async flip(): Promise<string> {
      if (++flips < 3) throw Object.assign(new Error('not yet'), { code: 'EBUSY' })
      return 'ok'
    },
    async down(): Promise<string> {
      onDown()
      throw Object.assign(new Error('HTTP 503 Service Unavailable'), { code: 'HTTP_503' })
    },
  }
}

/** A flip retried at once, then a call to a service that is down, retried every ten minutes. */
const retrier = thread({
  uses: ['flaky'],
  retry: { 'flaky.flip': { initialInterval: 1, jitter: 0 }, 'flaky.down': { initialInterval: 600_000, attempts: 5 } },
  async does() {
    return [await this.flaky.flip(), await this.flaky.down()]
  },
})

/** Resolves once a call of this process waits between two attempts (its attempt is durable by then). */
function retryWaiting(): Promise<void> {
  return new Promise((resolve) => {
    const poll = (): void => void (pendingRetryWaits() > 0 ? resolve() : setImmediate(poll))
    poll()
  })
}

/** Waits for a message (one that never comes, in these tests). */
const sitter = thread({
  uses: ['mailbox'],
  async does() {
    return this.mailbox.receive()
  },
})

/** Waits for a paid message, for an hour at most (a receive with a pattern and a timeout). */
const picky = thread({
  uses: ['mailbox'],
  async does() {
    return this.mailbox.receive({ match: { kind: 'paid' }, timeout: 3_600_000 })
  },
})

/** Spawns a sitter, links with it and monitors it, says so, and waits. */
const linker = thread({
  uses: ['threads', 'mailbox', 'uiSignal'],
  async does() {
    const c = await this.threads.spawn('sitter', {})
    await this.threads.link(c)
    await this.threads.monitor(c)
    await this.uiSignal.ready()
    return this.mailbox.receive()
  },
})

/** Resolves when a thread calls uiSignal.ready(); then commits what is queued, between two turns. */
function signal(): { library: { ready(): Promise<void> }; heard: (weave: Weave) => Promise<void> } {
  let ready!: () => void
  const called = new Promise<void>((resolve) => (ready = resolve))
  return {
    library: {
      async ready() {
        ready()
      },
    },
    heard: async (weave) => {
      await called
      await new Promise<void>((resolve) => setImmediate(resolve))
      weave.journal.flushNow()
    },
  }
}

async function open(threads: Record<string, AnyThreadType>, onDown?: () => void, uiSignal?: { ready(): Promise<void> }) {
  const db = join(tempDir('raiment-ui-page-'), 'w.db')
  const weave = await Weave.open({ db, durability: 'memory', threads: threads as never, libraries: { big, flaky: flakyLibrary(onDown), ...(uiSignal ? { uiSignal } : {}) }, ioLibs: false, dumps: false, config: { logLevel: 'silent' } })
  return { db, weave }
}

describe('a thread page', () => {
  it('cuts each large value at a few KB and says how much more the dump has', async () => {
    const { db, weave } = await open({ hoarder })
    const id = weave.spawn('hoarder', { n: 20, pad: 'p'.repeat(300 * 1024) })
    try {
      expect((await weave.join(id)).status).toBe('done')
    } finally {
      await weave.close()
    }
    const js = new Journals([db])
    const html = String(threadPage(threadDetail(js, id, 0)!))
    // 20 outcomes of 500 KB, one of 10 KB, an error of 100 KB, params of 300 KB, a result of 600 KB.
    expect(html.length).toBeLessThan(150 * 1024)
    const notes = new Set(html.match(/… [^<]*the dump has it whole/g))
    expect(notes).toEqual(
      new Set([
        // Too long to decode: the start of the recorded text (the outcomes, the error record).
        '… 497 KB more (shown as recorded): the dump has it whole',
        '… 197 KB more (shown as recorded): the dump has it whole',
        // Decoded, and cut as shown: the 10 KB outcome, the params, the result.
        '… 7 KB more: the dump has it whole',
        '… 297 KB more: the dump has it whole',
        '… 597 KB more: the dump has it whole',
      ]),
    )
    // The dump the page links to holds them whole.
    const dump = js.read(0, (j) => makeDump(j, id))
    expect(dump.entries[0]!.value).toHaveLength(500 * 1024)
  })

  it('shows failed attempts under their call, a call still retrying, and one the thread ended waiting for', async () => {
    let downCalled!: () => void
    const down = new Promise<void>((resolve) => (downCalled = resolve))
    const { db, weave } = await open({ retrier }, () => downCalled())
    const id = weave.spawn('retrier', {})
    const js = new Journals([db])
    try {
      // flip's waits are over once down is called: the next wait is down's.
      await down
      await retryWaiting()
      // Beside the running weave: flip answered after two failed attempts; down waits for its next.
      const d = threadDetail(js, id, 0)!
      expect(d.calls.map((c) => [c.call, c.attempts?.map((a) => a.n)])).toEqual([['flaky.flip', [1, 2]]])
      expect(d.unanswered.map((u) => [u.call, u.attempts.map((a) => a.n)])).toEqual([['flaky.down', [1]]])
      const html = String(threadPage(d))
      expect(html).toContain('after 2 failed attempts')
      expect(html).toMatch(/<h2>Retrying <span class="note">calls waiting for their next attempt<\/span><\/h2><div class="call-retrying"><span class="name">flaky.down<\/span>/)
      expect(html).toMatch(/attempt 1 <span class="time">[^<]+ UTC<\/span> <code>Error HTTP_503: HTTP 503 Service Unavailable<\/code> <span class="note">next at [^<]+ UTC<\/span>/)
      expect(html).not.toContain('No calls recorded')
      expect(weave.kill(id)).toBe(true)
      expect((await weave.join(id)).status).toBe('killed')
    } finally {
      await weave.close()
    }
    // Killed in the wait: the call was never answered, and no next attempt comes.
    const html = String(threadPage(threadDetail(js, id, 0)!))
    expect(html).toContain('<h2>Never answered <span class="note">the thread killed while these calls waited for their next attempt</span></h2>')
    expect(html).toContain('<code>Error HTTP_503: HTTP 503 Service Unavailable</code></li>')
    const section = html.slice(html.indexOf('<section class="retrying">'), html.indexOf('</section>', html.indexOf('<section class="retrying">')))
    expect(section).toContain('flaky.down')
    expect(section).not.toContain('<span class="note">next at')
    expect(html).not.toContain('Retrying')
  })

  it('lists each linked peer once (a link is stored in both directions), beside its monitors', async () => {
    const sig = signal()
    const { db, weave } = await open({ linker, sitter }, undefined, sig.library)
    try {
      const id = weave.spawn('linker', {})
      await sig.heard(weave)
      const js = new Journals([db])
      const child = threadDetail(js, id, 0)!.children[0]!.id
      const section = (of: string): string => {
        const html = String(threadPage(threadDetail(js, of, 0)!))
        return html.slice(html.indexOf('<h2>Links and monitors</h2>'), html.indexOf('</section>', html.indexOf('<h2>Links and monitors</h2>')))
      }
      const link = (to: string): string => `<a class="id" href="/thread?id=${encodeURIComponent(to)}">${to}</a>`
      expect(section(id)).toBe(`<h2>Links and monitors</h2><ul><li>linked with ${link(child)}</li><li>monitors ${link(child)}</li></ul>`)
      expect(section(child)).toBe(`<h2>Links and monitors</h2><ul><li>linked with ${link(id)}</li><li>monitored by ${link(id)}</li></ul>`)
    } finally {
      await weave.close()
    }
  })

  it('has the element its pager links to (#timeline)', () => {
    const db = join(tempDir('raiment-ui-page-'), 'long.db')
    const j = new Journal(db, { durability: 'memory' })
    j.insertThread('t/1', 'stepper', encodeValue({}), null, 'running')
    for (let seq = 0; seq < 450; seq++) j.addEntry('t/1', seq, `jt.step:${encodeArgs([seq])}`, 0, 1, encodeValue(seq), Date.now(), 0, () => {})
    j.close()
    const html = String(threadPage(threadDetail(new Journals([db]), 't/1', 200)!))
    const targets = new Set([...html.matchAll(/href="[^"#]*#([^"]+)"|action="[^"#]*#([^"]+)"/g)].map((m) => m[1] ?? m[2]))
    expect(targets).toEqual(new Set(['timeline']))
    expect(html).toContain('<a href="/thread?id=t%2F1&from=400#timeline">last »</a>')
    for (const t of targets) expect(html).toContain(`id="${t}"`)
  })

  it('lists the calls the journal has in flight (a weave killed during a charge), as raiment show does', () => {
    const db = join(tempDir('raiment-ui-page-'), 'flight.db')
    const j = new Journal(db, { durability: 'memory' })
    j.insertThread('t/1', 'pay', encodeValue({}), null, 'running')
    j.flushNow()
    // The row a batch writes for a call still unanswered a turn after it started (src/in-flight.ts).
    j.setMeta(markKey('t/1', 0, `psp.charge:${encodeArgs(['o-1'])}`), String(Date.UTC(2026, 11, 4, 17)))
    j.close()
    const html = String(threadPage(threadDetail(new Journals([db]), 't/1', 0)!))
    expect(html).toContain('<h2>In flight <span class="note">asked of their library, no outcome yet: a weave that resumes the thread makes them again, with their call ids</span></h2>')
    expect(html).toContain('<div class="call-in-flight"><span class="name">psp.charge</span> <code>&quot;o-1&quot;</code> <span class="time">since 2026-12-04 17:00:00.000 UTC</span></div>')
  })

  it('counts the messages waiting in its mailbox beyond the 200 it shows', () => {
    const db = join(tempDir('raiment-ui-page-'), 'inbox.db')
    const j = new Journal(db, { durability: 'memory' })
    for (const id of ['t/1', 't/2']) j.insertThread(id, 'sitter', encodeValue({}), null, 'running')
    j.flushNow()
    const put = j.db.prepare('INSERT INTO inbox (thread, sender, msg_id, body, at) VALUES (?, NULL, ?, ?, ?)')
    for (let n = 0; n < 250; n++) put.run('t/1', `m${n}`, encodeValue({ n }), Date.now())
    for (let n = 0; n < 3; n++) put.run('t/2', `k${n}`, encodeValue({ n }), Date.now())
    j.close()
    const js = new Journals([db])
    expect(String(threadPage(threadDetail(js, 't/1', 0)!))).toContain('<h2>Mailbox <span class="note">250 waiting, the first 200 shown</span></h2>')
    expect(String(threadPage(threadDetail(js, 't/2', 0)!))).toContain('<h2>Mailbox <span class="note">3 waiting</span></h2>')
  })

  it('says since when a passivated thread waits, and until when, in its own time format', () => {
    const db = passivatedFamily()
    const html = String(threadPage(threadDetail(new Journals([db]), 'p/1', 0)!))
    expect(html).toContain(
      '<span class="badge running">running</span> — passivated: out of memory since 2026-12-04 17:00:00.000 UTC, waiting for a message, until 2026-12-04 18:00:00.000 UTC</dd>',
    )
  })

  it('says what a running thread in memory waits for, as raiment show does, asked of its weave: a receive with its pattern', async () => {
    const db = join(tempDir('raiment-ui-page-'), 'w.db')
    const weave = await Weave.open({ db, durability: 'memory', threads: { picky }, ioLibs: false, dumps: false, passivateAfter: false, config: { logLevel: 'silent' } })
    const ui = await startUi({ journals: new Journals([db]), port: 0, token: 'secret' })
    try {
      const id = weave.spawn('picky', {})
      weave.send(id, { kind: 'noop' })
      // Its receive's deadline is recorded (mailbox.now); the wait starts as that outcome is released.
      const now = weave.journal.db.prepare("SELECT 1 FROM journal WHERE thread = ? AND key LIKE 'mailbox.now:%'")
      await until(`${id}'s mailbox.now`, () => now.get(id) !== undefined)
      const html = await (await fetch(new URL(`/thread?id=${encodeURIComponent(id)}`, ui.url))).text()
      const at = '\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d\\.\\d{3} UTC'
      expect(html).toMatch(new RegExp(`<dt>Status</dt><dd><span class="badge running">running</span> — waiting for a message matching \\{&quot;kind&quot;:&quot;paid&quot;\\}, until ${at} \\(since ${at}\\)</dd>`))
      expect(html).toContain('<h2>Mailbox <span class="note">1 waiting</span></h2>')
    } finally {
      await ui.close()
      await weave.close()
    }
  }, 30_000)

  it('shows a passivated child as passivated in the children tree, as the threads list does', () => {
    const html = String(threadPage(threadDetail(new Journals([passivatedFamily()]), 'p/1', 0)!))
    expect(html).toContain('<a class="id" href="/thread?id=p%2F2">p/2</a> <span class="type">sitter</span> <span class="badge passivated">passivated</span>')
  })
})

/** A journal where running thread p/1 (and its child p/2) are passivated, waiting for a message (p/1 until a time). */
function passivatedFamily(): string {
  const db = join(tempDir('raiment-ui-page-'), 'passivated.db')
  const j = new Journal(db, { durability: 'memory' })
  j.insertThread('p/1', 'sitter', encodeValue({}), null, 'running')
  j.insertThread('p/2', 'sitter', encodeValue({}), 'p/1', 'running')
  j.flushNow()
  const passivate = j.db.prepare('INSERT INTO passivated (thread, due, mailbox, joins, at) VALUES (?, ?, 1, NULL, ?)')
  passivate.run('p/1', Date.UTC(2026, 11, 4, 18), Date.UTC(2026, 11, 4, 17))
  passivate.run('p/2', null, Date.UTC(2026, 11, 4, 17))
  j.close()
  return db
}

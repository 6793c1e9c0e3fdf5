/**
 * `raiment ui` in a real browser: Debian's chromium driven by playwright-core, against a real
 * `raiment ui` process reading a journal made by the example threads while a real weave
 * (`raiment start`) runs on it. Without chromium the suite is skipped with one line, except
 * under CI=true, where it fails (.ci/run installs chromium).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { existsSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { chromium, type Browser, type Page } from 'playwright-core'
import { Weave } from 'raiment'
import { raiment, raimentProcess, ROOT, THREADS, type Running } from './support/raiment-process.js'
import { sharedTempDir } from './support/tmp.js'

/** What the page shows comes from other processes (a weave, the UI): wait for it, long enough for a loaded machine. */
const POLL = { timeout: 20_000 }
const CHROMIUM = process.env['RAIMENT_CHROMIUM'] ?? '/usr/bin/chromium'
const have = existsSync(CHROMIUM)
if (!have && process.env['CI'] === 'true') {
  it('has chromium for the browser tests', () => {
    expect.fail(`${CHROMIUM} is missing: .ci/run installs it (apt-get install -y chromium)`)
  })
} else if (!have) {
  console.warn(`skipping the browser tests of raiment ui: no chromium at ${CHROMIUM} (apt-get install chromium)`)
}

describe.skipIf(!have)('raiment ui in a browser', () => {
  const dir = sharedTempDir('raiment-ui-')
  const db = join(dir, 'w.db')
  let weave: Running
  let ui: Running
  let url: string
  let token: string
  let browser: Browser
  const ids: Record<string, string> = {}
  let filesBefore: string[]

  beforeAll(async () => {
    // The record: a greeting, a checkout that fails, a sleeper that runs on, and a listener.
    const w = await Weave.open({ db, threads: THREADS, ioLibs: false, durability: 'memory', dumps: false, config: { logLevel: 'silent' } })
    ids['greet'] = w.spawn('greet', { name: 'ada' })
    ids['checkout'] = w.spawn('checkout', { order: 42, cents: 12_500, limit: 10_000 })
    ids['sleeper'] = w.spawn('sleeper', { steps: 600, ms: 1_000 })
    ids['listener'] = w.spawn('listener', { name: 'ear' })
    await w.join(ids['greet'])
    await w.join(ids['checkout'])
    await w.close()
    // A weave runs on it while the UI reads it: the sleeper and listener resume there.
    weave = raimentProcess(dir, ['start', '--db', db, '--threads', THREADS, '--durability', 'memory', '--dumps', join(dir, 'dumps')])
    await weave.until((o) => o.includes(`resumed ${ids['sleeper']}`) && o.includes(`resumed ${ids['listener']}`))
    filesBefore = readdirSync(dir).sort()
    ui = raimentProcess(dir, ['ui', '--db', db])
    await ui.until((o) => /token: \S+\n/.test(o))
    url = /raiment ui: (\S+)/.exec(ui.stdout)![1]!
    token = /token: (\S+)/.exec(ui.stdout)![1]!
    browser = await chromium.launch({ executablePath: CHROMIUM })
    // Three processes start here (a weave, the UI, chromium): give a loaded machine time.
  }, 120_000)

  afterAll(async () => {
    await browser?.close()
    ui?.child.kill('SIGTERM')
    weave?.child.kill('SIGTERM')
    await Promise.all([ui?.ended, weave?.ended])
  })

  const open = async (path: string): Promise<Page> => {
    const page = await browser.newPage({ acceptDownloads: true })
    await page.goto(new URL(path, url).href)
    return page
  }
  const rowIds = (page: Page): Promise<string[]> => page.locator('table.threads tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-id')!))

  it('lists the threads, and filters them by status, type and name', async () => {
    const page = await open('/')
    expect(new Set(await rowIds(page))).toEqual(new Set(Object.values(ids)))
    await expect.poll(() => page.locator(`tr[data-id="${ids['checkout']}"] .badge`).textContent(), POLL).toBe('failed')
    await page.selectOption('select[name=status]', 'failed')
    await page.waitForURL(/status=failed/)
    expect(await rowIds(page)).toEqual([ids['checkout']])
    await page.goto(new URL('/?type=greet', url).href)
    expect(await rowIds(page)).toEqual([ids['greet']])
    await page.goto(new URL('/?name=ea', url).href)
    expect(await rowIds(page)).toEqual([ids['listener']])
    await page.close()
  })

  it("shows a failed thread's error and timeline, and its dump replays to the same error", async () => {
    const page = await open(`/thread?id=${encodeURIComponent(ids['checkout']!)}`)
    await expect.poll(() => page.locator('.error strong').first().textContent(), POLL).toContain('PaymentDeclined: order 42: card declined')
    const calls = page.locator('details.call')
    expect(await calls.count()).toBe(8)
    expect(await calls.locator('.name').allTextContents()).toContain('log.warn')
    await calls.first().locator('summary').click()
    await expect.poll(() => calls.first().locator('.call-body').textContent(), POLL).toContain(`${ids['checkout']}@`)
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#dump')])
    const file = join(dir, download.suggestedFilename())
    await download.saveAs(file)
    const command = await page.locator('.command code').textContent()
    expect(command).toBe(`npx raiment replay ${download.suggestedFilename()}`)
    const replayed = await raiment(ROOT, 'replay', file, '--threads', THREADS)
    expect(replayed.stdout).toContain('PaymentDeclined: order 42: card declined')
    expect(replayed.stdout).toContain('which is the recorded error')
    expect(replayed.code).toBe(0)
    await page.close()
  })

  it('refuses a kill without the token, kills with it, and the page turns killed live', async () => {
    const sleeper = ids['sleeper']!
    const page = await open(`/thread?id=${encodeURIComponent(sleeper)}`)
    page.on('dialog', (d) => void d.accept())
    await expect.poll(() => page.locator('h1[data-status]').getAttribute('data-status'), POLL).toBe('running')
    // No token: refused, and nothing changes.
    const refused = await page.evaluate(async (id) => {
      const r = await fetch('/api/kill', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ id }) })
      return { status: r.status, body: await r.text() }
    }, sleeper)
    expect(refused.status).toBe(403)
    await page.click('#kill')
    await expect.poll(() => page.locator('#said').textContent(), POLL).toContain('RAIMENT_UI_TOKEN')
    expect(await page.locator('h1[data-status]').getAttribute('data-status')).toBe('running')
    // With the token, typed into the page as a user would.
    await page.fill('input[name=token]', token)
    await page.click('.token-form button')
    await page.click('#kill')
    await expect.poll(() => page.locator('#said').textContent(), POLL).toBe(`killed ${sleeper}`)
    // The weave killed it; the page shows that without being reloaded.
    await page.waitForSelector('h1[data-status=killed]')
    expect(weave.stdout).toContain(`killed ${sleeper}`)
    await page.close()
  })

  it('sends a message with the token, and with a key only once', async () => {
    const page = await open(`/thread?id=${encodeURIComponent(ids['listener']!)}#token=${token}`)
    await page.fill('#message', '{"hello":"world"}')
    await page.fill('#send-key', 'hello-1')
    await page.click('#send')
    await expect.poll(() => page.locator('#said').textContent(), POLL).toBe(`delivered to ${ids['listener']}`)
    await page.waitForSelector('h1[data-status=done]')
    await expect.poll(() => page.locator('pre.value').last().textContent(), POLL).toContain('"hello": "world"')
    // Sent again with the key (a user who clicks twice): not sent again, though the thread has ended meanwhile.
    await page.fill('#message', '{"hello":"again"}')
    await page.click('#send')
    await expect.poll(() => page.locator('#said').textContent(), POLL).toBe(`already sent to ${ids['listener']} with key 'hello-1': not sent again`)
    await page.close()
  })

  it('created no file beside the journal', () => {
    const now = readdirSync(dir).filter((f) => !f.endsWith('.json'))
    expect(now.sort()).toEqual(filesBefore.filter((f) => !f.endsWith('.json')))
  })
})

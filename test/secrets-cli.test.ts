/**
 * Secrets end to end, as a user runs them: `raiment start --secret …` runs a thread that logs in
 * to a local HTTP service (an Authorization header, a password in the body, a session cookie and
 * token in the response) and is SIGKILLed with its second request in flight; the next `start`
 * resumes it. No secret's bytes are then in the journal (and its WAL), the key file aside, in a
 * dump, in `raiment show`, or in anything the processes printed; the dump replays without the
 * key and without the secrets.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { afterAll, beforeAll, expect, test } from 'vitest'
import { replay } from '../src/testing.js'
import type { AnyThreadType } from '../src/index.js'
import { raiment, raimentProcess, type Running } from './support/raiment-process.js'
import { tempDir } from './support/tmp.js'

const RAIMENT = new URL('../src/index.ts', import.meta.url).href
const secret = (what: string): string => `${what}-${randomBytes(12).toString('hex')}`
const TOKEN = secret('token')
const PASSWORD = secret('password')
const COOKIE = secret('cookie')
const SESSION = secret('session')

const LOGIN = `import { thread } from '${RAIMENT}'
export default thread({
  uses: ['env', 'fetch'],
  async does(p: { base: string }) {
    const token = await this.env.secret('API_TOKEN')
    const password = await this.env.secret('API_PASSWORD')
    const login = await this.fetch.request(p.base + '/login', {
      method: 'POST',
      headers: { Authorization: 'Bearer ' + token },
      body: { user: 'ada', password },
    })
    const body = login.body as { ok: boolean; session: string }
    const cookie = (login.headers['set-cookie'] ?? '').split(';')[0]
    const next = await this.fetch.get(p.base + '/next', { headers: { Cookie: cookie, 'X-Session': body.session } })
    return { login: body.ok, next: next.body }
  },
})
`

const counts = { login: 0, next: 0 }
let onNext: (res: ServerResponse, req: IncomingMessage) => void = () => {}
const server = createServer((req: IncomingMessage, res: ServerResponse) => {
  let text = ''
  req.on('data', (d: Buffer) => (text += d.toString()))
  req.on('end', () => {
    if (req.url === '/login') {
      counts.login++
      const body = JSON.parse(text) as { password?: string }
      const ok = req.headers.authorization === `Bearer ${TOKEN}` && body.password === PASSWORD
      res.writeHead(200, { 'content-type': 'application/json', 'set-cookie': `sid=${COOKIE}; HttpOnly` })
      res.end(JSON.stringify({ ok, session: SESSION }))
      return
    }
    counts.next++
    onNext(res, req)
  })
})
let base = ''

beforeAll(async () => {
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})
afterAll(() => {
  server.closeAllConnections()
  server.close()
})

const answerNext = (res: ServerResponse, req: IncomingMessage): void => {
  res.writeHead(200, { 'content-type': 'application/json' })
  res.end(JSON.stringify({ cookieOk: req.headers.cookie === `sid=${COOKIE}`, sessionOk: req.headers["x-session"] === SESSION }))
}

test('a thread that used secrets, killed and resumed, leaves none of their bytes anywhere; its dump replays without them', async () => {
  const dir = tempDir()
  mkdirSync(join(dir, 'threads'))
  writeFileSync(join(dir, 'threads', 'login.ts'), LOGIN)
  const env = { API_TOKEN: TOKEN, API_PASSWORD: PASSWORD }
  const args = ['start', '--secret', 'fetch.body=password', '--secret', 'fetch.headers=X-Session', '--secret', 'fetch.response=session']
  const printed: string[] = []
  const keep = (r: Running): void => void r.ended.then((e) => printed.push(e.stdout, e.stderr))

  // First run: killed (SIGKILL) once the thread's second request reaches the service.
  const first = raimentProcess(dir, args, { env })
  keep(first)
  await first.until((o) => o.includes('resumed 0 threads'))
  onNext = () => first.child.kill('SIGKILL')
  const spawned = await raiment(dir, 'spawn', 'login', JSON.stringify({ base }))
  expect(spawned.code).toBe(0)
  printed.push(spawned.stdout, spawned.stderr)
  expect((await first.ended).signal).toBe('SIGKILL')
  const killedFiles = ['raiment.db', 'raiment.db-wal'].map((f) => join(dir, f)).filter(existsSync)
  expect(killedFiles).toHaveLength(2)
  const atKill = killedFiles.map((f) => [f, readFileSync(f)] as const)

  // Second run: resumes it; the request in flight is sent again, with the cookie and session it
  // got back (opened from their sealed records), and is answered this time.
  onNext = answerNext
  const second = raimentProcess(dir, args, { env })
  keep(second)
  await second.until((o) => /done \S+ login/.test(o))
  second.child.kill('SIGTERM')
  expect((await second.ended).code).toBe(0)
  expect(second.stdout).toContain('resumed 1 thread')
  expect(second.stdout).toMatch(/done \S+ login → \{"login":true,"next":\{"cookieOk":true,"sessionOk":true\}\}/)
  expect(counts).toEqual({ login: 1, next: 2 })

  const id = /done (\S+) login/.exec(second.stdout)![1]!
  const [show, dumped] = await Promise.all([raiment(dir, 'show', id, '--json'), raiment(dir, 'dump', id, '-o', 'login.json')])
  expect(show.code).toBe(0)
  expect(show.stdout).toContain('[secret:')
  expect(dumped.code).toBe(0)
  printed.push(show.stdout, show.stderr, dumped.stdout, dumped.stderr)

  const files = ['raiment.db', 'raiment.db-wal', 'raiment.db-shm', 'login.json'].map((f) => join(dir, f)).filter(existsSync)
  expect(files).toContain(join(dir, 'login.json'))
  for (const s of [TOKEN, PASSWORD, COOKIE, SESSION]) {
    for (const f of files) expect(readFileSync(f).includes(s), `${s} in ${f}`).toBe(false)
    for (const [f, bytes] of atKill) expect(bytes.includes(s), `${s} in ${f} at the kill`).toBe(false)
    for (const p of printed) expect(p).not.toContain(s)
  }

  // The dump replays elsewhere: no key file, no secrets in the environment.
  const elsewhere = tempDir()
  mkdirSync(join(elsewhere, 'threads'))
  writeFileSync(join(elsewhere, 'threads', 'login.ts'), LOGIN)
  writeFileSync(join(elsewhere, 'login.json'), readFileSync(join(dir, 'login.json')))
  const replayed = await raiment(elsewhere, 'replay', 'login.json')
  expect(replayed.stdout).toContain('which equals the recorded result')
  expect(replayed.code).toBe(0)
  const type = (await import(join(elsewhere, 'threads', 'login.ts'))) as { default: AnyThreadType }
  const run = await replay(type.default as never, join(elsewhere, 'login.json'), { ioLibs: false })
  expect(run.result).toEqual({ login: true, next: { cookieOk: true, sessionOk: true } })
})

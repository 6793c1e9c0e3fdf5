/**
 * fetch's `response` secret paths (docs/secrets.md) and the bodies they cannot search by path: a
 * token never reaches the journal file, its WAL or a dump in clear, whether the body is JSON, not
 * JSON (RAIMENT_FETCH_BAD_JSON never quotes the body), read as text or as bytes. A text body
 * that holds no path's name is recorded as it is.
 *
 * Reproduce a failure of the property with FC_SEED=<seed>.
 */
import { existsSync, readFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { join } from 'node:path'
import { expect, test } from 'vitest'
import { fc, test as fcTest } from '@fast-check/vitest'
import { thread, Weave } from 'raiment'
import { dumpText } from 'raiment/testing'
import { makeDump } from '../src/dump.js'
import { Keyring } from '../src/secrets/keyring.js'
import { sealedParts } from '../src/secrets/marker.js'
import { secrets as fetchSecrets } from '../io-libs/_fetch-secrets.js'
import { tempDir } from './support/tmp.js'

const TOKENS = ['GOOD-TOKEN-1111', 'LEAKED-TOKEN-2222', 'TEXT-TOKEN-3333', 'BYTES-TOKEN-4444', 'FORM-TOKEN-5555']

/** Answers each path with a body holding one token (or none, /plain). */
function server() {
  const bodies: Record<string, [string, string]> = {
    '/good': ['application/json', '{"access_token":"GOOD-TOKEN-1111","expires":3600}'],
    // A trailing comma: not JSON.
    '/bad': ['application/json', '{"access_token":"LEAKED-TOKEN-2222","expires":3600,}'],
    '/text': ['application/json', '{"access_token":"TEXT-TOKEN-3333","expires":3600,}'],
    '/bytes': ['application/octet-stream', '{"Access_Token":"BYTES-TOKEN-4444"}'],
    '/form': ['application/x-www-form-urlencoded', 'access_token=FORM-TOKEN-5555&expires=3600'],
    '/plain': ['text/plain', 'hello plain text'],
  }
  const s = createServer((req, res) => {
    const [type, body] = bodies[req.url ?? ''] ?? ['text/plain', 'none']
    res.writeHead(200, { 'content-type': type })
    res.end(body)
  })
  return new Promise<{ base: string; close: () => void }>((ok) =>
    s.listen(0, '127.0.0.1', () => ok({ base: `http://127.0.0.1:${(s.address() as { port: number }).port}`, close: () => s.close() })),
  )
}

const login = thread({
  uses: ['fetch'],
  async does(p: { base: string }) {
    const good = await this.fetch.get<{ access_token: string }>(p.base + '/good', { retry: false })
    let bad: { code?: string; message?: string } = {}
    try {
      await this.fetch.get(p.base + '/bad', { retry: false })
    } catch (e) {
      bad = { code: (e as { code?: string }).code, message: (e as Error).message }
    }
    const text = await this.fetch.get(p.base + '/text', { as: 'text', retry: false })
    const bytes = await this.fetch.get(p.base + '/bytes', { as: 'bytes', retry: false })
    const form = await this.fetch.get(p.base + '/form', { retry: false })
    const plain = await this.fetch.get(p.base + '/plain', { as: 'text', retry: false })
    // (A result is recorded as it is: it tells what the thread got, not the tokens.)
    return {
      good: good.body.access_token === 'GOOD-TOKEN-1111',
      bad,
      text: text.body === '{"access_token":"TEXT-TOKEN-3333","expires":3600,}',
      bytes: bytes.body instanceof Uint8Array && Buffer.from(bytes.body).toString() === '{"Access_Token":"BYTES-TOKEN-4444"}',
      form: form.body === 'access_token=FORM-TOKEN-5555&expires=3600',
      plain: plain.body,
    }
  },
})

test('a token reaches neither the journal nor the dump: in a body not JSON, nor read as text or bytes; the thread gets each body as it was', async () => {
  const srv = await server()
  const db = join(tempDir('raiment-fetch-secret-'), 'w.db')
  const weave = await Weave.open({ db, durability: 'sync', threads: { login }, dumps: false, ioLibs: false, secrets: { fetch: { response: ['access_token'] } } })
  let text: string
  try {
    const id = weave.spawn('login', { base: srv.base })
    const end = await weave.join(id)
    if (end.status !== 'done') throw new Error(`the thread ended ${end.status}: ${'error' in end ? end.error.message : ''}`)
    const r = end.result as { bad: { code: string; message: string } }
    expect(r).toEqual({ good: true, bad: r.bad, text: true, bytes: true, form: true, plain: 'hello plain text' })
    expect(r.bad.code).toBe('RAIMENT_FETCH_BAD_JSON')
    expect(r.bad.message).toMatch(/not JSON \(.*position 51; 52 characters, content-type application\/json; the body is not shown/)
    expect(r.bad.message).not.toContain('TOKEN')
    text = dumpText(makeDump(weave.journal, id))
  } finally {
    await weave.close()
    srv.close()
  }
  const files = [db, db + '-wal'].filter((f) => existsSync(f)).map((f) => readFileSync(f).toString('latin1')).join('')
  for (const token of TOKENS) {
    expect(files.includes(token), `${token} in the journal file`).toBe(false)
    expect(text.includes(token), `${token} in the dump`).toBe(false)
  }
  // Bodies that name no secret are recorded as they are.
  expect(text).toContain('hello plain text')
})

test('bytes sealed come back as bytes with the key', () => {
  const k = Keyring.random()
  const bytes = new Uint8Array(Buffer.from('{"access_token":"x"}'))
  const marker = k.seal(bytes)
  const p = sealedParts(marker)!
  expect(k.open(p.kid, p.data, marker)).toStrictEqual(bytes)
})

const seed = process.env['FC_SEED'] !== undefined ? Number(process.env['FC_SEED']) : Date.now() % 2 ** 31
console.log(`fetch-secret-body: fast-check seed ${seed} (FC_SEED=${seed} to reproduce)`)

fcTest.prop([fc.string(), fc.constantFrom('access_token', 'ACCESS_TOKEN', 'Access_Token', ''), fc.string(), fc.boolean()], { seed, numRuns: 200 })(
  'a text or bytes body is sealed whole exactly when it holds the name a response path ends with, any case',
  (before, name, after, asBytes) => {
    const s = before + name + after
    const body = asBytes ? new Uint8Array(Buffer.from(s)) : s
    const mark = (v: unknown) => `[secret:k:sealed:${typeof v}]`
    const out = fetchSecrets.outcome!('request', { status: 200, headers: {}, body }, mark, { response: ['data.*.access_token'] }) as { body: unknown }
    if (s.toLowerCase().includes('access_token')) expect(out.body).toBe(mark(body))
    else expect(out.body).toBe(body)
    // A path that ends with no name (`*`, an index): any body.
    const any = fetchSecrets.outcome!('request', { status: 200, headers: {}, body }, mark, { response: ['*'] }) as { body: unknown }
    expect(any.body).toBe(s === '' ? body : mark(body))
  },
)

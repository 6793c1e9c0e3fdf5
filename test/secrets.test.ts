/**
 * Secrets kept out of the journal (src/secrets/): the keyed markers of arguments, the sealed
 * outcomes, the matching with and without the key, and the additions a weave makes.
 */
import { readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import fc from 'fast-check'
import { describe, expect, test } from 'vitest'
import { InvalidArgument, thread, Weave, type AnyThreadType, type LibrarySecrets } from '../src/index.js'
import { dumpText, makeDump } from '../src/dump.js'
import { record, replay } from '../src/testing.js'
import { Keyring, secretKeyFile } from '../src/secrets/keyring.js'
import { markPaths } from '../src/secrets/rules.js'
import { encodeArgs } from '../src/encoding.js'
import { secrets as fetchSecrets } from '../io-libs/_fetch-secrets.js'
import { tempDir } from './support/tmp.js'

/** A library whose `use(secret, n)` takes a secret first argument, and `issue()` returns one. */
const vaultSecrets: LibrarySecrets = {
  args: (method, args, mark) => (method === 'use' ? [mark(args[0]), ...args.slice(1)] : args),
  outcome: (method, value, mark) => (method === 'issue' ? mark(value) : value),
}
const issued = 'issued-' + 'x'.repeat(12)
const vault = {
  default: {
    async use(secret: string, n: number): Promise<string> {
      return `used ${secret.length} ${n}`
    },
    async issue(): Promise<string> {
      return issued
    },
  },
  secrets: vaultSecrets,
}

interface VaultApi {
  use(secret: string, n: number): Promise<string>
  issue(): Promise<string>
}

/** Uses the secrets it is given (a closure: params are recorded as they are) and one it is issued. */
function user(secrets: () => string[]) {
  return thread({
    uses: ['vault' as 'clock'],
    async does() {
      const v = this as unknown as { vault: VaultApi }
      const out: string[] = []
      for (const [i, s] of secrets().entries()) out.push(await v.vault.use(s, i % 2))
      const got = await v.vault.issue()
      out.push(await v.vault.use(got, 9))
      // Without the key (a dump replayed elsewhere) `got` is a marker: only its presence is the same.
      return { out, issued: got !== '' }
    },
  })
}

async function run(dir: string, type: ReturnType<typeof user>) {
  const weave = await Weave.open({ db: join(dir, 'w.db'), threads: { user: type }, libraries: { vault }, ioLibs: false, dumps: false, durability: 'memory' })
  try {
    const id = weave.spawn('user')
    const end = await weave.join(id)
    const keys = weave.journal.entries(id).map(([, key, ord]) => [key, ord] as const)
    return { end, keys, dump: makeDump(weave.journal, id) }
  } finally {
    await weave.close()
  }
}

/**
 * Runs a thread of `type` (it uses the libraries `vault` and `gate`) until it waits at its gate,
 * closes its weave, deletes the journal's key file, and opens a weave again (its gate open now):
 * the thread resumes under another key. `warnings`: what that weave warned of.
 */
async function resumedWithoutItsKey(db: string, name: string, type: AnyThreadType): Promise<{ weave: Weave; id: string; warnings: Error[] }> {
  // The first weave's gate never opens: it tells once the thread waits there (all before is durable).
  let reached: () => void = () => {}
  const waits = new Promise<void>((r) => (reached = r))
  const shut = { wait: () => (reached(), new Promise(() => {})) }
  const warnings: Error[] = []
  const open = (gate: object) => Weave.open({ db, threads: { [name]: type }, libraries: { vault, gate }, ioLibs: false, dumps: false, durability: 'memory', onWarning: (w) => warnings.push(w) })
  const first = await open(shut)
  const id = first.spawn(name)
  await waits
  await first.close()
  rmSync(secretKeyFile(db))
  return { weave: await open({ wait: async () => {} }), id, warnings }
}

describe('keyed markers of secret arguments', () => {
  test('two different secrets give two keys; the same secret the same key, in the next run too; no secret is recorded', async () => {
    const dir = tempDir()
    const [a, b] = ['alpha-secret-' + 'a'.repeat(8), 'bravo-secret-' + 'b'.repeat(8)]
    const type = user(() => [a, b, a])
    const first = await run(dir, type)
    expect(first.end).toMatchObject({ status: 'done', result: { out: [`used ${a.length} 0`, `used ${b.length} 1`, `used ${a.length} 0`, 'used 19 9'], issued: true } })
    const [ka, kb, ka2, kIssue, kUse] = first.keys
    expect(ka![0]).not.toBe(kb![0])
    expect(ka2).toEqual([ka![0], 1])
    expect(ka![0]).toMatch(/^vault\.use:\["\[secret:[\w-]{8}:[\w-]{22}\]",0\]$/)
    expect(kIssue![0]).toBe('vault.issue:[]')
    // The issued secret, given back to the library, is keyed by its value: the same in every run.
    expect(kUse![0]).toMatch(/^vault\.use:\["\[secret:/)
    // The next run on the journal (same key file) keys the same secrets the same way.
    expect((await run(dir, type)).keys).toEqual(first.keys)
    const bytes = readFileSync(join(dir, 'w.db'))
    for (const s of [a, b, issued]) {
      expect(bytes.includes(s)).toBe(false)
      expect(dumpText(first.dump)).not.toContain(s)
    }
    expect(statSync(secretKeyFile(join(dir, 'w.db'))).mode & 0o777).toBe(0o600)
  })

  test('a resumed thread finds its record by the keyed hash, and gets sealed outcomes back', async () => {
    const dir = tempDir()
    const a = 'resume-secret-' + 'r'.repeat(10)
    const type = user(() => [a])
    const db = join(dir, 'w.db')
    const weave = await Weave.open({ db, threads: { user: type }, libraries: { vault }, ioLibs: false, dumps: false, durability: 'sync', alwaysReplay: true })
    try {
      const end = await weave.join(weave.spawn('user'))
      // Always-replay re-ran the thread from its journal after every outcome: every call matched.
      expect(end).toMatchObject({ status: 'done', result: { issued: true } })
    } finally {
      await weave.close()
    }
  })

  test('a dump replays without the key and without the secrets: every secret matches any secret', async () => {
    const dir = tempDir()
    // b and c are both used with 1: without the key they are one call, made twice.
    let given = ['a-secret-value-1', 'b-secret-value-2', 'a-secret-value-1', 'c-secret-value-3']
    const type = user(() => given)
    const { dump } = await run(dir, type)
    expect(dump.entries.filter((e) => e.args[1] === 1).map((e) => e.ord)).toEqual([0, 0])
    given = ['w', 'x', 'y', 'z']
    const r = await replay(type, dumpText(dump), { ioLibs: false })
    expect(r.status).toBe('done')
    expect(r.result).toEqual((dump.thread as { result?: unknown }).result)
    given = ['x', 'y', 'z']
    await expect(replay(type, dumpText(dump), { ioLibs: false })).rejects.toThrow(/diverged/)
  })

  test('record() makes a fixture that holds no secret', async () => {
    const s = 'fixture-secret-' + 'f'.repeat(9)
    const type = user(() => [s])
    const { dump } = await record(type, undefined, { name: 'user', libraries: { vault }, ioLibs: false })
    expect(dumpText(dump)).not.toContain(s)
    expect(dumpText(dump)).not.toContain(issued)
    expect((await replay(type, dump, { ioLibs: false })).status).toBe('done')
  })

  test('a thread resumed under another key (its key file lost, or moved to another weave) matches its secrets as any secret', async () => {
    const dir = tempDir()
    const db = join(dir, 'w.db')
    const a = 'moved-secret-' + 'm'.repeat(10)
    const waiting = thread({
      uses: ['vault' as 'clock', 'gate' as 'clock'],
      async does() {
        const v = this as unknown as { vault: VaultApi; gate: { wait(): Promise<void> } }
        const first = await v.vault.use(a, 0)
        const got = await v.vault.issue()
        await v.gate.wait()
        return { first, again: await v.vault.use(a, 0), got }
      },
    })
    const { weave, id, warnings } = await resumedWithoutItsKey(db, 'waiting', waiting)
    try {
      const end = await weave.join(id)
      expect(end.status).toBe('done')
      const r = (end as { result: { first: string; again: string; got: string } }).result
      expect(r.first).toBe(r.again)
      // Sealed under the lost key: it comes back as its marker.
      expect(r.got).toMatch(/^\[secret:[\w-]+:sealed:/)
      // And the weave says so, once, with a code.
      expect(warnings.map((w) => [(w as { code?: string }).code, w.message.includes(`thread ${id} (waiting) resumed under secret key`)])).toEqual([['RAIMENT_SECRET_KEY_MISMATCH', true]])
      const uses = weave.journal.entries(id).map(([, key, ord]) => `${key} #${ord}`).filter((k) => k.startsWith('vault.use'))
      // Recorded under the lost key, then under none: the ordinals carry on across the two.
      expect(uses[0]).toMatch(/^vault\.use:\["\[secret:[\w-]{8}:[\w-]{22}\]",0\] #0$/)
      expect(uses[1]).toBe('vault.use:["[secret]",0] #1')
    } finally {
      await weave.close()
    }
  })

  test('a thread resumed under another key whose record holds only secret outcomes (no secret argument) is warned of too', async () => {
    const db = join(tempDir(), 'w.db')
    const issuing = thread({
      uses: ['vault' as 'clock', 'gate' as 'clock'],
      async does() {
        const v = this as unknown as { vault: VaultApi; gate: { wait(): Promise<void> } }
        const got = await v.vault.issue()
        await v.gate.wait()
        return got
      },
    })
    const { weave, id, warnings } = await resumedWithoutItsKey(db, 'issuing', issuing)
    try {
      const end = await weave.join(id)
      expect(end).toMatchObject({ status: 'done', result: expect.stringMatching(/^\[secret:[\w-]+:sealed:/) })
      expect(warnings.map((w) => [(w as { code?: string }).code, w.message.includes(`thread ${id} (issuing) resumed under secret key`)])).toEqual([['RAIMENT_SECRET_KEY_MISMATCH', true]])
    } finally {
      await weave.close()
    }
  })

  test('property: markers are keyed: equal for equal values under one key, different for different values or keys', () => {
    const k1 = Keyring.forJournal('', { RAIMENT_SECRET_KEY: 'k'.repeat(20) })
    const k1again = Keyring.forJournal('', { RAIMENT_SECRET_KEY: 'k'.repeat(20) })
    const k2 = Keyring.random()
    fc.assert(
      fc.property(fc.string(), fc.string(), (x, y) => {
        expect(k1.mac(x)).toBe(k1again.mac(x))
        expect(k1.mac(x) === k1.mac(y)).toBe(x === y)
        expect(k1.mac(x)).not.toBe(k2.mac(x))
        expect(k1again.open(k1.kid, k1.seal(x).split(':')[3]!.slice(0, -1), '?')).toBe(x)
        expect(k1.mac(x)).not.toContain(x.length > 3 ? x : '\u0000')
      }),
    )
  })
})

describe('fetch', () => {
  test('property: a request keyed with its secrets marked holds none of their bytes; other secrets, another key; the request given is left as it was', () => {
    const k = Keyring.random()
    const mark = (v: unknown): string => k.mac(v)
    const secret = fc.string({ minLength: 1 }).map((x) => `S3CR3T-${x}`)
    const field = fc.string({ minLength: 1, maxLength: 8 }).filter((x) => !x.includes('.') && x !== '*' && x !== '__proto__')
    fc.assert(
      fc.property(fc.dictionary(field, fc.jsonValue()), field, secret, secret, fc.constantFrom('Authorization', 'cookie', 'X-Api-Key'), (rest, at, s1, s2, header) => {
        const request = (s: string) => ['https://x.test/', { method: 'POST', headers: { [header]: s, Accept: 'json' }, body: { ...rest, [at]: s } }]
        const added = { headers: ['x-api-key'], body: [at] }
        const args = request(s1)
        const copy = structuredClone(args)
        const text = encodeArgs(fetchSecrets.args!('request', args, mark, added))
        expect(args).toEqual(copy)
        expect(text).not.toContain(JSON.stringify(s1).slice(1, -1))
        expect(text === encodeArgs(fetchSecrets.args!('request', request(s2), mark, added))).toBe(s1 === s2)
      }),
    )
  })

  test('a secret header fetch refuses is not quoted in the error, nor recorded', async () => {
    const dir = tempDir()
    const token = 'bad-token-' + 'q'.repeat(10)
    const bad = thread({
      uses: ['fetch'],
      async does() {
        return await this.fetch.get('http://127.0.0.1:9/x', { headers: { Authorization: `Bearer ${token}\nX-Evil: 1` } })
      },
    })
    const weave = await Weave.open({ db: join(dir, 'w.db'), threads: { bad }, ioLibs: false, dumps: false, durability: 'memory' })
    try {
      const end = await weave.join(weave.spawn('bad'))
      expect(end.status).toBe('failed')
      const err = (end as { error: Error }).error
      expect(err.message).toMatch(/header "Authorization" is not valid/)
      expect(err.message).not.toContain(token)
    } finally {
      await weave.close()
    }
    expect(readFileSync(join(dir, 'w.db')).includes(token)).toBe(false)
  })
})

describe('what a weave adds', () => {
  test('markPaths marks what each dot path names, and leaves the value given alone', () => {
    const body = { user: 'ada', password: 'pw', cards: [{ number: '4242' }, { number: '5555' }] }
    const out = markPaths(body, ['password', 'cards.*.number', 'missing.path'], (v) => `<${String(v)}>`)
    expect(out).toEqual({ user: 'ada', password: '<pw>', cards: [{ number: '<4242>' }, { number: '<5555>' }] })
    expect(body.password).toBe('pw')
  })

  test('an addition of a kind a library does not take is refused at open, naming the kinds', async () => {
    const dir = tempDir()
    await expect(Weave.open({ db: join(dir, 'a.db'), ioLibs: false, secrets: { fetch: { hedaers: ['x'] } } })).rejects.toThrow(
      /secrets\.fetch: 'hedaers' is neither a kind of secret fetch takes.*'headers'.*'body'.*'response'/,
    )
    await expect(Weave.open({ db: join(dir, 'b.db'), ioLibs: false, secrets: { nolib: { x: ['y'] } } })).rejects.toThrow(/there is no library 'nolib'/)
    await expect(Weave.open({ db: join(dir, 'c.db'), ioLibs: false, secrets: { fetch: { headers: 'x' } } as never })).rejects.toThrow(InvalidArgument)
    // Any library takes dot paths into the arguments of its methods: sqlite's run, its first parameter.
    const w = await Weave.open({ db: join(dir, 'd.db'), ioLibs: false, threads: {}, secrets: { sqlite: { run: ['2.0'] } } })
    await w.close()
  })

  test('a weave opened again without the addition that marked a secret resumes its thread, and the secret reaches neither the journal nor an error', async () => {
    const dir = tempDir()
    const password = 'hunter2-' + 'p'.repeat(12)
    const lib = { async login(user: string, pw: string) { return `${user}:${pw.length}` } }
    const t = thread({
      uses: ['lib' as 'mailbox', 'mailbox'],
      async does() {
        const got = await (this as unknown as { lib: typeof lib }).lib.login('ada', password)
        return [got, await this.mailbox.receive()]
      },
    })
    const opts = { db: join(dir, 'w.db'), threads: { t }, libraries: { lib }, ioLibs: false as const, dumps: join(dir, 'dumps'), durability: 'sync' as const }
    let weave = await Weave.open({ ...opts, secrets: { lib: { login: ['1'] } } })
    const id = weave.spawn('t')
    await expect.poll(() => weave.journal.entries(id).length).toBe(1)
    await weave.close()
    // The `secrets` forgotten: the record says where its secret was; before, the call diverged,
    // and the divergence's message, with the password in it, became the thread's error.
    weave = await Weave.open(opts)
    weave.send(id, 'go')
    expect(await weave.join(id)).toMatchObject({ status: 'done', result: ['ada:20', 'go'] })
    await weave.close()
    expect(readFileSync(join(dir, 'w.db')).includes(password)).toBe(false)
  })

  test('a library that marks by value (set("pw", v) secret, set("name", v) not) still resumes: a call is marked at a recorded place only where its record holds it so', async () => {
    const dir = tempDir()
    const kv = {
      default: {
        async set(k: string) {
          return k
        },
      },
      secrets: { args: (m: string, a: readonly unknown[], mark: (v: unknown) => string) => (m === 'set' && a[0] === 'pw' ? [a[0], mark(a[1])] : a) } as LibrarySecrets,
    }
    const t = thread({
      uses: ['kv' as 'mailbox', 'mailbox'],
      async does() {
        const v = this as unknown as { kv: { set(k: string, v: string): Promise<string> } }
        const out = [await v.kv.set('name', 'ada'), await v.kv.set('pw', 'hunter2-' + 'k'.repeat(12))]
        return [...out, await this.mailbox.receive()]
      },
    })
    const opts = { db: join(dir, 'w.db'), threads: { t }, libraries: { kv }, ioLibs: false as const, dumps: false as const, durability: 'sync' as const }
    let weave = await Weave.open(opts)
    const id = weave.spawn('t')
    await expect.poll(() => weave.journal.entries(id).length).toBe(2)
    await weave.close()
    // Before, its first call was marked at the place the second's secret is, and diverged.
    weave = await Weave.open(opts)
    weave.send(id, 'go')
    expect(await weave.join(id)).toMatchObject({ status: 'done', result: ['name', 'pw', 'go'] })
    await weave.close()
  })

  test('RAIMENT_SECRET_KEY too short is refused', () => {
    expect(() => Keyring.forJournal('x.db', { RAIMENT_SECRET_KEY: 'short' })).toThrow(/at least 16 characters/)
  })

  test('a key file that holds no key is refused when the weave opens, not at its first secret (whose outcome it would replace)', async () => {
    const db = join(tempDir(), 'w.db')
    writeFileSync(secretKeyFile(db), 'not a key\n')
    await expect(Weave.open({ db, threads: {}, ioLibs: false, dumps: false, durability: 'memory' })).rejects.toMatchObject({
      code: 'RAIMENT_SECRET_KEY_UNUSABLE',
      message: expect.stringContaining('does not hold a key') as unknown,
    })
    // Nothing was left open: with the file gone, the journal opens.
    rmSync(secretKeyFile(db))
    await (await Weave.open({ db, threads: {}, ioLibs: false, dumps: false, durability: 'memory' })).close()
  })
})

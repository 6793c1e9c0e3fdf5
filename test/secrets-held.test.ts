/**
 * A thread resumed under another secret key (its key file lost, or moved to a weave of another
 * key) is handed its sealed outcomes as markers. A user trial saw the next call send one on:
 * `Authorization: Bearer [secret:…:sealed:…]` reached the API. Such a call is held now, neither
 * made nor answered, and the weave says so with a code; started again with its key, the thread
 * makes the call with the secret itself.
 */
import { renameSync } from 'node:fs'
import { join } from 'node:path'
import { expect, test } from 'vitest'
import { thread, Weave, type LibrarySecrets } from 'raiment'
import { Keyring, secretKeyFile } from '../src/secrets/keyring.js'
import { CallSecrets } from '../src/secrets/calls.js'
import { tempDir } from './support/tmp.js'

const token = 'tok-' + 'x'.repeat(20)
/** `issue()` returns a secret (recorded sealed). */
const vault = {
  default: { async issue(): Promise<string> { return token } },
  secrets: { args: (_m, args) => args, outcome: (method, value, mark) => (method === 'issue' ? mark(value) : value) } satisfies LibrarySecrets,
}
/** What the API was sent, in this process. */
const sent: string[] = []
let charged: () => void = () => {}
const api = { default: { async charge(auth: string): Promise<string> { sent.push(auth); charged(); return 'charged' } } }

const charging = thread({
  uses: ['vault' as 'clock', 'api' as 'clock', 'gate' as 'clock'],
  async does() {
    const t = this as unknown as { vault: { issue(): Promise<string> }; api: { charge(a: string): Promise<string> }; gate: { wait(): Promise<void> } }
    const got = await t.vault.issue()
    await t.gate.wait()
    return t.api.charge(`Bearer ${got}`)
  },
})

test('a call that would send a secret sealed under a lost key is held, with a code; with the key back the thread makes it with the secret', async () => {
  const db = join(tempDir(), 'w.db')
  const warnings: Error[] = []
  let warned: (e: Error) => void = () => {}
  const open = (gate: object) =>
    Weave.open({ db, threads: { charging }, libraries: { vault, api, gate }, ioLibs: false, dumps: false, durability: 'memory', passivateAfter: false, onWarning: (w) => (warnings.push(w), warned(w)) })

  // 1. Runs until it waits at its gate (the sealed secret recorded), then the weave closes.
  let reached: () => void = () => {}
  const atGate = new Promise<void>((r) => (reached = r))
  const first = await open({ default: { wait: () => (reached(), new Promise(() => {})) } })
  const id = first.spawn('charging')
  await atGate
  await first.close()

  // 2. The key file is lost: resumed, the thread holds the secret's marker, and its charge is held.
  const keyFile = secretKeyFile(db)
  renameSync(keyFile, keyFile + '.away')
  const heldWarning = new Promise<Error>((r) => (warned = (w) => (w as { code?: string }).code === 'RAIMENT_SECRET_UNAVAILABLE' && r(w)))
  const second = await open({ default: { wait: async () => {} } })
  const sentOn = new Promise<never>((_, reject) => (charged = () => reject(new Error(`the charge was made: ${sent.join()}`))))
  const w = await Promise.race([heldWarning, sentOn])
  expect(w.message).toContain(`thread ${id} (charging) calls api.charge`)
  expect(w.message).toContain('RAIMENT_SECRET_KEY')
  await second.committed()
  expect(sent).toEqual([])
  expect(warnings.map((x) => (x as { code?: string }).code).sort()).toEqual(['RAIMENT_SECRET_KEY_MISMATCH', 'RAIMENT_SECRET_UNAVAILABLE'])
  await second.close()

  // 3. The key back: the thread goes on from its charge, sent once, with the secret itself.
  renameSync(keyFile + '.away', keyFile)
  warnings.length = 0
  const third = await open({ default: { wait: async () => {} } })
  try {
    expect(await third.join(id)).toMatchObject({ status: 'done', result: 'charged' })
    expect(sent).toEqual([`Bearer ${token}`])
    expect(warnings).toEqual([])
  } finally {
    await third.close()
  }
})

test('a marker is found wherever an argument holds it: bytes of an encoded body, a Map, a Set, Headers, an ArrayBuffer (a review)', () => {
  const keyring = Keyring.random()
  const marker = `[secret:${'k'.repeat(8)}:sealed:${'d'.repeat(30)}]`
  const held = CallSecrets.of(keyring, null).secrets!.withUnopened()
  const bytes = new TextEncoder().encode(JSON.stringify({ token: marker }))
  for (const args of [[`Bearer ${marker}`], [{ body: bytes }], [new Map([['auth', marker]])], [new Set([marker])], [new Headers({ authorization: `Bearer ${marker}` })], [bytes.buffer], [Buffer.from(marker)]]) {
    expect(held.holdsUnopened(args), Object.prototype.toString.call(args[0])).toBe(true)
  }
  expect(held.holdsUnopened([{ body: new TextEncoder().encode('{"token":"plain"}') }, new Map([['a', 'b']])])).toBe(false)
  // Only a thread handed an outcome it could not open is looked at.
  expect(CallSecrets.of(keyring, null).secrets!.holdsUnopened([marker])).toBe(false)
})


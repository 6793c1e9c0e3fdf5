/**
 * `raiment/eslint`, the determinism rules a user's project takes (issue 13, item 6): imported by
 * the package's own name, as a user's eslint.config.js does, they flag in a thread file what
 * breaks replay, each message naming the I/O library to use, and leave other files alone.
 */
import { ESLint } from 'eslint'
import tseslint from 'typescript-eslint'
import { describe, expect, it } from 'vitest'
import { threads } from 'raiment/eslint'
import { tempDir } from './support/tmp.js'

const THREAD = `import { readFileSync } from 'node:fs'
import { thread } from 'raiment'

export default thread({
  uses: ['clock'],
  async does() {
    const at = Date.now()
    const r = Math.random()
    setTimeout(() => {}, 10)
    return { at, r, home: process.env.HOME, text: readFileSync('x', 'utf8') }
  },
})
`

async function lint(file: string, text = THREAD): Promise<string[]> {
  const eslint = new ESLint({
    cwd: tempDir(),
    overrideConfigFile: true,
    overrideConfig: [{ files: ['**/*.ts'], ...tseslint.configs.base }, threads()] as never,
  })
  const [result] = await eslint.lintText(text, { filePath: file })
  return result!.messages.map((m) => `${m.ruleId}: ${m.message}`)
}

describe('raiment/eslint', () => {
  it('flags in threads/ each source of nondeterminism, naming the library to use', async () => {
    const messages = await lint('threads/clocky.ts')
    expect(messages).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^no-restricted-imports: .*File access in a thread is not recorded.*use this\.fs/),
        expect.stringMatching(/^no-restricted-syntax: Date\.now\(\) .*use this\.clock/),
        expect.stringMatching(/^no-restricted-syntax: Math\.random\(\) .*use this\.random/),
        expect.stringMatching(/^no-restricted-syntax: A timer .*this\.clock\.sleep\(ms\)/),
        expect.stringMatching(/^no-restricted-syntax: process\.env differs between runs/),
      ]),
    )
    expect(messages).toHaveLength(5)
  })

  // Each line is a thread body's statement (or an import) and what the rule must say of it.
  const CASES: Array<[string, RegExp]> = [
    ["import { setTimeout } from 'node:timers/promises'", /^no-restricted-imports: .*A timer .*use this\.clock .*this\.clock\.sleep\(ms\)/],
    ["import { setInterval } from 'node:timers'", /^no-restricted-imports: .*A timer .*use this\.clock/],
    ["import { randomUUID } from 'node:crypto'", /^no-restricted-imports: .*'randomUUID' import from 'node:crypto' is restricted.*crypto randomness .*use this\.random/],
    ["import { randomBytes } from 'crypto'", /^no-restricted-imports: .*crypto randomness .*use this\.random/],
    ["import { getRandomValues } from 'node:crypto'", /^no-restricted-imports: .*crypto randomness .*use this\.random/],
    ['const d = Date()', /^no-restricted-syntax: Date\(\) called as a function .*use this\.clock/],
    ['const t = process.hrtime()', /^no-restricted-syntax: process\.hrtime\(\) .*use this\.clock/],
    ['const t = process.hrtime.bigint()', /^no-restricted-syntax: process\.hrtime\(\) .*use this\.clock/],
    ["const r = await globalThis.fetch('http://x')", /^no-restricted-syntax: fetch\(\) .*use this\.fetch/],
    ['globalThis.setTimeout(() => {}, 1)', /^no-restricted-syntax: A timer .*use this\.clock/],
    ['const u = globalThis.crypto.randomUUID()', /^no-restricted-syntax: crypto randomness .*use this\.random/],
    ["import nodeCrypto from 'crypto'\nexport const n = nodeCrypto.randomInt(6)", /^no-restricted-syntax: crypto randomness .*use this\.random/],
    ['export const u = crypto.randomUUID()', /^no-restricted-syntax: crypto randomness .*use this\.random/],
    ["import { webcrypto } from 'node:crypto'\nexport const v = webcrypto.getRandomValues(new Uint8Array(4))", /^no-restricted-syntax: crypto randomness .*use this\.random/],
    ["const fs = await import('node:fs')", /^no-restricted-syntax: File access .*use this\.fs/],
    ["const h = await import('node:https')", /^no-restricted-syntax: Network access .*use this\.fetch/],
    ['const { env } = process', /^no-restricted-syntax: process\.env differs between runs/],
    ["import db from '../io-libs/db.ts'", /^no-restricted-syntax: An I\/O library's module called from a thread is not recorded.*use this\.NAME.*io-libs\//],
    ["import { query } from '../io-libs/db.ts'", /^no-restricted-syntax: An I\/O library's module called from a thread is not recorded/],
    ["const db = await import('../io-libs/db.ts')", /^no-restricted-syntax: An I\/O library's module called from a thread is not recorded/],
    ['export const f = (t: any) => Promise.race([t.mailbox.receive(), t.clock.sleep(500)])', /^no-restricted-syntax: A mailbox\.receive raced against another wait .* use mailbox\.receive\(\{ timeout \}\)/],
  ]

  it.each(CASES)('flags %s, naming the library to use', async (line, expected) => {
    const messages = await lint('threads/t.ts', `${line}\nexport {}\n`)
    expect(messages).toEqual([expect.stringMatching(expected)])
  })

  it("lets a thread call a library of its own whose method is named as crypto's (its calls are recorded)", async () => {
    const text = 'export function f(this: { ids: { randomUUID(): Promise<string> } }) {\n  return this.ids.randomUUID()\n}\n'
    expect(await lint('threads/t.ts', text)).toEqual([])
  })

  it("lets a thread import an I/O library's types, and a Date of a recorded time", async () => {
    const text = "import type { Db } from '../io-libs/db.ts'\nimport { type Row } from '../io-libs/db.ts'\nexport const f = (db: Db, r: Row, at: number) => [db, r, new Date(at)]\n"
    expect(await lint('threads/t.ts', text)).toEqual([])
  })

  it("lets a thread import an I/O library's error class (for instanceof), and name its this `self`", async () => {
    const text = "import { PaymentDeclined } from '../io-libs/payments.ts'\nexport function f(this: { fetch: { get(u: string): Promise<unknown> } }, e: unknown) {\n  const self = this\n  return e instanceof PaymentDeclined ? null : self.fetch.get('u')\n}\n"
    expect(await lint('threads/t.ts', text)).toEqual([])
  })

  it('leaves files outside threads/ alone (an I/O library may do I/O)', async () => {
    expect(await lint('io-libs/clocky.ts')).toEqual([])
  })

  it('takes the globs of thread files elsewhere', () => {
    expect(threads({ files: ['src/flows/**/*.ts'] }).files).toEqual(['src/flows/**/*.ts'])
  })
})

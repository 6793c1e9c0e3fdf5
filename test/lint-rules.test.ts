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

async function lint(file: string): Promise<string[]> {
  const eslint = new ESLint({
    cwd: tempDir(),
    overrideConfigFile: true,
    overrideConfig: [{ files: ['**/*.ts'], ...tseslint.configs.base }, threads()] as never,
  })
  const [result] = await eslint.lintText(THREAD, { filePath: file })
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

  it('leaves files outside threads/ alone (an I/O library may do I/O)', async () => {
    expect(await lint('io-libs/clocky.ts')).toEqual([])
  })

  it('takes the globs of thread files elsewhere', () => {
    expect(threads({ files: ['src/flows/**/*.ts'] }).files).toEqual(['src/flows/**/*.ts'])
  })
})

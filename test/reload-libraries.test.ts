/**
 * A reload loads changed thread files, not libraries: a thread file changed to use a library added
 * to io-libs after the weave started is refused with what to do (restart), not told to add the
 * file that is there.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { expect, it } from 'vitest'
import { Weave } from 'raiment'
import { tempDir } from './support/tmp.js'

const RAIMENT = new URL('../src/index.ts', import.meta.url).href

const user = (lib: string): string => `import { thread } from '${RAIMENT}'
export default thread({ uses: ['${lib}'], async does() { return 1 } })
`

it('a thread file changed to use a library added after the start: refused, saying to restart; an unknown one, saying to add it', async () => {
  const dir = tempDir('raiment-reload-libs-')
  mkdirSync(join(dir, 'threads'))
  mkdirSync(join(dir, 'io-libs'))
  writeFileSync(join(dir, 'package.json'), '{ "type": "module" }\n')
  writeFileSync(join(dir, 'threads', 'a.ts'), user('clock'))
  writeFileSync(join(dir, 'threads', 'b.ts'), user('clock'))
  const weave = await Weave.open({ db: join(dir, 'w.db'), threads: join(dir, 'threads'), ioLibs: join(dir, 'io-libs'), durability: 'memory', dumps: false })
  try {
    writeFileSync(join(dir, 'io-libs', 'vault.ts'), 'export default { async get() { return 1 } }\n')
    writeFileSync(join(dir, 'threads', 'a.ts'), user('vault'))
    writeFileSync(join(dir, 'threads', 'b.ts'), user('nowhere'))
    const report = await weave.reload()
    const errors = Object.fromEntries(report.types.map((t) => [t.type, t.error]))
    expect(errors['a']).toMatchObject({ code: 'RAIMENT_UNKNOWN_LIBRARY', message: expect.stringMatching(/uses I\/O library 'vault', added after this weave started: .* Restart the weave to load it$/) })
    expect(errors['b']).toMatchObject({ code: 'RAIMENT_UNKNOWN_LIBRARY', message: expect.stringMatching(/uses unknown I\/O library 'nowhere'; .*Add io-libs\/nowhere\.ts or fix the name in 'uses'\.$/) })
  } finally {
    await weave.close()
  }
})

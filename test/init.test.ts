/**
 * `raiment init`, run as a real child process of this checkout's bin/raiment.js: the files it
 * writes, how it completes an `npm init -y` package.json, what it refuses to overwrite, and the
 * raiment dependency spec it writes for each way Raiment can have been installed. That the
 * project it makes passes `npm test` at once is test/package.test.ts's part (it needs an install).
 */
import { describe, expect, test } from 'vitest'
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { readDump } from 'raiment/testing'
import { raimentSpec } from '../src/cli/init.js'
import { bash, raimentAsUser } from './support/raiment-process.js'
import { tempDir } from './support/tmp.js'

/** What `npm init -y` writes (npm 11). */
const NPM_INIT = {
  name: 'app',
  version: '1.0.0',
  description: '',
  main: 'index.js',
  scripts: { test: 'echo "Error: no test specified" && exit 1' },
  keywords: [],
  author: '',
  license: 'ISC',
  type: 'commonjs',
}

const FILES = ['package.json', 'tsconfig.json', 'eslint.config.js', 'threads/greet.ts', 'io-libs/greeting.ts', 'test/greet.test.ts', 'fixtures/greet-ada.json', 'README.md', '.gitignore']

describe('raiment init', () => {
  test('makes a new directory a project, with a fixture recorded from its own thread', async () => {
    const parent = tempDir('raiment-init-')
    const out = await raimentAsUser(parent, 'init', 'my-app')
    expect(out.stderr).toBe('')
    expect(out.code).toBe(0)
    const dir = join(parent, 'my-app')
    for (const f of FILES) expect(existsSync(join(dir, f)), f).toBe(true)
    const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'))
    expect(pkg).toMatchObject({ name: 'my-app', type: 'module', scripts: { test: 'npm run lint && npm run typecheck && vitest run', start: 'raiment start' } })
    expect(Object.keys(pkg.devDependencies).sort()).toEqual(['@types/node', 'eslint', 'typescript', 'typescript-eslint', 'vitest'])
    // From a checkout, the dependency is the checkout itself.
    expect(pkg.dependencies.raiment).toMatch(/^file:(\.\.\/)+/)
    const dump = readDump(join(dir, 'fixtures', 'greet-ada.json'))
    expect(dump.thread).toMatchObject({ type: 'greet', status: 'done', result: { greeted: 'ada', text: 'hello ada' } })
    expect(dump.entries.map((e) => e.call)).toEqual(['clock.now', 'greeting.compose', 'log.info'])
    expect(out.stdout).toContain('cd my-app')
  })

  test("completes npm init's package.json: type module, the test script replaced, the rest kept", async () => {
    const dir = tempDir('raiment-init-')
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ ...NPM_INIT, dependencies: { raiment: 'file:../raiment-0.1.0.tgz' } }, null, 2))
    writeFileSync(join(dir, '.gitignore'), 'mine\n')
    const out = await raimentAsUser(dir, 'init')
    expect(out.code).toBe(0)
    expect(out.stdout).toContain('"type": "module" (was "commonjs")')
    expect(out.stdout).toContain('.gitignore: there already, left as it was')
    const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'))
    expect(pkg).toMatchObject({ name: 'app', license: 'ISC', type: 'module', dependencies: { raiment: 'file:../raiment-0.1.0.tgz' } })
    expect(pkg.scripts.test).toBe('npm run lint && npm run typecheck && vitest run')
    expect(readFileSync(join(dir, '.gitignore'), 'utf8')).toBe('mine\n')
  })

  test('refuses to make the .js files of a CommonJS project ES modules, unless told to (--type-module)', async () => {
    const dir = tempDir('raiment-init-')
    const pkgText = JSON.stringify(NPM_INIT, null, 2)
    writeFileSync(join(dir, 'package.json'), pkgText)
    writeFileSync(join(dir, 'index.js'), "const { join } = require('node:path')\nconsole.log(join('a', 'b'))\n")
    mkdirSync(join(dir, 'node_modules', 'dep'), { recursive: true })
    writeFileSync(join(dir, 'node_modules', 'dep', 'x.js'), '')
    const out = await raimentAsUser(dir, 'init')
    expect(out.code).toBe(1)
    expect(out.stderr).toMatch(/^raiment: RAIMENT_INIT_COMMONJS: .*its \.js files as ES modules too: index\.js\. .*require\(\).*would fail \(node index\.js would stop working\)\. Nothing was written\. Rename the CommonJS ones to \.cjs .*raiment init --type-module\./)
    expect(readFileSync(join(dir, 'package.json'), 'utf8')).toBe(pkgText)
    expect(readdirSync(dir).sort()).toEqual(['index.js', 'node_modules', 'package.json'])
    expect((await bash(dir, 'node index.js')).stdout).toBe('a/b\n')

    const forced = await raimentAsUser(dir, 'init', '--type-module')
    expect(forced.code).toBe(0)
    expect(forced.stdout).toContain('warning: these now load as ES modules (--type-module): index.js')
    expect(JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).type).toBe('module')
  })

  test('overwrites nothing: an existing project file or a different script stops it before it writes', async () => {
    const dir = tempDir('raiment-init-')
    mkdirSync(join(dir, 'threads'))
    writeFileSync(join(dir, 'threads', 'greet.ts'), '// mine\n')
    const pkgText = JSON.stringify({ ...NPM_INIT, scripts: { start: 'node server.js' } }, null, 2)
    writeFileSync(join(dir, 'package.json'), pkgText)
    const out = await raimentAsUser(dir, 'init')
    expect(out.code).toBe(1)
    expect(out.stderr).toMatch(/^raiment: .*already has: package\.json script 'start' \("node server\.js"; init would set "raiment start"\), threads\/greet\.ts\. Nothing was written/)
    expect(readFileSync(join(dir, 'package.json'), 'utf8')).toBe(pkgText)
    expect(readFileSync(join(dir, 'threads', 'greet.ts'), 'utf8')).toBe('// mine\n')
    for (const f of FILES.slice(1)) if (f !== 'threads/greet.ts') expect(existsSync(join(dir, f)), f).toBe(false)
  })

  test('its .gitignore keeps out every file a weave leaves: git status shows none after a run', async () => {
    const dir = tempDir('raiment-init-')
    expect((await raimentAsUser(dir, 'init')).code).toBe(0)
    expect((await raimentAsUser(dir, 'spawn', 'greet', '{"name":"ada"}', '--wait')).code).toBe(0)
    expect(existsSync(join(dir, 'raiment.db-lock'))).toBe(true)
    const status = await bash(dir, 'git init -q && git status --porcelain --untracked-files=all')
    expect(status.code).toBe(0)
    expect(status.stdout.split('\n').filter((l) => /raiment\.db/.test(l))).toEqual([])
  })

  test("records its fixture with the template's libraries only: a library of the project that does not load yet stops nothing", async () => {
    const dir = tempDir('raiment-init-')
    mkdirSync(join(dir, 'io-libs'))
    const db = "import pg from 'pg'\n\nexport default { async query(sql: string) { return new pg.Pool().query(sql) } }\n"
    writeFileSync(join(dir, 'io-libs', 'db.ts'), db)
    const out = await raimentAsUser(dir, 'init')
    expect(out.stderr).toBe('')
    expect(out.code).toBe(0)
    expect(readFileSync(join(dir, 'io-libs', 'db.ts'), 'utf8')).toBe(db)
    expect(readDump(join(dir, 'fixtures', 'greet-ada.json')).entries.map((e) => e.call)).toEqual(['clock.now', 'greeting.compose', 'log.info'])
  })

  test('a write that fails part-way is undone: package.json as it was, no file or directory of its own left', async () => {
    const dir = tempDir('raiment-init-')
    const pkgText = JSON.stringify(NPM_INIT, null, 2)
    writeFileSync(join(dir, 'package.json'), pkgText)
    mkdirSync(join(dir, 'test'))
    // A dangling link is no file that exists, yet a new file cannot be written there.
    symlinkSync(join(dir, 'nowhere'), join(dir, 'test', 'greet.test.ts'))
    const out = await raimentAsUser(dir, 'init')
    expect(out.code).toBe(1)
    expect(out.stderr).toMatch(/^raiment: RAIMENT_INIT_FAILED: raiment init could not write the project in .*EEXIST.*removed what it had written/)
    expect(readFileSync(join(dir, 'package.json'), 'utf8')).toBe(pkgText)
    expect(readdirSync(dir).sort()).toEqual(['package.json', 'test'])
    expect(readdirSync(join(dir, 'test'))).toEqual(['greet.test.ts'])
  })

  test('an ESLint config of another extension is a conflict too: ESLint would read only eslint.config.js', async () => {
    const dir = tempDir('raiment-init-')
    for (const f of ['eslint.config.mjs', 'eslint.config.cjs', 'eslint.config.ts', 'eslint.config.mts', 'eslint.config.cts']) {
      writeFileSync(join(dir, f), 'export default []\n')
      const out = await raimentAsUser(dir, 'init')
      expect(out.code, f).toBe(1)
      expect(out.stderr, f).toContain(`RAIMENT_INIT_CONFLICT: raiment init changes no file that exists, and this directory already has: ${f} (ESLint would read init's eslint.config.js instead`)
      expect(readdirSync(dir), f).toEqual([f])
      rmSync(join(dir, f))
    }
  })

  test('a file where init would make a directory stops it before it writes', async () => {
    const dir = tempDir('raiment-init-')
    writeFileSync(join(dir, 'threads'), 'mine\n')
    const out = await raimentAsUser(dir, 'init')
    expect(out.code).toBe(1)
    expect(out.stderr).toMatch(/RAIMENT_INIT_CONFLICT: .*already has: threads \(a file, where init would make a directory\)\. Nothing was written/)
    expect(readdirSync(dir)).toEqual(['threads'])
  })
})

describe('what init says', () => {
  test('a file given as DIR is a coded error, and nothing is written', async () => {
    const dir = tempDir('raiment-init-')
    writeFileSync(join(dir, 'afile'), 'mine\n')
    const out = await raimentAsUser(dir, 'init', 'afile')
    expect(out.code).toBe(1)
    expect(out.stderr).toBe('raiment: RAIMENT_INVALID_ARGUMENT: raiment init: afile is a file, not a directory: give the directory to make the project in (made if missing), or none for this one\n')
    expect(readdirSync(dir)).toEqual(['afile'])
  })

  test('its "cd" line reads back in a shell: a path with spaces quoted, one with a leading dash not an option', async () => {
    const parent = tempDir('raiment-init-')
    for (const [name, shown] of [['My App', "'My App'"], ['-x', './-x'], ["it's", "'it'\\''s'"]] as const) {
      const out = await raimentAsUser(parent, 'init', '--', name)
      expect(out.code, name).toBe(0)
      expect(out.stdout, name).toContain(`\n  cd ${shown}\n`)
      const cd = await bash(parent, `cd ${shown} && pwd`)
      expect(cd.stdout.trim(), name).toBe(join(parent, name))
    }
  })
})

describe('the raiment dependency init writes', () => {
  const own = (root: string) => ({ root, json: { name: 'raiment', version: '1.2.3' } })

  test('the spec the installing project (or npx) used, a file: path made relative to the new project', () => {
    const base = tempDir('raiment-spec-')
    const npx = join(base, 'cache', '_npx', 'abc')
    mkdirSync(join(npx, 'node_modules', 'raiment'), { recursive: true })
    writeFileSync(join(npx, 'package.json'), JSON.stringify({ dependencies: { raiment: 'file:../../../dl/raiment-1.2.3.tgz' } }))
    expect(raimentSpec(join(base, 'work', 'app'), own(join(npx, 'node_modules', 'raiment')))).toBe('file:../../dl/raiment-1.2.3.tgz')

    const git = join(base, 'gitproj')
    mkdirSync(join(git, 'node_modules', 'raiment'), { recursive: true })
    writeFileSync(join(git, 'package.json'), JSON.stringify({ dependencies: { raiment: 'git+https://example.com/raiment.git#v1' } }))
    expect(raimentSpec(join(base, 'app'), own(join(git, 'node_modules', 'raiment')))).toBe('git+https://example.com/raiment.git#v1')
  })

  test('a version range when it came from the registry or nothing says where from; a checkout by its path', () => {
    const base = tempDir('raiment-spec-')
    const reg = join(base, 'reg')
    mkdirSync(join(reg, 'node_modules', 'raiment'), { recursive: true })
    writeFileSync(join(reg, 'package.json'), JSON.stringify({ dependencies: { other: '1' } }))
    expect(raimentSpec(join(base, 'app'), own(join(reg, 'node_modules', 'raiment')))).toBe('^1.2.3')
    expect(raimentSpec(join(base, 'app'), own(join(base, 'src', 'raiment')))).toBe('file:../src/raiment')
  })
})

/**
 * Raiment as a dependency of a user's own app, the way a user takes it, from `npm pack`, in a
 * temporary directory: `npm init -y` (a CommonJS project), `npm install` of the tarball, a
 * first thread file, then `npx raiment init`, `npm install`, `npm test`; `Weave.open` in plain
 * `node` on the TypeScript thread and library; a dump replayed by the installed CLI in a
 * directory with no node_modules.
 *
 * One test, because installs take time: npm runs from its cache (--prefer-offline), and
 * better-sqlite3's install script takes a prebuilt binary, as it does from GitHub on a machine
 * that reaches it, from a local directory (prebuild-install's `local_prebuilds`) holding the
 * binary this checkout already built, instead of compiling it for minutes.
 */
import { expect, test } from 'vitest'
import { execFile } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { tempDir } from './support/tmp.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const run = promisify(execFile)

interface Out {
  code: number
  stdout: string
  stderr: string
}

/** The environment of a user's shell: none of the test runner's or npm's own variables. */
function userEnv(prebuilds: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) if (!/^(VITEST|npm_|NODE_ENV$|NODE_OPTIONS$|RAIMENT_)/i.test(k)) env[k] = v
  env.npm_config_better_sqlite3_local_prebuilds = prebuilds
  return env
}

async function sh(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<Out> {
  try {
    const { stdout, stderr } = await run(cmd, args, { cwd, env, maxBuffer: 64 << 20 })
    return { code: 0, stdout, stderr }
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string }
    return { code: typeof err.code === 'number' ? err.code : -1, stdout: err.stdout ?? '', stderr: err.stderr ?? String(e) }
  }
}

/** `sh`, expecting success: the output of a failure is in the assertion's message. */
async function ok(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<Out> {
  const out = await sh(cmd, args, cwd, env)
  expect(out.code, `${cmd} ${args.join(' ')} in ${cwd}:\n${out.stdout}\n${out.stderr}`).toBe(0)
  return out
}

/** better-sqlite3's binary as prebuild-install names a prebuilt one, in `dir`. */
async function prebuild(dir: string): Promise<void> {
  const pkg = join(ROOT, 'node_modules', 'better-sqlite3')
  const { version } = JSON.parse(readFileSync(join(pkg, 'package.json'), 'utf8')) as { version: string }
  // prebuild-install names a binary for musl (Alpine) `linuxmusl`, for glibc `linux`.
  const glibc = (process.report.getReport() as { header?: { glibcVersionRuntime?: string } }).header?.glibcVersionRuntime
  const libc = process.platform === 'linux' && glibc === undefined ? 'musl' : ''
  const name = `better-sqlite3-v${version}-node-v${process.versions.modules}-${process.platform}${libc}-${process.arch}.tar.gz`
  await run('tar', ['-czf', join(dir, name), '-C', pkg, 'build/Release/better_sqlite3.node'])
}

/** The README's first thread, as a user copies it. */
const README_GREET = `import { thread } from 'raiment'

export default thread({
  uses: ['clock', 'log'],
  async does(params: { name: string }) {
    const at = await this.clock.now()
    await this.log.info(\`hello \${params.name} at \${new Date(at).toISOString()}\`)
    return { greeted: params.name }
  },
})
`

/** A library whose error class the user registers, a thread that fails with it, and a test of its replay. */
const PAY_FILES: Record<string, string> = {
  'io-libs/pay.ts': `import { registerError, type LibraryApi } from 'raiment'

export class Declined extends Error {
  constructor(readonly cents: number) {
    super(\`declined: \${cents} cents\`)
    this.name = 'Declined'
  }
}
registerError(Declined)

const pay = {
  async charge(cents: number): Promise<number> {
    if (cents > 100) throw new Declined(cents)
    return cents
  },
}
export default pay

declare module 'raiment' {
  interface Libraries {
    pay: LibraryApi<typeof pay>
  }
}
`,
  'threads/pay.ts': `import { thread } from 'raiment'

export default thread({
  uses: ['pay'],
  async does(p: { cents: number }) {
    return this.pay.charge(p.cents)
  },
})
`,
  // Vitest gives the test its own copy of io-libs/pay.ts, and Raiment imports another: the error
  // must still come back as the class the test imported.
  'test/pay.test.ts': `import { expect, test } from 'vitest'
import { record, replay } from 'raiment/testing'
import pay from '../threads/pay.ts'
import { Declined } from '../io-libs/pay.ts'

test('a recorded error replays as the class the test imported', async () => {
  const { dump, end } = await record(pay, { cents: 500 })
  expect(end.status).toBe('failed')
  const run = await replay(pay, dump)
  expect(run.error).toBeInstanceOf(Declined)
  expect((run.error as Declined).cents).toBe(500)
})
`,
}

/** A program of the user's: a weave on the project's threads, in plain node. */
const OPEN = `import { Weave } from 'raiment'
try {
  const weave = await Weave.open({ db: 'open.db', durability: 'memory', config: { logLevel: 'silent' } })
  const end = await weave.join(weave.spawn('greet', { name: 'bob' }))
  await weave.close()
  console.log(JSON.stringify(end))
} catch (e) {
  const codes = []
  for (let c = e; c; c = c.cause) codes.push(c.code)
  console.log(JSON.stringify({ codes, message: e.message }))
}
`

test('npm pack, install in an npm init project, npx raiment init, npm test; Weave.open in plain node; replay anywhere', async () => {
  const base = tempDir('raiment-package-')
  const prebuilds = join(base, 'prebuilds')
  mkdirSync(prebuilds)
  await prebuild(prebuilds)
  const env = userEnv(prebuilds)

  // The tarball: dist/ built by the prepare script (none is there before), the template in, no tests.
  rmSync(join(ROOT, 'dist'), { recursive: true, force: true })
  const packed = await ok('npm', ['pack', '--pack-destination', base, '--json'], ROOT, env)
  const { filename, files } = (JSON.parse(packed.stdout) as Array<{ filename: string; files: Array<{ path: string }> }>)[0]!
  const paths = files.map((f) => f.path)
  expect(paths).toEqual(expect.arrayContaining(['dist/src/index.js', 'dist/src/index.d.ts', 'dist/io-libs/clock.js', 'dist/src/cli/init.js', 'bin/raiment.js', 'bin/resolve-hooks.js', 'lint/threads.js', 'template/threads/greet.ts']))
  // Of bench/, only the figure docs/performance.md shows.
  expect(paths.filter((p) => (/^(test|fixtures|threads|bench)\//.test(p) && p !== 'bench/results/compare.svg') || (/\.test\.ts$/.test(p) && !p.startsWith('template/')))).toEqual([])

  const app = join(base, 'app')
  mkdirSync(app)
  const install = ['install', '--prefer-offline', '--no-audit', '--no-fund']
  await ok('npm', ['init', '-y'], app, env)
  await ok('npm', [...install, join(base, filename)], app, env)

  // npm init's "type": "commonjs": the README's thread fails, from the CLI and from the API, with
  // what to change.
  mkdirSync(join(app, 'threads'))
  writeFileSync(join(app, 'threads', 'greet.ts'), README_GREET)
  writeFileSync(join(app, 'open.mjs'), OPEN)
  const cli = await sh('npx', ['raiment', 'spawn', 'greet', '{"name":"ada"}', '--wait'], app, env)
  expect(cli.code).toBe(1)
  expect(cli.stderr).toMatch(/greet\.ts loads as CommonJS because .*package\.json says "type": "commonjs" .*npm pkg set type=module/)
  // The weave opens without the type (reported as a warning); spawning it says why.
  const api = JSON.parse((await ok('node', ['open.mjs'], app, env)).stdout) as { codes: string[]; message: string }
  expect(api.codes.slice(0, 3)).toEqual(['RAIMENT_THREAD_TYPE_UNAVAILABLE', 'RAIMENT_INVALID_THREAD_MODULE', 'RAIMENT_COMMONJS_MODULE'])
  expect(api.message).toMatch(/greet\.ts loads as CommonJS because .*package\.json says "type": "commonjs" .*npm pkg set type=module/)

  // init refuses to overwrite the thread file, and writes nothing; without it, it makes the project.
  const refused = await sh('npx', ['raiment', 'init'], app, env)
  expect(refused.code).toBe(1)
  expect(refused.stderr).toContain('already has: threads/greet.ts. Nothing was written')
  expect(JSON.parse(readFileSync(join(app, 'package.json'), 'utf8')).type).toBe('commonjs')
  rmSync(join(app, 'threads'), { recursive: true })
  const made = await ok('npx', ['raiment', 'init'], app, env)
  expect(made.stdout).toContain('"type": "module" (was "commonjs")')
  const pkg = JSON.parse(readFileSync(join(app, 'package.json'), 'utf8')) as { dependencies: Record<string, string> }
  expect(pkg.dependencies.raiment).toBe(`file:../${filename}`)

  await ok('npm', install, app, env)
  for (const [file, text] of Object.entries(PAY_FILES)) writeFileSync(join(app, file), text)
  const tested = await ok('npm', ['test'], app, env)
  // eslint-disable-next-line no-control-regex
  expect(tested.stdout.replace(/\x1b\[[0-9;]*m/g, '')).toMatch(/Tests +2 passed/)

  // Plain node: the TypeScript thread and I/O library load through the API.
  const opened = JSON.parse((await ok('node', ['open.mjs'], app, env)).stdout) as unknown
  expect(opened).toMatchObject({ type: 'greet', status: 'done', result: { greeted: 'bob', text: 'hello bob' } })

  // The installed CLI replays the project's fixture where there is no node_modules.
  const elsewhere = join(base, 'elsewhere')
  cpSync(join(app, 'threads'), join(elsewhere, 'threads'), { recursive: true })
  cpSync(join(app, 'fixtures', 'greet-ada.json'), join(elsewhere, 'greet-ada.json'))
  expect(readdirSync(elsewhere).sort()).toEqual(['greet-ada.json', 'threads'])
  const replayed = await ok('node', [join(app, 'node_modules', 'raiment', 'bin', 'raiment.js'), 'replay', 'greet-ada.json', '--threads', 'threads'], elsewhere, env)
  expect(replayed.stdout).toContain('which equals the recorded result')

  // The links of the README and the docs to files (a doc, a picture) lead somewhere in the
  // installed package too.
  const installed = join(app, 'node_modules', 'raiment')
  const pages = ['README.md', ...readdirSync(join(installed, 'docs')).filter((f) => f.endsWith('.md')).map((f) => join('docs', f))]
  const links = pages.flatMap((page) =>
    [...readFileSync(join(installed, page), 'utf8').matchAll(/\]\(([^)#:\s]+)[)#]/g)].map((m) => join(dirname(page), m[1]!)),
  )
  expect(links.filter((l) => l.startsWith('docs/')).length).toBeGreaterThan(5)
  expect([...new Set(links.filter((l) => !existsSync(join(installed, l))))]).toEqual([])
}, 600_000)

/**
 * `raiment init [DIR]`: makes DIR (default: here) a Raiment project that works at once: after
 * `npm install`, `npm test` passes. It writes the files of template/ (a thread type, an I/O
 * library, a replay test, tsconfig.json, eslint.config.js), a README.md and a .gitignore where
 * there are none, the test's fixture (recorded by running the thread), and writes or completes
 * package.json (INIT_FILES lists them all).
 *
 * It changes no file that exists: a project file already there, or a script of package.json that
 * says something else, stops it before it writes anything (InitConflict). All that can fail is
 * done before the first write (the fixture is recorded from template/ itself, never with the
 * project's own io-libs/), and a write that fails all the same is undone (InitFailed): a failed
 * init leaves the directory as it was. package.json itself is
 * completed, not replaced: `"type": "module"` (npm init's `commonjs` cannot load thread types),
 * the scripts it lacks, the raiment dependency (the spec this Raiment was installed from) and the
 * development dependencies.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, rmSync, statSync, writeFileSync, type Dirent } from 'node:fs'
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import { dumpText } from '../dump.js'
import { InitCommonJs, InitConflict, InitFailed, InvalidArgument } from '../errors.js'
import { firstFew } from '../first-few.js'
import { importModule } from '../loader.js'
import { record } from '../testing.js'
import { isThreadType } from '../thread.js'
import { displayPath, say } from './common.js'

/** Files copied from template/, by path in the project. */
const TEMPLATE_FILES = ['tsconfig.json', 'eslint.config.js', 'threads/greet.ts', 'io-libs/greeting.ts', 'test/greet.test.ts']
/** Written only where there is none yet: a project often has its own already. */
const OPTIONAL_FILES = ['README.md', '.gitignore']
const FIXTURE = 'fixtures/greet-ada.json'
/** Every file init writes, for the docs' and --help's lists (test/docs-commands.test.ts holds them to it). */
export const INIT_FILES = ['package.json', ...TEMPLATE_FILES, FIXTURE, ...OPTIONAL_FILES]
/** ESLint's flat config files other than the one init writes: ESLint reads only the first it finds, eslint.config.js first. */
const OTHER_ESLINT_CONFIGS = ['eslint.config.mjs', 'eslint.config.cjs', 'eslint.config.ts', 'eslint.config.mts', 'eslint.config.cts']

const SCRIPTS: Record<string, string> = {
  start: 'raiment start',
  lint: 'eslint .',
  typecheck: 'tsc --noEmit',
  test: 'npm run lint && npm run typecheck && vitest run',
}
/** The test script `npm init` writes, which init replaces. */
const NPM_INIT_TEST = 'echo "Error: no test specified" && exit 1'
/** Development dependencies, at the versions Raiment itself is developed with. */
const DEV_DEPENDENCIES = ['@types/node', 'eslint', 'typescript', 'typescript-eslint', 'vitest']
/** Dependencies whose install scripts the project allows (npm's allowScripts): native builds. */
const ALLOW_SCRIPTS = ['better-sqlite3', 'esbuild']

const GITIGNORE = 'node_modules/\n*.db\n*.db-wal\n*.db-shm\n*.db-lock\ndumps/\n'

interface PackageJson {
  name?: string
  version?: string
  type?: string
  scripts?: Record<string, string>
  dependencies?: Record<string, string>
  devDependencies?: Record<string, string>
  allowScripts?: Record<string, boolean>
  [k: string]: unknown
}

/** Raiment's own package: where it lies and its package.json. */
function ownPackage(): { root: string; json: PackageJson } {
  for (const rel of ['../../', '../../../']) {
    const root = fileURLToPath(new URL(rel, import.meta.url))
    try {
      const json = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as PackageJson
      if (json.name === 'raiment') return { root: realpathSync(root), json }
    } catch {
      // not there: try the next place
    }
  }
  throw new Error("raiment init cannot find Raiment's own package.json")
}

export interface InitOptions {
  /** Set `"type": "module"` even where the project's .js files would then load as ES modules. */
  typeModule?: boolean
}

/** Runs `raiment init [dir]`; resolves to the exit code. */
export async function init(dir: string | undefined, options: InitOptions = {}): Promise<number> {
  const target = resolve(dir ?? '.')
  const shown = dir === undefined ? 'this directory' : displayPath(target)
  if (existsSync(target) && !statSync(target).isDirectory()) {
    throw new InvalidArgument(`raiment init: ${displayPath(target)} is a file, not a directory: give the directory to make the project in (made if missing), or none for this one`)
  }
  const own = ownPackage()
  const templates = join(own.root, 'template')

  const pkgFile = join(target, 'package.json')
  const existing = existsSync(pkgFile) ? readPackageJson(pkgFile) : null
  const { pkg, changes, conflicts } = completePackageJson(existing, target, own)
  for (const f of [...TEMPLATE_FILES, FIXTURE]) if (existsSync(join(target, f))) conflicts.push(f)
  for (const f of OTHER_ESLINT_CONFIGS) {
    if (existsSync(join(target, f))) conflicts.push(`${f} (ESLint would read init's eslint.config.js instead, and ignore it: move it away, run init, then bring its rules into eslint.config.js)`)
  }
  for (const d of parentDirs([...TEMPLATE_FILES, FIXTURE, ...OPTIONAL_FILES])) {
    if (existsSync(join(target, d)) && !statSync(join(target, d)).isDirectory()) conflicts.push(`${d} (a file, where init would make a directory)`)
  }
  if (conflicts.length > 0) throw new InitConflict(shown, conflicts)
  // "type": "module" makes Node load every .js file of the package as an ES module.
  const commonJs = existing?.type === 'module' ? [] : jsFiles(target)
  if (commonJs.length > 0 && options.typeModule !== true) throw new InitCommonJs(shown, commonJs)

  // Everything that can fail runs before a file is written: the fixture is recorded from
  // Raiment's own copy of the thread and its library, with none of the project's io-libs/ (one of
  // them may not load yet), and a write that fails all the same undoes the ones before it.
  const fixture = await recordFixture(templates)
  const skipped = OPTIONAL_FILES.filter((f) => existsSync(join(target, f)))
  const files = new Map<string, string>()
  for (const f of TEMPLATE_FILES) files.set(f, readFileSync(join(templates, f), 'utf8'))
  for (const f of OPTIONAL_FILES) if (!skipped.includes(f)) files.set(f, f === '.gitignore' ? GITIGNORE : readFileSync(join(templates, f), 'utf8'))
  files.set(FIXTURE, fixture)
  const written = writeAll(target, pkgFile, JSON.stringify(pkg, null, 2) + '\n', files)

  say(`raiment init: ${existing === null ? 'made' : 'completed'} a Raiment project in ${shown}`)
  say(`  package.json: ${existing === null ? 'written' : changes.length > 0 ? changes.join('; ') : 'unchanged'}`)
  for (const f of written) say(`  ${f}`)
  for (const f of skipped) say(`  ${f}: there already, left as it was`)
  if (commonJs.length > 0) say(`  warning: these now load as ES modules (--type-module): ${firstFew(commonJs)}`)
  say('Next:')
  if (dir !== undefined && target !== process.cwd()) say(`  cd ${shellPath(displayPath(target))}`)
  say('  npm install')
  say('  npm test')
  say(`  npx raiment spawn greet '{"name":"ada"}' --wait`)
  return 0
}

/**
 * Writes package.json (replacing it) and `files` (new files only) into `target`, and returns the
 * new files' paths; if a write fails, it undoes the ones before it (package.json back as it was,
 * the files and the directories it made removed) and throws.
 */
function writeAll(target: string, pkgFile: string, pkgText: string, files: ReadonlyMap<string, string>): string[] {
  const before = existsSync(pkgFile) ? readFileSync(pkgFile) : null
  const made: string[] = []
  const written: string[] = []
  const mkdir = (d: string): void => {
    const first = mkdirSync(d, { recursive: true })
    if (first !== undefined) made.push(first)
  }
  try {
    mkdir(target)
    writeFileSync(pkgFile, pkgText)
    for (const [f, text] of files) {
      mkdir(dirname(join(target, f)))
      writeFileSync(join(target, f), text, { flag: 'wx' })
      written.push(f)
    }
    return written
  } catch (e) {
    for (const f of written.reverse()) rmSync(join(target, f), { force: true })
    if (before !== null) writeFileSync(pkgFile, before)
    else rmSync(pkgFile, { force: true })
    for (const d of made.reverse()) rmSync(d, { recursive: true, force: true })
    throw new InitFailed(target, e)
  }
}

/**
 * The .js files of the package in `dir` (paths relative to it): not in node_modules, a dot
 * directory, or a directory with a package.json of its own (another package's scope).
 */
function jsFiles(dir: string): string[] {
  const out: string[] = []
  const walk = (rel: string): void => {
    let entries: Dirent[]
    try {
      entries = readdirSync(join(dir, rel), { withFileTypes: true })
    } catch {
      return // not there (a new directory), or unreadable: nothing of it to break
    }
    if (rel !== '' && entries.some((e) => e.name === 'package.json')) return
    for (const e of entries) {
      const path = rel === '' ? e.name : `${rel}/${e.name}`
      if (e.isDirectory() && e.name !== 'node_modules' && !e.name.startsWith('.')) walk(path)
      else if (e.isFile() && e.name.endsWith('.js')) out.push(path)
    }
  }
  walk('')
  return out.sort()
}

/** A path as a POSIX shell reads it back: quoted where it has to be, and never taken for an option. */
function shellPath(path: string): string {
  const p = path.startsWith('-') ? `./${path}` : path
  return /^[\w./:@%+=,-]+$/.test(p) ? p : `'${p.replaceAll("'", "'\\''")}'`
}

/** Up to five paths, then how many more. */
/** The directories that hold `files` (paths relative to the project), parents first. */
function parentDirs(files: readonly string[]): string[] {
  const dirs = new Set<string>()
  for (const f of files) {
    const parts = f.split('/').slice(0, -1)
    for (let i = 1; i <= parts.length; i++) dirs.add(parts.slice(0, i).join('/'))
  }
  return [...dirs]
}

function readPackageJson(file: string): PackageJson {
  let json: unknown
  try {
    json = JSON.parse(readFileSync(file, 'utf8'))
  } catch (e) {
    throw new InvalidArgument(`${file} is not valid JSON (${(e as Error).message}); fix it, then run raiment init again`)
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) throw new InvalidArgument(`${file} does not hold a JSON object; fix it, then run raiment init again`)
  return json as PackageJson
}

/**
 * The project's package.json with what a Raiment project needs, what was changed (in words) and
 * the scripts that say something else (conflicts).
 */
function completePackageJson(existing: PackageJson | null, target: string, own: { root: string; json: PackageJson }): { pkg: PackageJson; changes: string[]; conflicts: string[] } {
  const pkg: PackageJson = existing === null ? { name: packageName(target), version: '0.1.0', private: true } : { ...existing }
  const changes: string[] = []
  const conflicts: string[] = []
  if (pkg.type !== 'module') {
    changes.push(`"type": "module"${pkg.type === undefined ? '' : ` (was ${JSON.stringify(pkg.type)})`}`)
    pkg.type = 'module'
  }
  const scripts = { ...(pkg.scripts ?? {}) }
  const added: string[] = []
  for (const [name, command] of Object.entries(SCRIPTS)) {
    const had = scripts[name]
    if (had === command) continue
    if (had !== undefined && !(name === 'test' && had === NPM_INIT_TEST)) {
      conflicts.push(`package.json script '${name}' (${JSON.stringify(had)}; init would set ${JSON.stringify(command)})`)
      continue
    }
    scripts[name] = command
    added.push(name)
  }
  pkg.scripts = scripts
  if (added.length > 0) changes.push(`scripts ${added.join(', ')}`)

  if (pkg.dependencies?.raiment === undefined && pkg.devDependencies?.raiment === undefined) {
    const spec = raimentSpec(target, own)
    pkg.dependencies = { ...(pkg.dependencies ?? {}), raiment: spec }
    changes.push(`dependency raiment ${spec}`)
  }
  const devDeps = { ...(pkg.devDependencies ?? {}) }
  const addedDev: string[] = []
  for (const name of DEV_DEPENDENCIES) {
    const version = own.json.devDependencies?.[name]
    if (version === undefined || devDeps[name] !== undefined || pkg.dependencies?.[name] !== undefined) continue
    devDeps[name] = version
    addedDev.push(name)
  }
  pkg.devDependencies = devDeps
  if (addedDev.length > 0) changes.push(`devDependencies ${addedDev.join(', ')}`)
  const allow = { ...(pkg.allowScripts ?? {}) }
  // From git, npm runs Raiment's prepare script (its build) in the project's install.
  const fromGit = /^(git[+:]|github:|gitlab:|bitbucket:)/.test(pkg.dependencies?.raiment ?? pkg.devDependencies?.raiment ?? '')
  for (const name of fromGit ? [...ALLOW_SCRIPTS, 'raiment'] : ALLOW_SCRIPTS) allow[name] ??= true
  pkg.allowScripts = allow
  return { pkg, changes, conflicts }
}

/** A package name made of the directory's name (npm's rules: lower case, no spaces). */
function packageName(dir: string): string {
  const name = basename(dir).toLowerCase().replace(/[^a-z0-9._-]+/g, '-').replace(/^[._-]+/, '')
  return name === '' ? 'raiment-project' : name
}

/**
 * The dependency spec for this Raiment, as it was installed: the spec in the package.json of the
 * project (or npx cache) whose node_modules holds it, with a `file:` path made relative to the
 * new project; for a checkout of the repository, `file:` its path; else `^version`.
 */
export function raimentSpec(target: string, own: { root: string; json: PackageJson }): string {
  const fallback = `^${own.json.version ?? '0.0.0'}`
  const at = own.root.lastIndexOf(`${sep}node_modules${sep}`)
  if (at < 0) return fileSpec(own.root, target)
  const installRoot = own.root.slice(0, at)
  let spec: string | undefined
  try {
    const json = JSON.parse(readFileSync(join(installRoot, 'package.json'), 'utf8')) as PackageJson
    spec = json.dependencies?.raiment ?? json.devDependencies?.raiment
  } catch {
    // no package.json there: the lockfile may still say where it came from
  }
  if (spec === undefined) {
    try {
      const lock = JSON.parse(readFileSync(join(installRoot, 'node_modules', '.package-lock.json'), 'utf8')) as { packages?: Record<string, { resolved?: string }> }
      spec = lock.packages?.['node_modules/raiment']?.resolved
    } catch {
      // no lockfile either
    }
  }
  if (spec === undefined || /^https?:\/\/[^/]*registry/.test(spec)) return fallback
  if (spec.startsWith('file:')) {
    const path = spec.slice('file:'.length)
    return fileSpec(isAbsolute(path) ? path : resolve(installRoot, path), target)
  }
  return spec
}

function fileSpec(path: string, target: string): string {
  const rel = relative(target, path).split(sep).join('/')
  return `file:${rel === '' ? '.' : rel}`
}

/**
 * Runs the template's `greet` live once, with the built-in libraries and the template's own
 * io-libs/ (what `greet` uses), and returns its dump's text: the replay test's fixture.
 */
async function recordFixture(templates: string): Promise<string> {
  const mod = (await importModule(join(templates, 'threads', 'greet.ts'))) as { default?: unknown }
  if (!isThreadType(mod.default)) throw new Error('template/threads/greet.ts does not export a thread type')
  const { dump, end } = await record(mod.default, { name: 'ada' }, { name: 'greet', ioLibs: join(templates, 'io-libs'), config: { logLevel: 'silent' } })
  if (end.status !== 'done') throw new Error(`recording the fixture failed: ${end.status === 'failed' ? end.error.message : end.status}`)
  return dumpText(dump)
}

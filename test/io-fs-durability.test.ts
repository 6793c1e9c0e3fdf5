/**
 * fs under the weave's durability: with `sync`, what a call changed is fsynced (the file, and the
 * directory whose entries it changed) before the call returns, so before its outcome is recorded.
 * Seen for real: a weave child process runs under strace, which lists every fsync it makes, with
 * the path of the file or directory, and is killed (SIGKILL) at the crash point `after-call` of
 * its last fs call: the moment the call has returned and its outcome is not yet recorded.
 */
import { describe, expect, it } from 'vitest'
import { spawn, spawnSync } from 'node:child_process'
import { mkdirSync, readFileSync, realpathSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { thread, Weave } from 'raiment'
import { tempDir } from './support/tmp.js'
import { resultOf } from './support/io-libs.js'

const CI = process.env['CI'] === 'true'
const strace = spawnSync('strace', ['-V']).status === 0

/** The writes a thread makes, one call each; the child is killed after the last returns. */
const CALLS = 7
const childSource = (raiment: string) => `import { Weave, thread } from ${JSON.stringify(raiment)}
const [db, dir, durability] = process.argv.slice(2)
const files = thread({
  uses: ['fs'],
  async does(p) {
    await this.fs.writeFile(p.dir + '/new.txt', 'made here')
    await this.fs.appendFile(p.dir + '/log.txt', 'line\\n')
    await this.fs.mkdir(p.dir + '/a/b', { recursive: true })
    await this.fs.rm(p.dir + '/gone.txt')
    await this.fs.writeFile(p.dir + '/old.txt', 'replaced')
    // As a retry after a crash finds them: a directory made already, a file removed already.
    await this.fs.mkdir(p.dir + '/c', { recursive: true })
    await this.fs.rm(p.dir + '/missing.txt', { force: true })
  },
})
const weave = await Weave.open({ db, durability, threads: { files }, dumps: false })
await weave.join(weave.spawn('files', { dir }))
await weave.close()
`

/** Runs the child under strace, killed after its last call; the paths it fsynced, in order. */
async function fsyncedBy(durability: 'sync' | 'batched'): Promise<{ signal: NodeJS.Signals | null; fsynced: string[]; data: string; stderr: string }> {
  const dir = realpathSync(tempDir())
  const data = join(dir, 'data')
  mkdirSync(data)
  writeFileSync(join(data, 'gone.txt'), 'x')
  writeFileSync(join(data, 'old.txt'), 'y')
  mkdirSync(join(data, 'c'))
  const raiment = pathToFileURL(fileURLToPath(new URL('../src/index.ts', import.meta.url))).href
  const script = join(dir, 'child.mts')
  writeFileSync(script, childSource(raiment))
  const trace = join(dir, 'trace')
  // -y: each fd with its path; --seccomp-bpf: only fsyncs stop the child, so it runs at speed.
  const child = spawn(
    'strace',
    ['-f', '--seccomp-bpf', '-qq', '-y', '-e', 'trace=fsync,fdatasync', '-o', trace, process.execPath, '--conditions=raiment-source', '--import', 'tsx', script, join(dir, 'w.db'), data, durability],
    { env: { ...process.env, RAIMENT_CRASH_AT: `after-call:${CALLS}` }, stdio: ['ignore', 'pipe', 'pipe'] },
  )
  let stderr = ''
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')))
  child.stdout.on('data', (c: Buffer) => (stderr += c.toString('utf8')))
  // strace ends as its command did: killed by the same signal.
  const signal = await new Promise<NodeJS.Signals | null>((ok) => child.on('exit', (_code, sig) => ok(sig)))
  const fsynced = [...readFileSync(trace, 'utf8').matchAll(/\b(?:fsync|fdatasync)\(\d+<([^>]*)>/g)].map((m) => m[1]!)
  return { signal, fsynced, data, stderr }
}

describe.skipIf(!strace && !CI)('fs durability', () => {
  it("under 'sync', each change is fsynced (file and directory) before its call returns and is recorded", async () => {
    const { signal, fsynced, data, stderr } = await fsyncedBy('sync')
    expect(signal, stderr).toBe('SIGKILL')
    const ours = fsynced.filter((p) => p === data || p.startsWith(data + '/'))
    expect(new Set(ours)).toEqual(
      new Set([
        join(data, 'new.txt'), // writeFile: the file…
        data, // …and its directory (also for a file there already); so for log.txt, and for the rm of gone.txt
        join(data, 'log.txt'),
        join(data, 'a'), // mkdir -p a/b: b's entry in a, and a's in data
        join(data, 'old.txt'),
      ]),
    )
    // The file replaced, then its directory; then the directory again for the mkdir and the rm that
    // found nothing to do (a retry cannot tell its first attempt's unsynced change from nothing),
    // the last one before the weave was killed ahead of recording its outcome.
    expect(ours.slice(-4)).toEqual([join(data, 'old.txt'), data, data, data])
    expect(readFileSync(join(data, 'old.txt'), 'utf8')).toBe('replaced')
  })

  it("under 'batched', nothing of the calls is fsynced (the journal itself survives a crash of the process, not of the machine)", async () => {
    const { signal, fsynced, data, stderr } = await fsyncedBy('batched')
    expect(signal, stderr).toBe('SIGKILL')
    expect(fsynced.filter((p) => p === data || p.startsWith(data + '/'))).toEqual([])
    expect(readFileSync(join(data, 'old.txt'), 'utf8')).toBe('replaced')
  })
})

describe('fs durability, in process', () => {
  it("under 'sync', the calls do what they do under 'memory', with the same errors", async () => {
    const t = thread({
      uses: ['fs'],
      async does(p: { dir: string }) {
        const d = p.dir
        const out: unknown[] = []
        for (const f of [
          () => this.fs.writeFile(`${d}/f.txt`, 'one'),
          () => this.fs.writeFile(`${d}/f.txt`, new Uint8Array([0x74, 0x77, 0x6f])),
          () => this.fs.appendFile(`${d}/f.txt`, '+'),
          () => this.fs.appendFile(`${d}/g.txt`, 'new'),
          () => this.fs.readFile(`${d}/f.txt`),
          () => this.fs.writeFile(`${d}/none/f.txt`, 'x'),
          () => this.fs.appendFile(`${d}/none/f.txt`, 'x'),
          () => this.fs.writeFile(d, 'x'),
          () => this.fs.mkdir(`${d}/m/n`, { recursive: true }),
          () => this.fs.mkdir(`${d}/m/n`, { recursive: true }),
          () => this.fs.mkdir(`${d}/m`),
          () => this.fs.mkdir(`${d}/o`),
          () => this.fs.rm(`${d}/none/f.txt`, { force: true }),
          () => this.fs.rm(`${d}/none/f.txt`),
          () => this.fs.rm(`${d}/m`, { recursive: true }),
          () => this.fs.readdir(d),
        ]) {
          out.push(await f().then((v) => v ?? 'ok', (e: NodeJS.ErrnoException) => `${e.code} ${e.syscall} ${e.path === undefined ? '' : e.path.slice(d.length)}`))
        }
        return out
      },
    })
    const runIn = async (durability: 'sync' | 'memory') => {
      const dir = tempDir()
      const weave = await Weave.open({ db: join(dir, 'w.db'), durability, threads: { t }, dumps: false })
      try {
        mkdirSync(join(dir, 'data'))
        return resultOf(await weave.join(weave.spawn('t', { dir: join(dir, 'data') })))
      } finally {
        await weave.close()
      }
    }
    const sync = await runIn('sync')
    expect(sync).toEqual(await runIn('memory'))
    expect(sync).toEqual([
      'ok',
      'ok',
      'ok',
      'ok',
      'two+',
      'ENOENT open /none/f.txt',
      'ENOENT open /none/f.txt',
      'EISDIR open ',
      'ok',
      'ok',
      'EEXIST mkdir /m',
      'ok',
      'ok',
      'ENOENT lstat /none/f.txt',
      'ok',
      ['f.txt', 'g.txt', 'o'],
    ])
  })
})

describe.skipIf(process.getuid?.() !== 0)('fs durability, below a directory that may be entered but not read', () => {
  it("under 'sync', mkdir -p and its retry succeed as another user below a 0711 directory (it cannot be fsynced, and is left)", () => {
    const root = realpathSync(tempDir())
    spawnSync('chmod', ['0755', root])
    const locked = join(root, 'home')
    mkdirSync(locked, { mode: 0o711 })
    spawnSync('chmod', ['0711', locked])
    const mine = join(locked, 'user')
    mkdirSync(mine)
    spawnSync('chown', ['65534:65534', mine])
    const script = join(root, 'child.mts')
    const fsUrl = pathToFileURL(fileURLToPath(new URL('../io-libs/fs.ts', import.meta.url))).href
    writeFileSync(
      script,
      `const make = (await import(${JSON.stringify(fsUrl)})).default
const fs = make({ durability: 'sync' })
const out = []
for (let i = 0; i < 2; i++) out.push(await fs.mkdir(process.argv[2], { recursive: true }).then(() => 'ok', (e) => e.code + ' ' + e.message))
console.log(JSON.stringify(out))
`,
    )
    const r = spawnSync(process.execPath, ['--conditions=raiment-source', '--import', 'tsx', script, join(mine, 'data', 'x')], { uid: 65534, gid: 65534, encoding: 'utf8', cwd: fileURLToPath(new URL('..', import.meta.url)), env: { ...process.env, HOME: root } })
    expect(r.status, r.stderr).toBe(0)
    expect(JSON.parse(r.stdout.trim())).toEqual(['ok', 'ok'])
  })
})

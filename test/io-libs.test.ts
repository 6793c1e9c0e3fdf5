/**
 * The built-in I/O libraries random, log and fs, run as real threads in a real weave on a temp-dir
 * journal, against the real file system. Each library is also recorded and replayed with what it
 * touched gone (file deleted), and the resume cases run a real weave child process killed by a
 * named crash point. (fetch: test/io-fetch.test.ts; sqlite: test/io-sqlite.test.ts.)
 */
import { describe, expect, it } from 'vitest'
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { InvalidArgument, thread, Weave, type ThreadEnd } from 'raiment'
import { record, replay } from 'raiment/testing'
import { tempDir } from './support/tmp.js'
import { captureStderr, errorOf, resultOf, run } from './support/io-libs.js'

// ---- random ----------------------------------------------------------------------------------

describe('random', () => {
  const draws = thread({
    uses: ['random'],
    async does() {
      const ints: number[] = []
      for (let i = 0; i < 50; i++) ints.push(await this.random.int(-3, 4))
      const [f, u1, u2, b] = await Promise.all([this.random.float(), this.random.uuid(), this.random.uuid(), this.random.bytes(16)])
      return { ints, f, u1, u2, b }
    },
  })

  it('draws values in range, and a replay gets the same values from the record', async () => {
    const { dump, result } = await record(draws, undefined)
    const r = result!
    expect(r.ints.every((n) => Number.isInteger(n) && n >= -3 && n < 4)).toBe(true)
    expect(new Set(r.ints).size).toBeGreaterThan(3)
    expect(r.f).toBeGreaterThanOrEqual(0)
    expect(r.f).toBeLessThan(1)
    expect(r.u1).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
    expect(r.u2).not.toBe(r.u1)
    expect(r.b).toBeInstanceOf(Uint8Array)
    expect(r.b.length).toBe(16)
    const again = await replay(draws, dump)
    expect(again.status).toBe('done')
    expect(again.result).toEqual(r)
    expect(again.result!.b).toBeInstanceOf(Uint8Array)
    expect(again.calls.filter((c) => c.call === 'random.int')).toHaveLength(50)
  })

  it('refuses bad bounds with InvalidArgument, recorded and re-thrown on replay', async () => {
    const bad = thread({
      uses: ['random'],
      async does(p: { min: number; max: number }) {
        return await this.random.int(p.min, p.max)
      },
    })
    for (const [min, max, msg] of [
      [5, 5, /min < max/],
      [1.5, 3, /two whole numbers/],
      [0, 2 ** 50, /2\^48/],
    ] as const) {
      const err = errorOf(await run(bad, { min, max }))
      expect(err).toBeInstanceOf(InvalidArgument)
      expect(err.code).toBe('RAIMENT_INVALID_ARGUMENT')
      expect(err.message).toMatch(msg)
    }
    const { dump } = await record(bad, { min: 2, max: 1 })
    const again = await replay(bad, dump)
    expect(again.error).toBeInstanceOf(InvalidArgument)
    expect(again.error!.message).toBe('random.int(min, max) expects min < max (max is excluded), got 2 and 1')
    const bytes = thread({ uses: ['random'], async does() { return await this.random.bytes(-1) } })
    expect(errorOf(await run(bytes)).message).toMatch(/random\.bytes\(n\) expects a whole number of bytes from 0 to 1048576, got -1/)
  })
})

// ---- log -------------------------------------------------------------------------------------

describe('log', () => {
  const talk = thread({
    uses: ['log'],
    async does() {
      await this.log.debug('details', { n: 1 })
      await this.log.info('hello', { k: 1, s: 'x' })
      await this.log.warn('careful')
      await this.log.error('broken\nline two', { big: 2n })
      return 'ok'
    },
  })

  it('prints one line per call on stderr, with time, level, thread id, message and fields; debug is dropped by default', async () => {
    const saved = process.env.RAIMENT_LOG_LEVEL
    delete process.env.RAIMENT_LOG_LEVEL
    const cap = captureStderr()
    let end: ThreadEnd
    try {
      end = await run(talk)
    } finally {
      cap.restore()
      if (saved !== undefined) process.env.RAIMENT_LOG_LEVEL = saved
    }
    expect(resultOf(end)).toBe('ok')
    const lines = cap.lines(` ${end.id} `)
    expect(lines).toHaveLength(3)
    const time = String.raw`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z`
    const id = end.id.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')
    expect(lines[0]).toMatch(new RegExp(`^${time} info  ${id} hello \\{"k":1,"s":"x"\\}$`))
    expect(lines[1]).toMatch(new RegExp(`^${time} warn  ${id} careful$`))
    expect(lines[2]).toMatch(new RegExp(`^${time} error ${id} broken\\\\nline two \\{"big":"2"\\}$`))
  })

  it('RAIMENT_LOG_LEVEL sets the level; a bad value is a clear error when the weave opens', async () => {
    const saved = process.env.RAIMENT_LOG_LEVEL
    const levelsPrinted = async (level: string): Promise<string[]> => {
      process.env.RAIMENT_LOG_LEVEL = level
      const cap = captureStderr()
      try {
        const end = await run(talk)
        return cap.lines(` ${end.id} `).map((l) => l.split(' ')[1]!)
      } finally {
        cap.restore()
      }
    }
    try {
      expect(await levelsPrinted('debug')).toEqual(['debug', 'info', 'warn', 'error'])
      expect(await levelsPrinted('WARN')).toEqual(['warn', 'error'])
      expect(await levelsPrinted('silent')).toEqual([])
      process.env.RAIMENT_LOG_LEVEL = 'loud'
      const err = await Weave.open({ db: join(tempDir(), 'w.db'), threads: { talk }, dumps: false }).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(InvalidArgument)
      expect((err as Error).message).toBe('RAIMENT_LOG_LEVEL must be one of debug, info, warn, error, silent, got "loud"')
    } finally {
      if (saved === undefined) delete process.env.RAIMENT_LOG_LEVEL
      else process.env.RAIMENT_LOG_LEVEL = saved
    }
  })

  it('a replayed thread prints nothing, and bad arguments are refused', async () => {
    const { dump } = await record(talk, undefined)
    const cap = captureStderr()
    try {
      const again = await replay(talk, dump)
      expect(again.result).toBe('ok')
      expect(again.calls.map((c) => c.call)).toEqual(['log.debug', 'log.info', 'log.warn', 'log.error'])
    } finally {
      cap.restore()
    }
    expect(cap.lines(dump.thread.id)).toEqual([])
    const bad = thread({
      uses: ['log'],
      async does() {
        await this.log.info('x', [1, 2] as unknown as Record<string, unknown>)
      },
    })
    expect(errorOf(await run(bad)).message).toMatch(/log\.info\(message, fields\?\) expects fields to be a plain object/)
  })
})

// ---- fs --------------------------------------------------------------------------------------

describe('fs', () => {
  const files = thread({
    uses: ['fs'],
    async does(p: { dir: string }) {
      const d = `${p.dir}/data`
      await this.fs.mkdir(`${d}/sub/deeper`, { recursive: true })
      await this.fs.writeFile(`${d}/b.txt`, 'héllo')
      await this.fs.appendFile(`${d}/b.txt`, ' world')
      await this.fs.writeFile(`${d}/a.bin`, new Uint8Array([0, 1, 2, 255]))
      const text = await this.fs.readFile(`${d}/b.txt`)
      const bytes = await this.fs.readFile(`${d}/a.bin`, 'bytes')
      const names = await this.fs.readdir(d)
      const st = await this.fs.stat(`${d}/b.txt`)
      const dirSt = await this.fs.stat(`${d}/sub`)
      await this.fs.rm(`${d}/sub`, { recursive: true })
      await this.fs.rm(`${d}/missing`, { force: true })
      return { text, bytes, names, st, dirSt, after: await this.fs.readdir(d) }
    },
  })

  it('writes, reads, lists, stats and removes; replay gives the same outcomes with the files gone', async () => {
    const dir = tempDir()
    const { dump, result } = await record(files, { dir })
    const r = result!
    expect(r.text).toBe('héllo world')
    expect(r.bytes).toEqual(new Uint8Array([0, 1, 2, 255]))
    expect(r.bytes).toBeInstanceOf(Uint8Array)
    expect(r.names).toEqual(['a.bin', 'b.txt', 'sub'])
    expect(r.st).toEqual({ size: Buffer.byteLength('héllo world'), mtimeMs: expect.any(Number), isFile: true, isDirectory: false })
    expect(r.dirSt).toMatchObject({ isFile: false, isDirectory: true })
    expect(r.after).toEqual(['a.bin', 'b.txt'])
    expect(readFileSync(join(dir, 'data/b.txt'), 'utf8')).toBe('héllo world')

    rmSync(join(dir, 'data'), { recursive: true })
    const again = await replay(files, dump)
    expect(again.status).toBe('done')
    expect(again.result).toEqual(r)
    expect(existsSync(join(dir, 'data'))).toBe(false)
  })

  it('an ENOENT is recorded and re-thrown on replay with the same name, message, code and path', async () => {
    const dir = tempDir()
    const reader = thread({
      uses: ['fs'],
      async does(p: { file: string; catchIt: boolean }) {
        try {
          return await this.fs.readFile(p.file)
        } catch (e) {
          if (!p.catchIt) throw e
          const err = e as Error & { code: string }
          return { caught: err.code, name: err.name }
        }
      },
    })
    const file = join(dir, 'nope.txt')
    expect(resultOf(await run(reader, { file, catchIt: true }))).toEqual({ caught: 'ENOENT', name: 'Error' })
    const live = errorOf(await run(reader, { file, catchIt: false }))
    expect(live).toMatchObject({ code: 'ENOENT', syscall: 'open', path: file })

    const { dump, end } = await record(reader, { file, catchIt: false })
    expect(end.status).toBe('failed')
    writeFileSync(file, 'now it exists') // replay must not look
    const again = await replay(reader, dump)
    expect(again.status).toBe('failed')
    const err = again.error as Error & Record<string, unknown>
    expect(err).toBeInstanceOf(Error)
    expect(err.name).toBe('Error')
    expect(err.message).toBe(`ENOENT: no such file or directory, open '${file}'`)
    expect(err).toMatchObject({ code: 'ENOENT', errno: -2, syscall: 'open', path: file })
  })

  it('keeps the code of other errors (rm of a directory, mkdir of an existing one) and validates arguments', async () => {
    const dir = tempDir()
    mkdirSync(join(dir, 'd'))
    const t = thread({
      uses: ['fs'],
      async does(p: { dir: string }) {
        const codes: unknown[] = []
        for (const f of [
          () => this.fs.rm(`${p.dir}/d`),
          () => this.fs.mkdir(`${p.dir}/d`),
          () => this.fs.readdir(`${p.dir}/none`),
          () => this.fs.rm(`${p.dir}/d`, { recursive: 'yes' as unknown as boolean }),
          () => this.fs.readFile(`${p.dir}/d`, 'latin1' as 'utf8'),
          () => this.fs.writeFile(`${p.dir}/x`, 42 as unknown as string),
        ]) {
          codes.push(await f().then(() => 'ok', (e: Error & { code: string }) => e.code))
        }
        return codes
      },
    })
    expect(resultOf(await run(t, { dir }))).toEqual([
      'ERR_FS_EISDIR',
      'EEXIST',
      'ENOENT',
      'RAIMENT_INVALID_ARGUMENT',
      'RAIMENT_INVALID_ARGUMENT',
      'RAIMENT_INVALID_ARGUMENT',
    ])
  })

  it('resolves relative paths against the working directory', async () => {
    const dir = tempDir()
    const t = thread({
      uses: ['fs'],
      async does() {
        await this.fs.writeFile('relative.txt', 'here')
        return await this.fs.readdir('.')
      },
    })
    const cwd = process.cwd()
    process.chdir(dir)
    let end: ThreadEnd
    try {
      end = await run(t, undefined, { dir })
    } finally {
      process.chdir(cwd)
    }
    expect(resultOf(end)).toContain('relative.txt')
    expect(readFileSync(join(dir, 'relative.txt'), 'utf8')).toBe('here')
  })
})

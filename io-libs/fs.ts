/**
 * fs: the file system. Every outcome is recorded: what a thread read, and whether a write
 * succeeded, come back from the record on resume and replay without touching the disk.
 *
 * Relative paths resolve against the weave's working directory (`process.cwd()`) when the call
 * runs. Errors are Node's own (`code` ENOENT, EEXIST, EISDIR…, `syscall`, `path`); they are
 * recorded, and re-thrown on replay with the same name, message and fields.
 *
 * A call in flight when the weave died runs again on resume: `writeFile` is idempotent, and so are
 * `mkdir` with `recursive` and `rm` with `force` (without them, the second run fails with EEXIST or
 * ENOENT: the first did the effect); `appendFile` may then append twice.
 *
 * Under the weave's `sync` durability (the default) and `replicated`, a change is on disk before
 * the call returns, so before its outcome is recorded: a power loss cannot leave a write recorded
 * as done that the disk lost. `writeFile` and `appendFile` fsync the file and its directory;
 * `mkdir` fsyncs the parent of each directory on its path, `rm` the parent of its path: also
 * where nothing changed, since a retry after a crash cannot tell what its first attempt did.
 * Under `batched` and `memory` nothing is fsynced (the journal itself survives a crash of the
 * process there, not of the machine).
 */
import { describe } from './_describe.js'
import { appendFile, mkdir, open, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import { InvalidArgument } from 'raiment'
import type { LibraryApi, WeaveConfig } from 'raiment'

/** What `fs.stat` returns. */
export interface FileStat {
  /** Size in bytes. */
  size: number
  /** Last modification, ms since the epoch. */
  mtimeMs: number
  isFile: boolean
  isDirectory: boolean
}

function pathOf(method: string, path: unknown): string {
  if (typeof path !== 'string' || path === '') {
    throw new InvalidArgument(`fs.${method} expects a path as a non-empty string, got ${JSON.stringify(path) ?? String(path)}`)
  }
  return resolve(path)
}

function dataOf(method: string, data: unknown): string | Uint8Array {
  if (typeof data === 'string' || data instanceof Uint8Array) return data
  throw new InvalidArgument(`fs.${method}(path, data) expects data as a string or a Uint8Array, got ${describe(data)}`)
}

function optionsOf<K extends string>(method: string, options: unknown, keys: readonly K[]): Partial<Record<K, boolean>> {
  if (options === undefined) return {}
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new InvalidArgument(`fs.${method} expects options as an object { ${keys.join(', ')} }, got ${describe(options)}`)
  }
  for (const [k, v] of Object.entries(options)) {
    if (!keys.includes(k as K)) throw new InvalidArgument(`fs.${method}: unknown option '${k}'; the options are: ${keys.join(', ')}`)
    if (v !== undefined && typeof v !== 'boolean') throw new InvalidArgument(`fs.${method}: option '${k}' must be true or false, got ${describe(v)}`)
  }
  return options
}

/**
 * Fsyncs the directory `dir`: an entry made, removed or renamed in it is on disk. A directory this
 * process may not read (mode 0711, as many home directories) cannot be fsynced, and is left: an
 * entry made in it by this call would have needed more than its rights there, in practice.
 */
async function syncDir(dir: string): Promise<void> {
  let fh
  try {
    fh = await open(dir, 'r')
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    if (code === 'EACCES' || code === 'EPERM') return
    throw e
  }
  try {
    await fh.sync()
  } finally {
    await fh.close()
  }
}

/**
 * Writes `data` to `path`, replacing it (`w`) or appending to it (`a`), as Node's writeFile and
 * appendFile do (the same errors), then fsyncs the file and its directory. The directory too when
 * the file was there already: an attempt of this call killed after it made the file and before
 * that fsync, then a retry that found the file, would leave its entry unsynced, recorded as done.
 */
async function write(path: string, data: string | Uint8Array, flag: 'w' | 'a'): Promise<void> {
  const fh = await open(path, flag)
  try {
    await fh.writeFile(data)
    await fh.sync()
  } finally {
    await fh.close()
  }
  await syncDir(dirname(path))
}

const make = (config: WeaveConfig) => {
  const durable = config.durability === 'sync' || config.durability === 'replicated' || config.durability === undefined
  return {
    /**
     * The content of a file: text (UTF-8, the default) or bytes.
     * @throws Node's error (`code` ENOENT, EISDIR, EACCES…)
     */
    async readFile(path: string, as: 'utf8' | 'bytes' = 'utf8'): Promise<string | Uint8Array> {
      const p = pathOf('readFile', path)
      if (as === 'utf8') return await readFile(p, 'utf8')
      if (as === 'bytes') return new Uint8Array(await readFile(p))
      throw new InvalidArgument(`fs.readFile(path, as) expects as to be 'utf8' or 'bytes', got ${JSON.stringify(as) ?? String(as)}`)
    },

    /**
     * Replaces (or creates) a file with `data`; the directory must exist.
     * @throws Node's error (`code` ENOENT when the directory is missing, EISDIR…)
     */
    async writeFile(path: string, data: string | Uint8Array): Promise<void> {
      const p = pathOf('writeFile', path)
      const d = dataOf('writeFile', data)
      await (durable ? write(p, d, 'w') : writeFile(p, d))
    },

    /**
     * Appends `data` to a file, creating it if needed. Not idempotent: a call in flight at a crash
     * runs again on resume and may append twice.
     * @throws Node's error (`code` ENOENT when the directory is missing…)
     */
    async appendFile(path: string, data: string | Uint8Array): Promise<void> {
      const p = pathOf('appendFile', path)
      const d = dataOf('appendFile', data)
      await (durable ? write(p, d, 'a') : appendFile(p, d))
    },

    /**
     * The names in a directory, sorted (by UTF-16 code unit), without `.` and `..`.
     * @throws Node's error (`code` ENOENT, ENOTDIR…)
     */
    async readdir(path: string): Promise<string[]> {
      return (await readdir(pathOf('readdir', path))).sort()
    },

    /**
     * Size, modification time and kind of a file or directory (symbolic links are followed).
     * @throws Node's error (`code` ENOENT…)
     */
    async stat(path: string): Promise<FileStat> {
      const s = await stat(pathOf('stat', path))
      return { size: s.size, mtimeMs: s.mtimeMs, isFile: s.isFile(), isDirectory: s.isDirectory() }
    },

    /**
     * Creates a directory; with `recursive`, its missing parents too (and no error if it exists).
     * @throws Node's error (`code` EEXIST, ENOENT…)
     */
    async mkdir(path: string, options?: { recursive?: boolean }): Promise<void> {
      const o = optionsOf('mkdir', options, ['recursive'])
      const p = pathOf('mkdir', path)
      const recursive = o.recursive ?? false
      await mkdir(p, { recursive })
      if (!durable) return
      if (!recursive) return await syncDir(dirname(p))
      // Each directory on the path has its entry in its parent fsynced, also those that were there:
      // an attempt killed after making them and before its fsyncs, then a retry that found them,
      // would leave them unsynced. (An fsync of a directory with nothing new is cheap.)
      for (let d = p; dirname(d) !== d; d = dirname(d)) await syncDir(dirname(d))
    },

    /**
     * Removes a file, or with `recursive` a directory and its content; with `force`, a missing
     * path is not an error.
     * @throws Node's error (`code` ENOENT without force, ERR_FS_EISDIR for a directory without
     *   recursive…)
     */
    async rm(path: string, options?: { recursive?: boolean; force?: boolean }): Promise<void> {
      const o = optionsOf('rm', options, ['recursive', 'force'])
      const p = pathOf('rm', path)
      await rm(p, { recursive: o.recursive ?? false, force: o.force ?? false })
      // Also when nothing was there (with force): an attempt killed after removing it and before
      // its fsync, then this retry. A missing parent has no entry to keep.
      if (durable) await syncDir(dirname(p)).catch((e: NodeJS.ErrnoException) => {
        if (e.code !== 'ENOENT' && e.code !== 'ENOTDIR') throw e
      })
    },
  }
}
export default make

type Base = LibraryApi<ReturnType<typeof make>>
export type FsApi = Omit<Base, 'readFile'> & {
  /** The content of a file as text (UTF-8). */
  readFile(path: string, as?: 'utf8'): Promise<string>
  /** The content of a file as bytes. */
  readFile(path: string, as: 'bytes'): Promise<Uint8Array>
}

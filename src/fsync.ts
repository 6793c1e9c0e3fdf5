// Making what was written durable: a file's data, or a directory's entries (a rename in it).
import { closeSync, fsyncSync, openSync } from 'node:fs'

/** Fsyncs `path`: a file (opened for writing, which some platforms need to flush it) or, with `dir`, a directory. */
export function fsyncPath(path: string, dir = false): void {
  const fd = openSync(path, dir ? 'r' : 'r+')
  try {
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
}

/** Makes a rename in `dir` durable. */
export function syncDir(dir: string): void {
  fsyncPath(dir, true)
}

import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach } from 'vitest'

const made: string[] = []

/** A fresh temporary directory, removed after the current test. */
export function tempDir(prefix = 'raiment-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  made.push(dir)
  return dir
}

afterEach(() => {
  for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true })
})

const lasting: string[] = []

/**
 * A fresh temporary directory, removed after the last test of the file: for tests that run
 * concurrently (`test.concurrent`), where the end of one test must not remove another's.
 */
export function sharedTempDir(prefix = 'raiment-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  lasting.push(dir)
  return dir
}

afterAll(() => {
  for (const d of lasting.splice(0)) rmSync(d, { recursive: true, force: true })
})

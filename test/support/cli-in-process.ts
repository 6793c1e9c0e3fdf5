/** `raiment …` run in this process (its `main`), with what it prints on stdout (and stderr). */
import { expect, vi } from 'vitest'
import { main } from '../../src/cli/main.js'

/** What the command prints on stdout; it must exit 0. */
export async function cliOut(argv: string[]): Promise<string> {
  const printed: string[] = []
  const write = vi.spyOn(process.stdout, 'write').mockImplementation((s) => (printed.push(String(s)), true))
  let code: number
  try {
    code = await main(argv)
  } finally {
    write.mockRestore()
  }
  expect(code, printed.join('')).toBe(0)
  return printed.join('')
}

/** Its exit status, and the writes it made to stdout and stderr, in order (one entry a write). */
export async function cliRun(argv: string[]): Promise<{ code: number; printed: string[] }> {
  const printed: string[] = []
  const out = (s: unknown): boolean => (printed.push(String(s)), true)
  const write = vi.spyOn(process.stdout, 'write').mockImplementation(out)
  const warn = vi.spyOn(process.stderr, 'write').mockImplementation(out)
  try {
    return { code: await main(argv), printed }
  } finally {
    write.mockRestore()
    warn.mockRestore()
  }
}

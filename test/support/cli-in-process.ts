/** `raiment …` run in this process (its `main`), with what it prints on stdout. */
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

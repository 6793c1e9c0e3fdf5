/**
 * The README is the quick start and the manual is docs/ by topic (issue 13, item 15), and they
 * stay true to the code: every `npx raiment` command line in their shell blocks names a command
 * and options the CLI has (asked of the real command, `raiment CMD --help`), every link between
 * the pages leads to a page that exists, and the README's first thread and first replay test are
 * the files `raiment init` writes (so test/init.test.ts and test/package.test.ts run them). What
 * the commands do is run by the suites of each command (and docs-supervision.test.ts runs a page
 * in order).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { INIT_FILES } from '../src/cli/init.js'
import { raiment, ROOT } from './support/raiment-process.js'

const PAGES = ['README.md', ...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)]
const text = (page: string): string => readFileSync(join(ROOT, page), 'utf8')

/** The `npx raiment …` command lines of a page's sh and console blocks, up to a comment or a pipe. */
function commandLines(page: string): string[] {
  const out: string[] = []
  for (const m of text(page).matchAll(/```(?:sh|console)\n([\s\S]*?)```/g)) {
    for (const line of m[1]!.split('\n')) {
      const at = line.indexOf('npx raiment ')
      if (at >= 0) out.push(line.slice(at + 'npx raiment '.length).replace(/\s+(#|\||&&|;).*$/, '').replace(/\)$/, ''))
    }
  }
  return out
}

/** The code of a ts block whose first line is the comment `// FILE…`, that comment dropped. */
function tsBlock(page: string, file: string): string {
  const block = [...text(page).matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!).find((b) => b.startsWith(`// ${file}`))
  expect(block, `a ts block of ${page} for ${file}`).toBeDefined()
  return block!.split('\n').slice(1).join('\n')
}

/** A file's code, its leading comment lines dropped. */
function code(file: string): string {
  const lines = readFileSync(join(ROOT, file), 'utf8').split('\n')
  return lines.slice(lines.findIndex((l) => !l.startsWith('//'))).join('\n')
}

describe('the README and docs/', () => {
  it('name only commands and options the CLI has', async () => {
    const byCommand = new Map<string, Set<string>>()
    for (const page of PAGES) {
      for (const line of commandLines(page)) {
        const [cmd, ...rest] = line.split(/\s+/)
        const opts = byCommand.get(cmd!) ?? new Set<string>()
        for (const w of rest) if (/^--[a-z-]+$/.test(w)) opts.add(w)
        for (const w of rest) if (/^-[a-z]$/.test(w)) opts.add(w)
        byCommand.set(cmd!, opts)
      }
    }
    expect([...byCommand.keys()].sort()).toEqual(expect.arrayContaining(['dead-letters', 'dump', 'init', 'kill', 'migrate', 'ps', 'replay', 'send', 'show', 'spawn', 'start', 'weaves']))
    const helps = await Promise.all([...byCommand.keys()].map((cmd) => raiment(ROOT, cmd, '--help')))
    ;[...byCommand].forEach(([cmd, opts], i) => {
      const help = helps[i]!
      expect(help.code, `raiment ${cmd} --help: ${help.stderr}`).toBe(0)
      for (const o of opts) expect(help.stdout, `raiment ${cmd} ${o}`).toMatch(new RegExp(`(^|[\\s,])${o}[\\s,]`, 'm'))
    })
  })

  it('link only to pages that exist, and the README links every page of docs/', () => {
    for (const page of PAGES) {
      for (const m of text(page).matchAll(/\]\(([^)#\s]+\.md)(#[^)]*)?\)/g)) {
        if (/^[a-z]+:/.test(m[1]!)) continue
        expect(existsSync(join(ROOT, dirname(page), m[1]!)), `${page} links ${m[1]}`).toBe(true)
      }
    }
    const readme = text('README.md')
    for (const page of PAGES.slice(1)) expect(readme, `README.md links ${page}`).toContain(`](${page})`)
  })

  it("show as the README's first thread and first replay test what raiment init writes", () => {
    expect(tsBlock('README.md', 'threads/greet.ts')).toBe(code('template/threads/greet.ts'))
    expect(tsBlock('README.md', 'test/greet.test.ts')).toBe(code('template/test/greet.test.ts'))
  })

  it('show as the time-skipping example of docs/testing.md a test that runs (test/reminder.test.ts)', () => {
    expect(tsBlock('docs/testing.md', 'test/reminder.test.ts')).toBe(code('test/reminder.test.ts'))
  })

  it('list every file raiment init writes, as its --help does', async () => {
    const help = await raiment(ROOT, 'init', '--help')
    const init = text('docs/cli.md').slice(text('docs/cli.md').indexOf('## `raiment init'))
    for (const f of INIT_FILES) {
      expect(text('README.md'), `README.md names ${f}`).toContain(`\`${f}\``)
      expect(init.slice(0, init.indexOf('\n## ', 3)), `docs/cli.md names ${f}`).toContain(`\`${f}\``)
      expect(help.stdout.replace(/\s+/g, ' '), `raiment init --help names ${f}`).toContain(f)
    }
  })

  it('keep the README a quick start: the manual is in docs/', () => {
    expect(text('README.md').split('\n').length).toBeLessThan(200)
  })
})

/**
 * A journal path in a directory that does not exist (a user trial): Weave.open said
 * NotARaimentDb ("unable to open database file… Pass another --db file"), CLI wording from the
 * API about a file that was never there. It says the directory does not exist, and creates
 * nothing.
 */
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { InvalidArgument, NotARaimentDb, thread, Weave } from 'raiment'
import { tempDir } from './support/tmp.js'

const noop = thread({ uses: ['clock'], async does() { return 1 } })

describe('a journal in a missing directory', () => {
  it('is refused, saying the directory does not exist', async () => {
    const dir = join(tempDir(), 'no', 'such')
    const err = await Weave.open({ db: join(dir, 'app.db'), threads: { noop }, ioLibs: false, dumps: false }).then(() => null, (e: unknown) => e)
    expect(err).toBeInstanceOf(InvalidArgument)
    expect(err).not.toBeInstanceOf(NotARaimentDb)
    expect((err as Error).message).toMatch(new RegExp(`directory of journal .*app\\.db \\(${dir.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}\\) does not exist; create it first`))
    expect((err as Error).message).not.toMatch(/--db/)
    expect(existsSync(dir)).toBe(false)
  })
})

/**
 * Two threads of one id leave two dumps (a user trial): a journal made again under the same weave
 * id (or a copy of one) numbers its threads from 1 again, and the dump of its failed `w/1`
 * overwrote the dump of the earlier journal's failed `w/1`. The earlier one is kept now, renamed
 * `<n>.<its created>.json`; a weave that writes the dumps a crash left missing writes one whose
 * path holds another thread's dump (it skipped it).
 */
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { expect, test } from 'vitest'
import { thread, Weave } from 'raiment'
import { readDump, type Dump } from 'raiment/testing'
import { tempDir } from './support/tmp.js'

const failing = thread({
  uses: [],
  async does(p: { why: string }) {
    throw new Error(p.why)
  },
})

async function failOnce(db: string, dumps: string, why: string): Promise<{ id: string; created: number }> {
  const weave = await Weave.open({ db, weaveId: 'w', durability: 'memory', threads: { failing }, dumps, ioLibs: false })
  try {
    const id = weave.spawn('failing', { why })
    expect(await weave.join(id)).toMatchObject({ status: 'failed' })
    return { id, created: weave.journal.thread(id)!.created }
  } finally {
    await weave.close()
  }
}

function dumpOf(file: string): Dump {
  return readDump(readFileSync(file, 'utf8'))
}

test('a dump of another thread of the same id is kept beside, not overwritten', async () => {
  const dir = tempDir()
  const dumps = join(dir, 'dumps')
  const first = await failOnce(join(dir, 'a.db'), dumps, 'the first')
  const second = await failOnce(join(dir, 'b.db'), dumps, 'the second')
  expect(second.id).toBe(first.id)
  expect(second.created).not.toBe(first.created)
  const file = join(dumps, 'w', '1.json')
  expect(dumpOf(file).thread.error?.message).toBe('the second')
  const kept = join(dumps, 'w', `1.${first.created}.json`)
  expect(dumpOf(kept).thread.error?.message).toBe('the first')
  expect(readdirSync(join(dumps, 'w')).sort()).toEqual(['1.json', `1.${first.created}.json`].sort())
})

// While replaying in recorded order, the first call of a key is counted by its recorded entry
// rather than in the weft's counts (src/weft.ts #count); the counts take those keys in later.
// These tests check that every ordinal comes out as if each call had been counted: a key called
// again later in the replay out of order, and keys called again once the thread runs live, with
// a new key first or not.
import { describe, expect, it } from 'vitest'
import { join } from 'node:path'
import { Weave, thread } from 'raiment'
import { encodeArgs, encodeValue } from '../src/encoding.js'
import { Journal } from '../src/journal.js'
import { tempDir } from './support/tmp.js'

declare module 'raiment' {
  interface Libraries {
    ro: { step(i: number): Promise<number> }
  }
}

const ro = {
  async step(i: number) {
    return i
  },
}

/** K = step(1), J = step(2), N = step(3). */
const programs = {
  // Record K#0 J#0 K#1: K again while J is the next entry, then K live (ordinal 2).
  reorder: thread({
    uses: ['ro'],
    async does() {
      await this.ro.step(1)
      const p = this.ro.step(1)
      await this.ro.step(2)
      await p
      return await this.ro.step(1)
    },
  }),
  // Record K#0: K again live (ordinal 1).
  again: thread({
    uses: ['ro'],
    async does() {
      await this.ro.step(1)
      return await this.ro.step(1)
    },
  }),
  // Record K#0 J#0: a new key live first (N#0), then K and J again (ordinal 1 each).
  later: thread({
    uses: ['ro'],
    async does() {
      await this.ro.step(1)
      await this.ro.step(2)
      await this.ro.step(3)
      await this.ro.step(2)
      return await this.ro.step(1)
    },
  }),
}

const records: Record<keyof typeof programs, Array<[number, number]>> = {
  reorder: [[1, 0], [2, 0], [1, 1]],
  again: [[1, 0]],
  later: [[1, 0], [2, 0]],
}

describe('ordinals across a replay and the live run after it', () => {
  it('are those every call counted would give', async () => {
    const file = join(tempDir(), 'ro.db')
    const journal = new Journal(file, { durability: 'memory' })
    const ids = new Map<string, string>()
    const insert = journal.db.prepare('INSERT INTO journal_main (thread, seq, key, ord, ok, outcome, started, duration) VALUES (?, ?, ?, ?, ?, ?, ?, 0)')
    journal.db.transaction(() => {
      for (const [type, rec] of Object.entries(records)) {
        const id = journal.nextThreadId()
        ids.set(type, id)
        journal.db.prepare("INSERT INTO threads (id, type, params, parent, status, created) VALUES (?, ?, 'U', NULL, 'running', 0)").run(id, type)
        rec.forEach(([arg, ord], seq) => insert.run(id, seq, 'ro.step:' + encodeArgs([arg]), ord, 1, encodeValue(arg), Date.now()))
      }
    })()
    journal.close()
    const weave = await Weave.open({ db: file, durability: 'memory', threads: programs, ioLibs: false, dumps: false, libraries: { ro } })
    try {
      for (const id of ids.values()) expect((await weave.join(id)).status).toBe('done')
      const calls = (type: string): string[] => weave.journal.entries(ids.get(type)!).map((e) => `${e[1].slice('ro.step:'.length)}#${e[2]}`)
      expect(calls('reorder')).toEqual(['[1]#0', '[2]#0', '[1]#1', '[1]#2'])
      expect(calls('again')).toEqual(['[1]#0', '[1]#1'])
      expect(calls('later')).toEqual(['[1]#0', '[2]#0', '[3]#0', '[2]#1', '[1]#1'])
    } finally {
      await weave.close()
    }
  })
})

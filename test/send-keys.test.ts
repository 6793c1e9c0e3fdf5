/**
 * Keyed sends from outside a thread (`weave.send(to, message, { key })`, `raiment send --key`,
 * src/send-keys.ts), on one weave with its journal in a temp dir: a key reaches its receiver
 * once, by id and by name, across a restart and a SIGKILL of the sending process; other keys
 * and other receivers are sent; a bad key is refused; a key past its 24 hours is pruned, and a
 * journal of the schema before the table gains it when opened.
 */
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { describe, expect, it } from 'vitest'
import { SEND_KEY_RETENTION_MS, type Weave } from 'raiment'
import { MIGRATIONS, SCHEMA_VERSION } from '../src/journal-schema.js'
import { cliRun } from './support/cli-in-process.js'
import { runChild, supportScript } from './support/child.js'
import { openCollecting } from './support/send-key-plan.js'
import { tempDir } from './support/tmp.js'
import { until } from './support/until.js'

/** Ends each collector and returns what each received. */
async function collected(weave: Weave, ids: string[]): Promise<unknown[][]> {
  for (const id of ids) weave.send(id, { stop: true })
  return Promise.all(ids.map(async (id) => ((await weave.join(id)) as { result: unknown[] }).result))
}

describe('keyed sends', () => {
  it('the same key twice reaches the receiver once; the second says it is a duplicate, with the first result', async () => {
    const weave = await openCollecting(join(tempDir(), 'w.db'), { durability: 'memory' })
    try {
      const t = weave.spawn('collect', { name: 'box' })
      await until('the name box', () => weave.journal.db.prepare("SELECT 1 FROM names WHERE name = 'box'").get() !== undefined)
      expect(weave.send(t, { i: 1 }, { key: 'k' })).toEqual({ delivered: true, to: t })
      expect(weave.send(t, { i: 2 }, { key: 'k' })).toEqual({ delivered: true, to: t, duplicate: true })
      await weave.committed()
      // By name: the same receiver, the same key.
      expect(weave.send('box', { i: 3 }, { key: 'k' })).toEqual({ delivered: true, to: t, duplicate: true })
      expect(await collected(weave, [t])).toEqual([[{ i: 1 }]])
    } finally {
      await weave.close()
    }
  })

  it('different keys, and the same key to different receivers, are all sent', async () => {
    const weave = await openCollecting(join(tempDir(), 'w.db'), { durability: 'memory' })
    try {
      const [a, b] = [weave.spawn('collect'), weave.spawn('collect')]
      weave.send(a, { i: 1 }, { key: 'k1' })
      weave.send(a, { i: 2 }, { key: 'k2' })
      weave.send(b, { i: 3 }, { key: 'k1' })
      weave.send(a, { i: 4 })
      weave.send(a, { i: 5 })
      expect(await collected(weave, [a, b])).toEqual([[{ i: 1 }, { i: 2 }, { i: 4 }, { i: 5 }], [{ i: 3 }]])
    } finally {
      await weave.close()
    }
  })

  it('a key to an ended thread is dead-lettered once; its retry says duplicate with the first result', async () => {
    const weave = await openCollecting(join(tempDir(), 'w.db'), { durability: 'memory' })
    try {
      const t = weave.spawn('collect')
      await collected(weave, [t])
      const first = weave.send(t, { i: 1 }, { key: 'k' })
      expect(first).toMatchObject({ delivered: false, to: t })
      expect(weave.send(t, { i: 1 }, { key: 'k' })).toEqual({ ...first, duplicate: true })
      await weave.committed()
      expect(weave.journal.db.prepare('SELECT count(*) FROM dead_letters').pluck().get()).toBe(1)
    } finally {
      await weave.close()
    }
  })

  it('refuses a key that is empty, too long or not a string, and options that are not an object or misspelt, with a code, and sends nothing', async () => {
    const weave = await openCollecting(join(tempDir(), 'w.db'), { durability: 'memory' })
    try {
      const t = weave.spawn('collect')
      for (const key of ['', 'x'.repeat(201), 7 as unknown as string]) {
        expect(() => weave.send(t, { i: 1 }, { key })).toThrow(expect.objectContaining({ code: 'RAIMENT_INVALID_ARGUMENT', message: expect.stringMatching(/^send: /) }))
      }
      // Options that are not an object, or a misspelt key (which would send without one): refused too, as for spawn.
      for (const opts of [null, 'k', { kye: 'k' }] as unknown as Array<{ key?: string }>) {
        expect(() => weave.send(t, { i: 1 }, opts)).toThrow(expect.objectContaining({ code: 'RAIMENT_INVALID_ARGUMENT', message: expect.stringMatching(/^send\(\): /) }))
        expect(() => weave.spawn('collect', undefined, opts as never)).toThrow(expect.objectContaining({ code: 'RAIMENT_INVALID_ARGUMENT', message: expect.stringMatching(/^spawn\(\): /) }))
      }
      expect(weave.send(t, { i: 2 }, { key: 'x'.repeat(200) })).toEqual({ delivered: true, to: t })
      expect(await collected(weave, [t])).toEqual([[{ i: 2 }]])
    } finally {
      await weave.close()
    }
  })

  it('a retry after the weave restarted is a duplicate', async () => {
    const db = join(tempDir(), 'w.db')
    let weave = await openCollecting(db)
    const t = weave.spawn('collect')
    weave.send(t, { i: 1 }, { key: 'k' })
    await weave.close()
    weave = await openCollecting(db)
    try {
      expect(weave.send(t, { i: 1 }, { key: 'k' })).toEqual({ delivered: true, to: t, duplicate: true })
      expect(await collected(weave, [t])).toEqual([[{ i: 1 }]])
    } finally {
      await weave.close()
    }
  })

  for (const when of ['before-commit', 'after-commit'] as const) {
    it(`a retry after the sending process was SIGKILLed ${when === 'before-commit' ? 'between the send and its commit' : 'after the commit'} delivers once`, async () => {
      const db = join(tempDir(), 'w.db')
      let weave = await openCollecting(db)
      const t = weave.spawn('collect', undefined, { id: 'c1' })
      await weave.close()
      const run = await runChild(supportScript('send-key-child.ts'), [db, t, when])
      expect(run.lines, run.stderr).toEqual(['sent'])
      expect(run.signal).toBe('SIGKILL')
      weave = await openCollecting(db)
      try {
        // The retry: sent when the first was lost with its batch, a duplicate when it was committed.
        expect(weave.send(t, { i: 1 }, { key: 'k' })).toEqual(when === 'before-commit' ? { delivered: true, to: t } : { delivered: true, to: t, duplicate: true })
        expect(await collected(weave, [t])).toEqual([[{ i: 1 }]])
      } finally {
        await weave.close()
      }
    }, 30_000)
  }

  it('a key is kept 24 hours: then pruned, and a retry is a new message', async () => {
    const db = join(tempDir(), 'w.db')
    let weave = await openCollecting(db)
    const t = weave.spawn('collect')
    weave.send(t, { i: 1 }, { key: 'old' })
    weave.send(t, { i: 2 }, { key: 'older' })
    await weave.close()
    const file = new Database(db)
    file.prepare("UPDATE send_keys SET at = at - ? WHERE key = 'old'").run(SEND_KEY_RETENTION_MS + 1_000)
    file.prepare("UPDATE send_keys SET at = at - ? WHERE key = 'older'").run(SEND_KEY_RETENTION_MS + 1_000)
    file.close()
    weave = await openCollecting(db)
    try {
      // Past its retention and not pruned yet: a new message all the same.
      expect(weave.send(t, { i: 3 }, { key: 'old' })).toEqual({ delivered: true, to: t })
      expect(weave.send(t, { i: 4 }, { key: 'old' })).toEqual({ delivered: true, to: t, duplicate: true })
      await weave.committed()
      // The first keyed send of a weave's run prunes what is past its retention.
      expect(weave.journal.db.prepare('SELECT key FROM send_keys ORDER BY key').pluck().all()).toEqual(['old'])
      expect(await collected(weave, [t])).toEqual([[{ i: 1 }, { i: 2 }, { i: 3 }]])
    } finally {
      await weave.close()
    }
  })

  it('a journal of the schema before keyed sends gains their table when a weave opens it', async () => {
    const db = join(tempDir(), 'w.db')
    let weave = await openCollecting(db)
    const t = weave.spawn('collect')
    await weave.close()
    const file = new Database(db)
    file.exec('DROP TABLE send_keys')
    // The version before the migration that made the table (later ones came after it).
    file.pragma(`user_version = ${MIGRATIONS.findIndex((m) => m.includes('CREATE TABLE IF NOT EXISTS send_keys'))}`)
    file.close()
    weave = await openCollecting(db)
    try {
      weave.send(t, { i: 1 }, { key: 'k' })
      expect(weave.send(t, { i: 1 }, { key: 'k' })).toMatchObject({ duplicate: true })
      expect(await collected(weave, [t])).toEqual([[{ i: 1 }]])
      expect(weave.journal.db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION)
    } finally {
      await weave.close()
    }
  })
})

describe('raiment send --key', () => {
  it('with no weave running: sent once; the second prints the result with duplicate and a line, and exits 0', async () => {
    const db = join(tempDir(), 'w.db')
    let weave = await openCollecting(db)
    const t = weave.spawn('collect', { name: 'box' })
    await until('the name box', () => weave.journal.db.prepare("SELECT 1 FROM names WHERE name = 'box'").get() !== undefined)
    await weave.close()
    const first = await cliRun(['send', '--key', 'req-1', 'box', '{"i":1}', '--db', db])
    expect(first.code, first.printed.join('')).toBe(0)
    expect(first.printed.join('')).toContain(`{"delivered":true,"to":"${t}"}`)
    const again = await cliRun(['send', '--key', 'req-1', t, '{"i":1}', '--db', db])
    expect(again.code, again.printed.join('')).toBe(0)
    expect(again.printed.join('')).toContain(`{"delivered":true,"to":"${t}","duplicate":true}`)
    expect(again.printed.join('')).toMatch(/already sent to .* with key 'req-1'.*not sent again/)
    const bad = await cliRun(['send', '--key', '', t, '{"i":1}', '--db', db])
    expect(bad.code).not.toBe(0)
    expect(bad.printed.join('')).toMatch(/RAIMENT_INVALID_ARGUMENT.*the key is empty/)
    weave = await openCollecting(db)
    try {
      // And with the weave running (a control request): the same key is still known.
      const running = await cliRun(['send', '--key', 'req-1', t, '{"i":1}', '--db', db])
      expect(running.printed.join('')).toContain('"duplicate":true')
      const other = await cliRun(['send', '--key', 'req-2', t, '{"i":2}', '--db', db])
      expect(other.printed.join('')).toContain(`{"delivered":true,"to":"${t}"}`)
      const retry = await cliRun(['send', '--key', 'req-2', t, '{"i":2}', '--db', db])
      expect(retry.code).toBe(0)
      expect(retry.printed.join('')).toContain('"duplicate":true')
      expect(await collected(weave, [t])).toEqual([[{ i: 1 }, { i: 2 }]])
    } finally {
      await weave.close()
    }
  })
})

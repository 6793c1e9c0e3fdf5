/**
 * Replication's edges: `--replicate` without a broker and `--durability replicated` without
 * `--replicate` are one-line errors with a code (real CLI processes); the same options through
 * the API are clear errors; `raiment restore` refuses an existing file (left untouched) and says
 * so when a weave has no stream; a stream deleted by an operator under a running weave is
 * written again from the weave's journal (which nothing touches), and restores as before. A new
 * file, or an older copy, started under the id of a replicated weave (its disk lost, without
 * `raiment restore`) is refused, and its stream stays as it was: before, the file's snapshot
 * became the new generation and the old one was deleted, every thread with it. With no weave
 * running on a replicated journal, `raiment send` and `kill` refuse to write into the file (the
 * stream would not have it, nor a takeover elsewhere), until a weave that does not replicate has
 * run on it.
 */
import amqp from 'amqplib'
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { thread, Weave } from 'raiment'
import { AmqpLink } from '../src/amqp/link.js'
import { sendMessage } from '../src/cli/messages.js'
import { killThread } from '../src/cli/weave-commands.js'
import { rebuildJournal } from '../src/replication/rebuild.js'
import { genStream, headStream } from '../src/replication/records.js'
import { declareStream, lastRseq, readToEnd } from '../src/replication/streams.js'
import { AMQP_URL, brokerUp, CI, freshNamespace } from './support/broker.js'
import { raiment as run } from './support/raiment-process.js'
import { dropStreams, journalState, openReplicated } from './support/replication.js'
import { tempDir } from './support/tmp.js'
import { until } from './support/until.js'

async function raiment(args: string[], cwd: string): Promise<{ code: number | null; stderr: string }> {
  return run(cwd, ...args)
}

function oneLineError(o: { code: number | null; stderr: string }, re: RegExp): void {
  expect(o.code, o.stderr).toBe(1)
  const lines = o.stderr.trim().split('\n')
  expect(lines, o.stderr).toHaveLength(1)
  expect(lines[0]).toMatch(re)
}

/** Runs of counter's body in this process (a resume runs it again). */
let ran = 0
const counter = thread({
  uses: ['clock', 'mailbox'],
  async does(p: { n: number }) {
    ran++
    let k = 0
    for (let i = 0; i < p.n; i++) if ((await this.clock.now()) > 0) k++
    const more = await this.mailbox.receive<{ n: number }>()
    for (let i = 0; i < more.n; i++) if ((await this.clock.now()) > 0) k++
    return k
  },
})

describe('without a broker', () => {
  it('start --replicate without --amqp is one line with a code, and creates no journal', async () => {
    const dir = tempDir()
    oneLineError(await raiment(['start', '--replicate', '--db', 'x.db'], dir), /^raiment: RAIMENT_REPLICATE_NEEDS_BROKER: --replicate .*pass --amqp URL/)
    oneLineError(await raiment(['start', '--durability', 'replicated', '--db', 'x.db'], dir), /^raiment: RAIMENT_REPLICATE_NEEDS_BROKER: --durability replicated .*add --replicate/)
    oneLineError(await raiment(['restore', '--from', 'w', '--db', 'x.db'], dir), /^raiment: RAIMENT_REPLICATE_NEEDS_BROKER: 'raiment restore' .*--amqp URL/)
    expect(() => readFileSync(join(dir, 'x.db'))).toThrow()
  })

  it('the API refuses replicate without a remote, and replicated durability without replicate', async () => {
    await expect(Weave.open({ db: ':memory:', threads: {}, ioLibs: false, replicate: true })).rejects.toThrow(/replicate: true needs a remote/)
    await expect(Weave.open({ db: ':memory:', threads: {}, ioLibs: false, durability: 'replicated' })).rejects.toThrow(/durability 'replicated' needs replicate: true/)
  })
})

describe.skipIf(!brokerUp && !CI)('with a broker', () => {
  const namespaces: Array<[string, string]> = []
  afterAll(async () => {
    for (const [ns, id] of namespaces) await dropStreams(ns, id).catch(() => {})
  })

  it('restore refuses an existing file, left untouched, a directory that does not exist, and a weave without a stream', async () => {
    const dir = tempDir()
    writeFileSync(join(dir, 'x.db'), 'keep me')
    const ns = freshNamespace()
    oneLineError(await raiment(['restore', '--from', 'w', '--db', 'x.db', '--amqp', AMQP_URL, '--namespace', ns], dir), /^raiment: RAIMENT_INVALID_ARGUMENT: x\.db exists/)
    expect(readFileSync(join(dir, 'x.db'), 'utf8')).toBe('keep me')
    oneLineError(await raiment(['restore', '--from', 'w', '--db', 'y.db', '--amqp', AMQP_URL, '--namespace', ns], dir), /^raiment: RAIMENT_NO_JOURNAL_STREAM: no journal stream for weave 'w' in namespace/)
    oneLineError(await raiment(['restore', '--from', 'w', '--db', 'nodir/y.db', '--amqp', AMQP_URL, '--namespace', ns], dir), /^raiment: RAIMENT_INVALID_ARGUMENT: the directory of nodir\/y\.db does not exist; create it first/)
  })

  it('a stream deleted by an operator is written again from the journal, which nothing touches', async () => {
    const dir = tempDir()
    const ns = freshNamespace()
    namespaces.push([ns, 'd'])
    const lines: string[] = []
    const link = await AmqpLink.connect({ url: AMQP_URL, namespace: ns, log: (l) => lines.push(l) })
    const weave = await Weave.open({ db: join(dir, 'a.db'), weaveId: 'd', threads: { counter }, ioLibs: false, dumps: false, remote: link, replicate: true, durability: 'replicated' })
    await link.start(weave)
    try {
      const ids = [weave.spawn('counter', { n: 20 }), weave.spawn('counter', { n: 5 })]
      await weave.committed()
      await link.replicator!.flushed()
      await dropStreams(ns, 'd')
      // The threads go on: their next outcomes are released once the new generation is confirmed.
      for (const id of ids) weave.send(id, { n: 10 })
      expect((await Promise.all(ids.map((id) => weave.join(id)))).map((e) => (e.status === 'done' ? e.result : e))).toEqual([30, 15])
      await link.replicator!.flushed()
      expect(lines.some((l) => /^raiment: RAIMENT_JOURNAL_STREAM_GONE: the stream .* was deleted; writing a new generation/.test(l)), lines.join('\n')).toBe(true)
      expect(link.replicator!.generation).toBeGreaterThan(1)
    } finally {
      await weave.close()
      await link.close()
    }
    const r = await rebuildJournal({ url: AMQP_URL, namespace: ns, weaveId: 'd', file: join(dir, 'b.db') })
    expect(r.generation).toBeGreaterThan(1)
    expect(journalState(join(dir, 'b.db'), false)).toEqual(journalState(join(dir, 'a.db'), false))
  })

  it('a head stream deleted by an operator while nothing commits is noticed and written again: the journal restores (a user trial)', async () => {
    const dir = tempDir()
    const ns = freshNamespace()
    namespaces.push([ns, 'k'])
    const lines: string[] = []
    let noticed: () => void = () => {}
    const gone = new Promise<void>((r) => (noticed = r))
    const link = await AmqpLink.connect({ url: AMQP_URL, namespace: ns, log: (l) => (lines.push(l), /RAIMENT_JOURNAL_STREAM_GONE/.test(l) && noticed()) })
    const weave = await Weave.open({ db: join(dir, 'a.db'), weaveId: 'k', threads: { counter }, ioLibs: false, dumps: false, remote: link, replicate: true, durability: 'replicated' })
    await link.start(weave)
    try {
      const id = weave.spawn('counter', { n: 3 })
      await weave.committed()
      await link.replicator!.flushed()
      const conn = await amqp.connect(AMQP_URL)
      await (await conn.createChannel()).deleteQueue(headStream(ns, 'k'))
      await conn.close()
      // Nothing commits now (the thread waits for a message): the weave looks for its head.
      await gone
      expect(lines.find((l) => /RAIMENT_JOURNAL_STREAM_GONE/.test(l))).toMatch(/^raiment: RAIMENT_JOURNAL_STREAM_GONE: the head stream .*journal\.k of journal 'k' was deleted; writing a new generation/)
      await until('the new generation', () => link.replicator!.generation > 1)
      await link.replicator!.flushed()
      weave.send(id, { n: 1 })
      expect(await weave.join(id)).toMatchObject({ status: 'done', result: 4 })
      await link.replicator!.flushed()
    } finally {
      await weave.close()
      await link.close()
    }
    await rebuildJournal({ url: AMQP_URL, namespace: ns, weaveId: 'k', file: join(dir, 'b.db') })
    expect(journalState(join(dir, 'b.db'), false)).toEqual(journalState(join(dir, 'a.db'), false))
  })

  it('a replicated weave that took its journal over refuses to start on an older epoch', async () => {
    const dir = tempDir()
    const ns = freshNamespace()
    namespaces.push([ns, 'e'])
    const newer = await openReplicated(ns, { db: join(dir, 'new.db'), weaveId: 'e', threads: { counter } }, { epoch: 2 })
    await newer.close()
    await expect(openReplicated(ns, { db: join(dir, 'old.db'), weaveId: 'e', threads: { counter } })).rejects.toThrow(/RAIMENT_FENCED|no longer owns its journal: its stream has epoch 2, this weave 1/)
  })

  it('a new file or an older copy started under a replicated weave\'s id is refused, and its stream kept', async () => {
    const dir = tempDir()
    const ns = freshNamespace()
    namespaces.push([ns, 'f'])
    const first = await openReplicated(ns, { db: join(dir, 'a.db'), weaveId: 'f', threads: { counter } })
    const id = first.weave.spawn('counter', { n: 3 })
    await first.weave.committed()
    await first.close()
    copyFileSync(join(dir, 'a.db'), join(dir, 'old.db'))
    const again = await openReplicated(ns, { db: join(dir, 'a.db'), weaveId: 'f', threads: { counter } })
    again.weave.send(id, { n: 2 })
    expect(await again.weave.join(id)).toMatchObject({ status: 'done', result: 5 })
    await again.close()

    await expect(openReplicated(ns, { db: join(dir, 'fresh.db'), weaveId: 'f', threads: { counter } })).rejects.toMatchObject({
      code: 'RAIMENT_STREAM_AHEAD',
      message: expect.stringMatching(/replicates another journal file .*raiment restore --from f --db FILE/) as unknown,
    })
    await expect(openReplicated(ns, { db: join(dir, 'old.db'), weaveId: 'f', threads: { counter } })).rejects.toMatchObject({
      code: 'RAIMENT_STREAM_AHEAD',
      message: expect.stringMatching(/holds batches up to \d+, this file only up to \d+/) as unknown,
    })
    await rebuildJournal({ url: AMQP_URL, namespace: ns, weaveId: 'f', file: join(dir, 'b.db') })
    expect(journalState(join(dir, 'b.db'), false)).toEqual(journalState(join(dir, 'a.db'), false))
  })

  it('with no weave running on a replicated journal, send and kill write nothing into it', async () => {
    const dir = tempDir()
    const ns = freshNamespace()
    namespaces.push([ns, 'g'])
    const file = join(dir, 'g.db')
    const r = await openReplicated(ns, { db: file, weaveId: 'g', threads: { counter } })
    const id = r.weave.spawn('counter', { n: 1 })
    await r.weave.committed()
    await r.close()
    const before = journalState(file, true)
    const refused = { code: 'RAIMENT_WEAVE_REPLICATED_DOWN', message: expect.stringContaining("weave 'g' replicates its journal") as unknown }
    await expect(sendMessage(file, id, { n: 1 })).rejects.toMatchObject(refused)
    await expect(killThread(file, id)).rejects.toMatchObject(refused)
    // Both cases: taken over (it runs elsewhere, where to write), or down (start it). A user trial
    // was told to start it while it was hosted elsewhere: that starts a hand-back.
    await expect(sendMessage(file, id, { n: 1 })).rejects.toMatchObject({
      message: expect.stringMatching(/shows 'g' hosted by another weave .* run this command on that weave's host, with --db its copy \(g\.taken\.db .*would have that weave hand 'g' back\. Otherwise start the weave/) as unknown,
    })
    expect(journalState(file, true)).toEqual(before)
    // A weave that does not say whether to replicate it is refused before anything runs (it may
    // have been taken over: run unreplicated, its threads would run twice), as is the CLI's start.
    ran = 0
    await expect(Weave.open({ db: file, threads: { counter }, ioLibs: false, dumps: false })).rejects.toMatchObject({
      code: 'RAIMENT_REPLICATION_REQUIRED',
      message: expect.stringMatching(/was replicated by its last weave: .*raiment start --amqp URL --replicate.*shows no weave hosting 'g', then start it with --no-replicate/) as unknown,
    })
    mkdirSync(join(dir, 'threads'))
    oneLineError(await raiment(['start', '--db', file], dir), /^raiment: RAIMENT_REPLICATION_REQUIRED: the journal .*g\.db of weave 'g' was replicated by its last weave/)
    expect(ran).toBe(0)
    expect(journalState(file, true)).toEqual(before)
    // A weave that says not to replicate it ran on it: the file is its own again.
    await (await Weave.open({ db: file, threads: { counter }, ioLibs: false, dumps: false, replicate: false })).close()
    expect(ran).toBe(1)
    await (await Weave.open({ db: file, threads: { counter }, ioLibs: false, dumps: false })).close()
    expect(await killThread(file, id)).toMatchObject({ killed: true })
  })

  it("the last batch of a stream is read past a reader's marker; a missing stream is said to be gone", async () => {
    const ns = freshNamespace()
    const queue = genStream(ns, 'h', 1)
    const conn = await amqp.connect(AMQP_URL)
    try {
      await declareStream(conn, queue)
      const pub = await conn.createConfirmChannel()
      for (let rseq = 1; rseq <= 20; rseq++) pub.publish('', queue, Buffer.from('x'), { headers: { weave: 'h', epoch: 1, rseq, kind: 'batch', gen: 1 } })
      await pub.waitForConfirms()
      await pub.close()
      expect(await lastRseq(conn, queue)).toBe(20)
      // A restore (or this very check) appended its marker: the stream's last chunk holds only that.
      await readToEnd(conn, queue, () => {})
      expect(await lastRseq(conn, queue)).toBe(20)
      expect(await lastRseq(conn, queue)).toBe(20)
      await expect(lastRseq(conn, genStream(ns, 'none', 1))).rejects.toMatchObject({ code: 'RAIMENT_JOURNAL_STREAM_GONE' })
    } finally {
      const ch = await conn.createChannel()
      await ch.deleteQueue(queue).catch(() => {})
      await conn.close()
    }
  })

  it('a weave whose current generation an operator deleted while it was stopped starts, and writes a new one', async () => {
    const dir = tempDir()
    const ns = freshNamespace()
    namespaces.push([ns, 'i'])
    const first = await openReplicated(ns, { db: join(dir, 'i.db'), weaveId: 'i', threads: { counter } })
    const gen = first.link.replicator!.generation
    await first.close()
    const conn = await amqp.connect(AMQP_URL)
    try {
      const ch = await conn.createChannel()
      await ch.deleteQueue(genStream(ns, 'i', gen))
      await ch.close()
    } finally {
      await conn.close()
    }
    const again = await openReplicated(ns, { db: join(dir, 'i.db'), weaveId: 'i', threads: { counter } })
    try {
      expect(again.link.replicator!.generation).toBeGreaterThan(gen)
    } finally {
      await again.close()
    }
  })
})

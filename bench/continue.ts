// Continue-as-new (src/continue/): what a switch costs, and what it saves.
// - stream: a sender sends N messages, each send awaited, to an actor that receives them and
//   continues as new every EVERY messages (never, for the baseline): msgs/s, and the switches;
// - resume: the same actor after the stream, with the weave closed and opened again: ms from
//   opening the journal to the actor running live (its record replayed), and the record's length.
//   Without continue-as-new the record holds every message received; with it, one stretch.
import { decodeValue } from '../src/encoding.js'
import { thread, Weave, type Durability } from '../src/index.js'
import { fmt, line, nowMs, summarize, tempDir } from './common.js'

export const benchActor = thread({
  uses: ['mailbox', 'threads'],
  async does(p: { every: number; n: number }) {
    for (let i = 0; p.every === 0 || i < p.every; i++) {
      const m = await this.mailbox.receive<{ i: number } | { stop: true }>()
      if (typeof m === 'object' && 'stop' in m) return p.n
      p = { ...p, n: p.n + 1 }
    }
    return this.threads.continueAsNew(p)
  },
})

export const benchSender = thread({
  uses: ['mailbox'],
  async does(p: { to: string; n: number }) {
    for (let i = 0; i < p.n; i++) await this.mailbox.send(p.to, { i })
  },
})

export interface ContinueFigures {
  msgsPerSec: number
  resumeMs: number
  record: number
}

/** The stream to an actor continuing every `every` messages (0: never), then its resume. */
export async function continueRun(durability: Durability, n: number, every: number): Promise<ContinueFigures> {
  const tmp = tempDir()
  try {
    return await measure(tmp.file('continue.db'), durability, n, every)
  } finally {
    tmp.done()
  }
}

async function measure(db: string, durability: Durability, n: number, every: number): Promise<ContinueFigures> {
  const o = { db, durability, threads: { benchActor, benchSender }, ioLibs: false as const, dumps: false as const }
  let weave = await Weave.open(o)
  const actor = weave.spawn('benchActor', { every, n: 0 })
  const t0 = nowMs()
  const sender = weave.spawn('benchSender', { to: actor, n })
  await weave.join(sender)
  // Every message received: its count so far (in its params) and the takes of its record add up.
  const received = (): number => (decodeValue(weave.journal.thread(actor)!.params) as { n: number }).n + weave.journal.entries(actor).length
  while (received() < n) await new Promise((r) => setTimeout(r, 1))
  const ms = nowMs() - t0
  await weave.close()
  const t1 = nowMs()
  weave = await Weave.open(o)
  const record = weave.journal.entries(actor).length
  // Resumed: it waits live on its mailbox once the replay has released its record.
  while (weave.resumeProgress().done < 1) await new Promise((r) => setImmediate(r))
  const resumeMs = nowMs() - t1
  weave.send(actor, { stop: true })
  const end = await weave.join(actor)
  await weave.close()
  if (end.status !== 'done' || end.result !== n) throw new Error(`continue: the actor ended ${JSON.stringify(end)}, expected done with ${n}`)
  return { msgsPerSec: n / (ms / 1000), resumeMs, record }
}

const MESSAGES = 5_000

/** `npm run bench -- --only continue`: the stream and the resume, for each EVERY, median of `runs`. */
export async function continueBench(runs: number, log: (s: string) => void, progress: (s: string) => void): Promise<void> {
  log('')
  log(`## Continue-as-new: ${MESSAGES.toLocaleString('en-US')} messages (each send awaited, sync) to an actor continuing every EVERY messages; then its resume`)
  for (const every of [0, 1_000, 100, 1]) {
    const rates: number[] = []
    const resumes: number[] = []
    let record = 0
    for (let r = 0; r < runs; r++) {
      const f = await continueRun('sync', MESSAGES, every)
      rates.push(f.msgsPerSec)
      resumes.push(f.resumeMs)
      record = f.record
      progress(`  continue every ${every} run ${r + 1}/${runs}: ${fmt(f.msgsPerSec)} msgs/s, resume ${fmt(f.resumeMs)} ms`)
    }
    const label = every === 0 ? 'never continues' : `every ${every.toLocaleString('en-US')}`
    log(line(`${label}: stream`, summarize(rates), 'msgs/s'))
    log(line(`${label}: resume (record of ${record.toLocaleString('en-US')} entries)`, summarize(resumes), 'ms'))
  }
}

// Passivation, in a child process of its own (run with --expose-gc):
//   node --expose-gc --conditions=raiment-source --import tsx bench/passivate.ts [N] [durability]
// 1. Spawns N threads (BATCH at a time, each batch committed before the next) that each wait in
//    `mailbox.receive` in a weave with `passivateAfter: 0`, waits until every one is passivated
//    (the 'thread-passivated' events), forces GC, and measures the process's resident memory in
//    all and its growth per thread over a baseline taken after a warm-up.
// 2. In the same weave, WAKES threads (after WARM_WAKES not counted) each with a 100-entry record (100 clock.now calls), then
//    passivated in receive: sends each a message and measures, one at a time, from `weave.send`
//    to the thread's first live call after it took the message (it has been rebuilt by replay of
//    its 100 entries, and its take is durable): p50 and p99.
// 3. Closes the weave and opens it again: how long the open takes, and that it resumes nothing.
// Prints one JSON line.
import { callContext, thread, Weave, type Durability } from '../src/index.js'
import { brief, nowMs, tempDir } from './common.js'

const WARM_UP = 20_000
const BATCH = 2_000
const WAKES = 300
/** Wake-ups first made and not counted (the first runs cold code paths). */
const WARM_WAKES = 20

const gc = (globalThis as { gc?: () => void }).gc
if (gc === undefined) throw new Error('bench/passivate.ts needs node --expose-gc')

const settle = async (): Promise<NodeJS.MemoryUsage> => {
  for (let i = 0; i < 4; i++) {
    await new Promise((r) => setImmediate(r))
    gc()
  }
  return process.memoryUsage()
}

declare module '../src/index.js' {
  interface Libraries {
    wakeProbe: { hit(): Promise<void> }
  }
}

/** Waits for a message, forever. */
const waiter = thread({
  uses: ['mailbox'],
  async does() {
    for (;;) await this.mailbox.receive()
  },
})

/** A record of 100 entries, then a message; its first call after the message is the probe. */
const sleeper100 = thread({
  uses: ['clock', 'mailbox', 'wakeProbe'],
  async does() {
    for (let i = 0; i < 100; i++) await this.clock.now()
    await this.mailbox.receive()
    await this.wakeProbe.hit()
  },
})

const n = Number(process.argv[2] ?? 1_000_000)
const durability = (process.argv[3] ?? 'batched') as Durability
const progress = (s: string): void => void process.stderr.write(s + '\n')
const hits = new Map<string, () => void>()
const tmp = tempDir()
const weave = await Weave.open({
  db: tmp.file('passivate.db'),
  durability,
  threads: { waiter, sleeper100, brief },
  libraries: {
    wakeProbe: {
      async hit(): Promise<void> {
        hits.get(callContext().threadId)?.()
      },
    },
  },
  ioLibs: false,
  dumps: false,
  passivateAfter: 0,
})
let passivated = 0
weave.on('thread-passivated', () => passivated++)
const allPassivated = async (count: number): Promise<void> => {
  while (passivated < count) {
    await weave.committed()
    await new Promise((r) => setTimeout(r, 5))
  }
  await weave.committed()
}

for (let done = 0; done < WARM_UP; done += 1_000) {
  await Promise.all(Array.from({ length: 1_000 }, () => weave.join(weave.spawn('brief', undefined))))
}
weave.spawn('waiter', undefined)
await allPassivated(1)
const before = await settle()
const t0 = nowMs()
let lastShown = t0
for (let i = 0; i < n; i += BATCH) {
  for (let j = i; j < Math.min(n, i + BATCH); j++) weave.spawn('waiter', undefined)
  await weave.committed()
  // Let passivation keep up, so the threads in memory at once stay a few batches' worth.
  while (passivated + 4 * BATCH < i + 1) await new Promise((r) => setTimeout(r, 1))
  if (nowMs() - lastShown > 5_000) {
    lastShown = nowMs()
    progress(`  passivate: ${i + BATCH} spawned, ${passivated - 1} passivated, ${((nowMs() - t0) / 1000).toFixed(0)} s, RSS ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MB`)
  }
}
await allPassivated(n + 1)
const spawnMs = nowMs() - t0
const after = await settle()
if (weave.running !== 0) throw new Error(`expected no thread in memory, got ${weave.running}`)

// Wake-ups: threads with 100-entry records, passivated in receive.
const ids = Array.from({ length: WARM_WAKES + WAKES }, () => weave.spawn('sleeper100', undefined))
await allPassivated(n + 1 + WARM_WAKES + WAKES)
const lat: number[] = []
/** CPU time (user + system) of this process during each wake-up: what is left when the machine is busy is waiting. */
const cpu: number[] = []
for (const id of ids) {
  const hit = new Promise<void>((r) => hits.set(id, r))
  const c0 = process.cpuUsage()
  const s = nowMs()
  weave.send(id, 'wake')
  await hit
  lat.push(nowMs() - s)
  const c = process.cpuUsage(c0)
  cpu.push((c.user + c.system) / 1000)
  await weave.join(id)
}
lat.splice(0, WARM_WAKES)
cpu.splice(0, WARM_WAKES)
cpu.sort((a, b) => a - b)
const slowest = lat.map((ms, i) => [i, Math.round(ms * 100) / 100] as const).sort((a, b) => b[1] - a[1]).slice(0, 5)
lat.sort((a, b) => a - b)
const pct = (p: number): number => lat[Math.min(lat.length - 1, Math.floor((p / 100) * lat.length))]!
const rows = weave.journal.db.prepare('SELECT count(*) FROM passivated').pluck().get() as number
await weave.close()
// Opening the journal again: the passivated threads stay passivated (none is resumed).
const o0 = nowMs()
const again = await Weave.open({ db: tmp.file('passivate.db'), durability, threads: { waiter, sleeper100, brief }, libraries: { wakeProbe: { async hit(): Promise<void> {} } }, ioLibs: false, dumps: false, passivateAfter: 0 })
const reopenMs = nowMs() - o0
const resumed = again.resumed
await again.close()
process.stdout.write(
  JSON.stringify({
    reopenMs,
    resumed,
    threads: n,
    durability,
    spawnMs,
    rssTotal: after.rss,
    rss: after.rss - before.rss,
    heapUsed: after.heapUsed - before.heapUsed,
    heapTotal: after.heapUsed,
    rows,
    wakeP50: pct(50),
    wakeP99: pct(99),
    wakeMax: lat[lat.length - 1],
    wakeCpuP50: cpu[Math.floor(cpu.length / 2)],
    wakeCpuP99: cpu[Math.min(cpu.length - 1, Math.floor(0.99 * cpu.length))],
    slowest,
  }) + '\n',
)
tmp.done()
process.exit(0)

// Resident memory per idle thread, in a child process of its own (run with --expose-gc):
// spawns N threads that each sleep for an hour, waits until every one is blocked in
// `clock.sleep` (its sleepUntil call waiting in the clock), forces GC, and prints the RSS and heap deltas as JSON.
//   node --expose-gc --conditions=raiment-source --import tsx bench/idle.ts [N]
// The baseline is taken after a warm-up of WARM_UP short threads, so that one-time growth (V8's
// young generation, SQLite's page cache, compiled code) is not counted per thread. Threads are
// spawned BATCH at a time, each batch committed before the next, as they arrive in a running
// weave; one synchronous loop of 100,000 spawns would leave the old space fragmented with the
// garbage of the loop (~0.7 KB of free space per thread that the GC does not return).
import { Weave } from '../src/index.js'
import { pendingSleeps } from '../io-libs/clock.js'
import { brief, idle, nowMs, tempDir } from './common.js'

const WARM_UP = 20_000
const BATCH = 1_000

const gc = (globalThis as { gc?: () => void }).gc
if (gc === undefined) throw new Error('bench/idle.ts needs node --expose-gc')

const settle = async (): Promise<NodeJS.MemoryUsage> => {
  for (let i = 0; i < 4; i++) {
    await new Promise((r) => setImmediate(r))
    gc()
  }
  return process.memoryUsage()
}

const n = Number(process.argv[2] ?? 100_000)
const tmp = tempDir()
const weave = await Weave.open({ db: tmp.file('idle.db'), durability: 'memory', threads: { idle, brief }, ioLibs: false, dumps: false })
for (let done = 0; done < WARM_UP; done += BATCH) {
  await Promise.all(Array.from({ length: BATCH }, () => weave.join(weave.spawn('brief', undefined))))
}
// One idle thread through the same path too, so the first one does not carry first-use costs.
weave.spawn('idle', undefined)
while (pendingSleeps() < 1) await new Promise((r) => setTimeout(r, 5))
const before = await settle()
const t0 = nowMs()
for (let i = 0; i < n; i += BATCH) {
  for (let j = i; j < Math.min(n, i + BATCH); j++) weave.spawn('idle', undefined)
  await weave.committed()
}
// Asleep: each thread has made its sleepUntil call, which the clock holds (the weave loaded the
// same module, io-libs/clock.ts, as this file imports).
while (pendingSleeps() < n + 1) {
  await weave.committed()
  await new Promise((r) => setTimeout(r, 10))
}
const spawnMs = nowMs() - t0
const after = await settle()
if (weave.running !== n + 1) throw new Error(`expected ${n + 1} threads running, got ${weave.running}`)
process.stdout.write(
  JSON.stringify({
    threads: n,
    spawnMs,
    rss: after.rss - before.rss,
    heapUsed: after.heapUsed - before.heapUsed,
    external: after.external - before.external,
  }) + '\n',
)
tmp.done()
process.exit(0)

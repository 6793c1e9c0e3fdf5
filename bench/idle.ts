// Resident memory per idle thread, in a child process of its own (run with --expose-gc):
// spawns N threads that each sleep for an hour, waits until every one is blocked in
// `clock.sleep` (its timer armed), forces GC, and prints the RSS and heap deltas as JSON.
//   node --expose-gc --conditions=development --import tsx bench/idle.ts [N]
import { Weave } from '../src/index.js'
import { idle, nowMs, tempDir } from './common.js'

const gc = (globalThis as { gc?: () => void }).gc
if (gc === undefined) throw new Error('bench/idle.ts needs node --expose-gc')

const settle = async (): Promise<NodeJS.MemoryUsage> => {
  for (let i = 0; i < 4; i++) {
    await new Promise((r) => setImmediate(r))
    gc()
  }
  return process.memoryUsage()
}

const timers = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length

const n = Number(process.argv[2] ?? 100_000)
const tmp = tempDir()
const weave = await Weave.open({ db: tmp.file('idle.db'), durability: 'memory', threads: { idle }, ioLibs: false, dumps: false })
// Warm up: one thread through the same path, so the first thread does not carry code and caches.
weave.spawn('idle', undefined)
const timers0 = timers()
while (timers() < timers0 + 1) await new Promise((r) => setTimeout(r, 5))
const before = await settle()
const t0 = nowMs()
for (let i = 0; i < n; i++) weave.spawn('idle', undefined)
const target = timers0 + 1 + n
while (timers() < target) {
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

// `raiment check`'s speed (issue 16): a journal of 10,000 running threads x 100 entries each,
// written straight into the journal with the weft's encoding, checked against a thread type on
// disk by `checkJournal` (what the command runs: read-only open, strict replay of every record,
// no library called). Every thread must come out compatible, or the bench fails.
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { checkJournal } from '../src/check/check.js'
import { fmt, line, nowMs, summarize, tempDir, verdict } from './common.js'
import { writeStepRecords } from './replay.js'

export const CHECK = { threads: 10_000, entries: 100 }
const TARGET = { atMost: 10, text: '10,000 threads x 100 entries checked in < 10 s' }

const RAIMENT = new URL('../src/index.ts', import.meta.url).href

/** A project directory (threads/, io-libs/) and a journal of `threads` running threads of `entries` calls each. */
function build(threads: number, entries: number): { db: string; dir: string; done: () => void } {
  const tmp = tempDir()
  mkdirSync(join(tmp.dir, 'threads'))
  mkdirSync(join(tmp.dir, 'io-libs'))
  writeFileSync(join(tmp.dir, 'package.json'), '{ "type": "module" }\n')
  writeFileSync(join(tmp.dir, 'io-libs', 'noop.ts'), 'export default { async step(i: number) { return i } }\n')
  writeFileSync(
    join(tmp.dir, 'threads', 'steps.ts'),
    `import { thread } from '${RAIMENT}'\n` +
      `export default thread({ uses: ['noop' as 'clock'], async does(p: { n: number }) {\n` +
      `  let sum = 0\n  for (let i = 0; i < p.n; i++) sum += await (this as unknown as { noop: { step(i: number): Promise<number> } }).noop.step(i)\n  return sum\n} })\n`,
  )
  const db = tmp.file('check.db')
  // One call more than recorded: every thread is running, its record replays whole.
  writeStepRecords(db, { type: 'steps', threads, entries, params: { n: entries + 1 }, id: (t) => `bench/${t + 1}` })
  return { db, dir: tmp.dir, done: tmp.done }
}

/** Runs `checkJournal` on a fresh journal: seconds of wall time, and of CPU time (user + system) of this process. */
export async function checkRun(threads: number, entries: number): Promise<{ wall: number; cpu: number }> {
  const b = build(threads, entries)
  const cwd = process.cwd()
  try {
    process.chdir(b.dir)
    const t0 = nowMs()
    const c0 = process.cpuUsage()
    const report = await checkJournal({ db: b.db })
    const s = (nowMs() - t0) / 1000
    const c = process.cpuUsage(c0)
    const bad = report.threads.filter((v) => v.verdict !== 'compatible')
    if (report.threads.length !== threads || bad.length > 0) {
      throw new Error(`check bench: ${bad.length} of ${report.threads.length} threads not compatible: ${JSON.stringify(bad[0])}`)
    }
    return { wall: s, cpu: (c.user + c.system) / 1e6 }
  } finally {
    process.chdir(cwd)
    b.done()
  }
}

export async function checkBench(runs: number, log: (s: string) => void, progress: (s: string) => void): Promise<void> {
  log('')
  log(`## raiment check: ${CHECK.threads.toLocaleString('en-US')} running threads x ${CHECK.entries} entries, strict replay of every record`)
  const secs: number[] = []
  const cpu: number[] = []
  for (let r = 0; r < runs; r++) {
    const run = await checkRun(CHECK.threads, CHECK.entries)
    secs.push(run.wall)
    cpu.push(run.cpu)
    progress(`  check run ${r + 1}/${runs}: ${fmt(run.wall)} s (CPU ${fmt(run.cpu)} s)`)
  }
  const s = summarize(secs)
  log(line('check', s, 's') + ' ' + verdict(s.median, TARGET, 'raiment check'))
  log(line('  rate', summarize(secs.map((x) => (CHECK.threads * CHECK.entries) / x)), 'entries/s'))
  log(line('  CPU time of the process (user + system; the wall time above grows with the load of a shared machine)', summarize(cpu), 's'))
}

// `npm run bench:compare [-- --only raiment,dbos] [--runs 5] [--cpu-prof]`
// Measures Raiment, DBOS Transact and Restate one after another, each in its own child process,
// then prints the table and writes bench/results/<YYYY-MM-DD>.json and bench/results/compare.svg.
import { mkdirSync, writeFileSync } from 'node:fs'
import { loadavg } from 'node:os'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { chart } from './chart.js'
import { start } from './child.js'
import { SYSTEMS, type SystemName } from './engine.js'
import type { Measurement } from './measure.js'
import { buildReport } from './report.js'
import { table } from './table.js'

const USAGE = `usage: npm run bench:compare -- [--only raiment,dbos,restate] [--runs N] [--cpu-prof] [--write]
  --only      systems to measure (default: all three); with a subset nothing is written unless --write
  --runs      runs per figure, the median is reported (default 3)
  --cpu-prof  write a CPU profile of the Raiment process to bench/results/profiles/
  --write     write bench/results/ even when --only leaves a system out
environment: BENCH_PG_URL (default postgresql://postgres@127.0.0.1:5432) for DBOS`

const { values } = parseArgs({
  options: {
    only: { type: 'string', default: SYSTEMS.join(',') },
    runs: { type: 'string', default: '3' },
    'cpu-prof': { type: 'boolean', default: false },
    write: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
})
if (values.help) {
  console.log(USAGE)
  process.exit(0)
}
const only = values.only.split(',').map((s) => s.trim()).filter(Boolean)
const unknown = only.filter((s) => !SYSTEMS.includes(s as SystemName))
if (unknown.length || only.length === 0) {
  throw new Error(`--only expects a comma-separated list of ${SYSTEMS.join(', ')}, got ${JSON.stringify(values.only)}\n${USAGE}`)
}
const runs = Number(values.runs)
if (!Number.isInteger(runs) || runs < 1) throw new Error(`Expected --runs to be a whole number from 1 up, got ${JSON.stringify(values.runs)}`)
if (runs < 3) console.error(`note: --runs ${runs}: the published figures use at least 3 runs`)

const results = new URL('../results/', import.meta.url)
const profiles = new URL('profiles/', results)

/** Runs measure.ts for one system in a fresh Node process and collects its Measurement. */
async function measure(system: SystemName): Promise<Measurement> {
  const prof = values['cpu-prof'] && system === 'raiment' ? ['--cpu-prof', `--cpu-prof-dir=${fileURLToPath(profiles)}`] : []
  // pg warns about DBOS's own concurrent client.query() at launch; it is not ours to fix.
  const quiet = system === 'dbos' ? ['--no-deprecation'] : []
  const child = start(process.execPath, [...process.execArgv, ...prof, ...quiet, fileURLToPath(new URL('measure.ts', import.meta.url)), system, String(runs)], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  let got: Measurement | undefined
  child.on('message', (m) => { got = m as Measurement })
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve))
  return got ?? { system, status: 'failed', reason: `the measuring process exited (${code ?? 'signal'}) without a result` }
}

const loadAtStart = loadavg()[0]!
if (loadAtStart > 0.5) console.error(`note: the machine is busy (1-minute load ${loadAtStart.toFixed(2)}): expect noisy figures`)
const measured: Measurement[] = []
for (const system of SYSTEMS.filter((s) => only.includes(s))) {
  console.error(`\n# ${system}`)
  const m = await measure(system)
  if (m.status !== 'ok') console.error(`  ${system} ${m.status}: ${m.reason}`)
  measured.push(m)
}

const command = `npm run bench:compare${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`
const report = buildReport(measured, runs, command, loadAtStart)
console.log(`\n${table(report)}\n`)
if (only.length === SYSTEMS.length || values.write) {
  // A partial run doesn't overwrite the full comparison unless asked to.
  mkdirSync(results, { recursive: true })
  writeFileSync(new URL(`${report.date}.json`, results), JSON.stringify(report, null, 2) + '\n')
  console.log(`wrote bench/results/${report.date}.json`)
  if (measured.some((m) => m.status === 'ok')) {
    writeFileSync(new URL('compare.svg', results), chart(report))
    console.log('wrote bench/results/compare.svg')
  }
}
if (measured.some((m) => m.status === 'failed')) process.exitCode = 1

// One system's measurement, run by main.ts as a child process so that every system starts from a
// fresh Node process (JIT, heap, pools) and a crash in one can't take the others down.
//   node --conditions=raiment-source --import tsx bench/compare/measure.ts <system> <runs>
// Sends one Measurement to the parent over IPC (stdout is left to the engines' own logs).
import { EngineUnavailable, SYSTEMS, type Engine, type SystemName } from './engine.js'
import { summarize, type Summary } from './stats.js'
import { W1_STEPS, WORKLOADS, type Workload } from './workloads.js'

/** What one system's child reports. */
export type Measurement =
  | { system: SystemName; status: 'ok'; label: string; figures: Record<Workload['id'], Summary>; floor?: Summary }
  | { system: SystemName; status: 'skipped' | 'failed'; reason: string }

const openers: Record<SystemName, () => Promise<Engine>> = {
  raiment: async () => (await import('./raiment.js')).open(),
  dbos: async () => (await import('./dbos.js')).open(),
  restate: async () => (await import('./restate.js')).open(),
}

async function measure(system: SystemName, runs: number): Promise<Measurement> {
  let engine: Engine
  try {
    engine = await openers[system]()
  } catch (error) {
    if (error instanceof EngineUnavailable) return { system, status: 'skipped', reason: error.message }
    throw error
  }
  try {
    // Warm-up, unmeasured: JIT, connection pools, first-use setup. A bit of each workload, as
    // one W1 run of the fastest system lasts only a tenth of a second.
    await engine.run(1000)
    await Promise.all(Array.from({ length: 10 }, () => engine.run(100)))
    for (let i = 0; i < 10; i++) await (await engine.start(1))()
    const figures = {} as Record<Workload['id'], Summary>
    for (const workload of WORKLOADS) {
      const values: number[] = []
      for (let i = 0; i < runs; i++) {
        values.push(await workload.measure(engine))
        console.error(`  ${system} ${workload.id} run ${i + 1}/${runs}: ${Math.round(values[i]!).toLocaleString('en-US')} ${workload.unit}`)
      }
      figures[workload.id] = summarize(values)
    }
    if (!engine.floor) return { system, status: 'ok', label: engine.label, figures }
    const floors: number[] = []
    for (let i = 0; i < runs; i++) {
      floors.push(await engine.floor(W1_STEPS))
      console.error(`  ${system} W1 floor run ${i + 1}/${runs}: ${Math.round(floors[i]!).toLocaleString('en-US')} steps/s`)
    }
    return { system, status: 'ok', label: engine.label, figures, floor: summarize(floors) }
  } finally {
    await engine.close()
  }
}

const [system, runsArg] = process.argv.slice(2)
if (!SYSTEMS.includes(system as SystemName)) {
  throw new Error(`Expected a system name (${SYSTEMS.join(', ')}), got ${JSON.stringify(system)}`)
}
const result = await measure(system as SystemName, Number(runsArg ?? 3)).catch(
  (error: unknown): Measurement => ({
    system: system as SystemName,
    status: 'failed',
    reason: error instanceof Error ? (error.stack ?? error.message) : String(error),
  }),
)
process.send?.(result, () => process.exit(0))
if (!process.send) console.log(JSON.stringify(result, null, 2))

// The report of one comparison run: machine, systems, figures and ratios, as written to
// bench/results/<YYYY-MM-DD>.json and read by the table and the chart.
import { execFileSync } from 'node:child_process'
import { cpus, loadavg, totalmem, version as osVersion, release } from 'node:os'
import type { Measurement } from './measure.js'
import { WORKLOADS, type Workload } from './workloads.js'

/** Raiment's median over an anchor's median, per workload (higher is better for Raiment). */
export type Ratios = Partial<Record<Workload['id'], number>>

export interface Report {
  date: string
  command: string
  commit: string | null
  machine: { cpu: string; cores: number; memoryGiB: number; os: string; node: string }
  /** 1-minute load average when the run began and when it ended: above ~0.5 the figures are noisy. */
  load: { start: number; end: number }
  runs: number
  workloads: { id: Workload['id']; title: string; unit: string; target: number }[]
  systems: Measurement[]
  /** Keyed by anchor name; present when both Raiment and that anchor ran. */
  ratios: Record<string, Ratios>
}

function gitCommit(): string | null {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
  } catch {
    return null
  }
}

const round2 = (x: number): number => Math.round(x * 100) / 100

/** The local date as YYYY-MM-DD. */
export function today(): string {
  const d = new Date()
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`
}

/** Assembles the report from each system's measurement. */
export function buildReport(systems: Measurement[], runs: number, command: string, loadAtStart: number): Report {
  const raiment = systems.find((s) => s.system === 'raiment')
  const ratios: Record<string, Ratios> = {}
  for (const anchor of systems) {
    if (anchor.system === 'raiment' || anchor.status !== 'ok' || raiment?.status !== 'ok') continue
    ratios[anchor.system] = Object.fromEntries(
      WORKLOADS.map((w) => [w.id, raiment.figures[w.id].median / anchor.figures[w.id].median]),
    )
  }
  const cpu = cpus()
  return {
    date: today(),
    command,
    commit: gitCommit(),
    machine: {
      cpu: cpu[0]?.model ?? 'unknown',
      cores: cpu.length,
      memoryGiB: Math.round(totalmem() / 2 ** 30),
      os: `${osVersion()} (${release()})`,
      node: process.version,
    },
    load: { start: round2(loadAtStart), end: round2(loadavg()[0]!) },
    runs,
    workloads: WORKLOADS.map(({ id, title, unit, target }) => ({ id, title, unit, target })),
    systems,
    ratios,
  }
}

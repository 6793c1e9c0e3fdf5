// The report as a plain-text table for stdout: one row per workload, one column per system
// (median and min–max), then Raiment/anchor for each anchor against the workload's target.
import type { Report } from './report.js'
import { format } from './stats.js'
import { msPerStep, W3_OF_FLOOR } from './workloads.js'

const NAMES: Record<string, string> = { raiment: 'Raiment', dbos: 'DBOS', restate: 'Restate' }

function render(rows: string[][]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)))
  return rows.map((r) => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('   ').trimEnd()).join('\n')
}

/** The table, followed by one line per system that was skipped or failed. */
export function table(report: Report): string {
  const ok = report.systems.filter((s) => s.status === 'ok')
  const anchors = Object.keys(report.ratios)
  const header = ['workload', 'unit', ...ok.map((s) => NAMES[s.system]!), ...anchors.map((a) => `Raiment/${NAMES[a]}`), 'target']
  const rows: string[][] = [header]
  for (const w of report.workloads) {
    rows.push([
      `${w.id} ${w.title}`,
      w.unit,
      ...ok.map((s) => { const f = s.figures[w.id]; return `${format(f.median)} (${format(f.min)}–${format(f.max)})` }),
      ...anchors.map((a) => {
        const r = report.ratios[a]![w.id]!
        return `${format(r)}× ${r >= w.target ? 'met' : 'MISSED'}`
      }),
      `≥ ${w.target}×`,
    ])
    if (w.id === 'W1') {
      // ms/step is the inverse of steps/s, so its median is the inverse of the median and min/max swap.
      rows.push(['   same, as latency', 'ms/step', ...ok.map((s) => { const f = s.figures.W1; return `${format(msPerStep(f.median))} (${format(msPerStep(f.max))}–${format(msPerStep(f.min))})` }), ...anchors.map(() => ''), ''])
    }
  }
  const lines = [render(rows), '', ...ok.map((s) => `${NAMES[s.system]}: ${s.label}`)]
  for (const s of ok) {
    if (!s.floor) continue
    const w1 = s.figures.W1.median
    lines.push(
      `${NAMES[s.system]} W1 floor: the same records written one commit per step by its storage alone: ${format(s.floor.median)} steps/s (${format(s.floor.min)}–${format(s.floor.max)}), ` +
        `${format(msPerStep(s.floor.median))} ms/step; W1 reaches ${Math.round((100 * w1) / s.floor.median)}% of it`,
    )
    // A start of W3 is one durable commit, as a step of the floor is (the thread's step and end
    // ride on the commits of the starts that follow).
    const w3 = s.figures.W3.median / s.floor.median
    lines.push(`  W3 reaches ${Math.round(100 * w3)}% of the floor (${format(s.figures.W3.median)} threads/s): target ≥ ${Math.round(100 * W3_OF_FLOOR)} %, ${w3 >= W3_OF_FLOOR ? 'met' : 'MISSED'}`)
    const target = report.workloads.find((w) => w.id === 'W1')!.target
    for (const a of anchors) {
      // The anchor's W1 is Raiment's over the ratio.
      const need = (target * w1) / report.ratios[a]!.W1!
      lines.push(`  W1 at ${target}× ${NAMES[a]} needs ${format(need)} steps/s: ${need <= s.floor.median ? 'within' : 'ABOVE'} the floor`)
    }
  }
  for (const s of report.systems) {
    if (s.status !== 'ok') lines.push(`${NAMES[s.system]}: ${s.status.toUpperCase()}: ${s.reason.split('\n')[0]}`)
  }
  lines.push(`median of ${report.runs} runs (min–max); ${report.machine.cores} × ${report.machine.cpu}, ${report.machine.memoryGiB} GiB, Node ${report.machine.node}; load ${report.load.start} → ${report.load.end}`)
  return lines.join('\n')
}

// The report as an SVG bar chart: one group per workload, one bar per system that ran, log-scale
// y axis (the systems differ by orders of magnitude), each bar labelled with its median and
// whiskered with its min–max. Plain SVG 1.1 with a white background, so it reads the same on a
// light or dark README page.
import type { Report } from './report.js'
import { format } from './stats.js'

const COLORS: Record<string, string> = { raiment: '#e8590c', dbos: '#1c7ed6', restate: '#2f9e44' }
const NAMES: Record<string, string> = { raiment: 'Raiment', dbos: 'DBOS Transact', restate: 'Restate' }
const SHORT: Record<string, string> = { raiment: 'Raiment', dbos: 'DBOS', restate: 'Restate' }
const W = 820
const H = 480
const M = { left: 78, right: 24, top: 100, bottom: 104 }
const CHAR_W = 7 // a generous width of one 12px character, to lay out the legend

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')
const num = (x: number): string => String(Math.round(x * 10) / 10)

/** The chart as an SVG document. */
export function chart(report: Report): string {
  const systems = report.systems.filter((s) => s.status === 'ok')
  const values = systems.flatMap((s) => report.workloads.flatMap((w) => [s.figures[w.id].min, s.figures[w.id].max]))
  const lo = Math.floor(Math.log10(Math.min(...values)))
  const hi = Math.ceil(Math.log10(Math.max(...values)) + 0.15) // headroom for the labels
  const plotH = H - M.top - M.bottom
  const plotW = W - M.left - M.right
  const y = (v: number): number => M.top + plotH * (1 - (Math.log10(v) - lo) / (hi - lo))
  const out: string[] = []

  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="system-ui, -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif" font-size="12">`)
  out.push(`<rect width="${W}" height="${H}" fill="#ffffff"/>`)
  out.push(`<text x="${M.left}" y="26" font-size="16" font-weight="600" fill="#212529">Durable work per second, higher is better (log scale)</text>`)
  out.push(`<text x="${M.left}" y="46" fill="#495057">median of ${report.runs} runs, whiskers min–max · ${esc(report.date)} · ${report.machine.cores} cores, Node ${esc(report.machine.node)}</text>`)

  // Gridlines at every decade, lighter ones at 2× and 5×.
  for (let e = lo; e <= hi; e++) {
    const v = 10 ** e
    out.push(`<line x1="${M.left}" x2="${W - M.right}" y1="${num(y(v))}" y2="${num(y(v))}" stroke="#ced4da"/>`)
    out.push(`<text x="${M.left - 8}" y="${num(y(v) + 4)}" text-anchor="end" fill="#495057">${format(v)}</text>`)
    for (const k of [2, 5]) {
      if (e < hi) out.push(`<line x1="${M.left}" x2="${W - M.right}" y1="${num(y(k * v))}" y2="${num(y(k * v))}" stroke="#f1f3f5"/>`)
    }
  }
  out.push(`<text transform="translate(18 ${num(M.top + plotH / 2)}) rotate(-90)" text-anchor="middle" fill="#495057">per second</text>`)

  // Bars.
  const groupW = plotW / report.workloads.length
  const barW = Math.min(64, (groupW * 0.75) / Math.max(1, systems.length))
  report.workloads.forEach((w, g) => {
    const x0 = M.left + g * groupW + (groupW - barW * systems.length) / 2
    systems.forEach((s, b) => {
      const f = s.figures[w.id]
      const x = x0 + b * barW
      const cx = x + barW / 2
      out.push(`<rect x="${num(x + 2)}" y="${num(y(f.median))}" width="${num(barW - 4)}" height="${num(M.top + plotH - y(f.median))}" fill="${COLORS[s.system]}"><title>${esc(`${NAMES[s.system]} ${w.id}: ${format(f.median)} ${w.unit} (${format(f.min)}–${format(f.max)})`)}</title></rect>`)
      out.push(`<path d="M${num(cx)} ${num(y(f.min))}V${num(y(f.max))}M${num(cx - 5)} ${num(y(f.min))}h10M${num(cx - 5)} ${num(y(f.max))}h10" stroke="#212529" fill="none"/>`)
      out.push(`<text x="${num(cx)}" y="${num(y(f.max) - 6)}" text-anchor="middle" font-size="11" fill="#212529">${format(f.median)}</text>`)
    })
    const gx = M.left + g * groupW + groupW / 2
    out.push(`<text x="${num(gx)}" y="${M.top + plotH + 20}" text-anchor="middle" font-weight="600" fill="#212529">${w.id} · ${esc(w.unit)}</text>`)
    out.push(`<text x="${num(gx)}" y="${M.top + plotH + 36}" text-anchor="middle" font-size="11" fill="#495057">${esc(w.title)}</text>`)
    Object.entries(report.ratios).forEach(([anchor, r], i) => {
      const text = `Raiment ÷ ${SHORT[anchor]} = ${format(r[w.id] ?? NaN)}×`
      out.push(`<text x="${num(gx)}" y="${M.top + plotH + 54 + i * 15}" text-anchor="middle" font-size="11" fill="${COLORS.raiment}">${esc(text)}</text>`)
    })
  })
  out.push(`<line x1="${M.left}" x2="${W - M.right}" y1="${M.top + plotH}" y2="${M.top + plotH}" stroke="#495057"/>`)

  // Legend under the title, one entry per system (skipped ones say so), wrapping when full.
  let lx = M.left
  let ly = 58
  for (const s of report.systems) {
    const text = s.status === 'ok' ? s.label : `${NAMES[s.system]}: ${s.status}`
    const width = 17 + text.length * CHAR_W
    if (lx > M.left && lx + width > W - M.right) [lx, ly] = [M.left, ly + 16]
    out.push(`<rect x="${lx}" y="${ly}" width="12" height="12" fill="${s.status === 'ok' ? COLORS[s.system] : '#dee2e6'}"/>`)
    out.push(`<text x="${lx + 17}" y="${ly + 10}" fill="#212529">${esc(text)}</text>`)
    lx += width + 14
  }
  out.push('</svg>')
  return out.join('\n') + '\n'
}

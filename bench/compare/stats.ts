// Summaries of repeated measurements: median with min–max, as the anchors report them.

/** A figure measured several times: its median, extremes and every run, in `unit`. */
export interface Summary {
  median: number
  min: number
  max: number
  runs: number[]
}

/** Median (mean of the middle two for an even count), min and max of `values`. */
export function summarize(values: number[]): Summary {
  if (values.length === 0) throw new RangeError('Expected at least one measurement, got none')
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  const median = sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
  return { median, min: sorted[0]!, max: sorted[sorted.length - 1]!, runs: values }
}

/** A number as people read it: 12,345 / 123 / 12.3 / 1.23. */
export function format(x: number): string {
  if (!Number.isFinite(x)) return String(x)
  if (Math.abs(x) >= 100) return Math.round(x).toLocaleString('en-US')
  if (Math.abs(x) >= 10) return x.toFixed(1)
  return x.toFixed(2)
}

/** Milliseconds since an arbitrary origin, with sub-millisecond resolution. */
export const nowMs = (): number => Number(process.hrtime.bigint()) / 1e6

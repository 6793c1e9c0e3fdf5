/**
 * Progress of long work on a terminal: a line redrawn in place (on stderr) while it runs, and,
 * when stderr is not a terminal, one summary line at the end instead.
 */
import type { Weave } from '../weave.js'
import { replayTick } from '../weft.js'
import { plural } from './common.js'
import { weaveLog } from './weave-log.js'

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US')

export interface Progress {
  /** Work done and to do, in units (threads, entries, …). */
  done: number
  total: number
}

/** "1 m 05 s", "12 s", "0.4 s". */
export function duration(ms: number): string {
  if (!Number.isFinite(ms)) return '?'
  if (ms < 10_000) return `${(ms / 1000).toFixed(1)} s`
  const s = Math.round(ms / 1000)
  return s < 60 ? `${s} s` : `${Math.floor(s / 60)} m ${String(s % 60).padStart(2, '0')} s`
}

/**
 * Shows `line(elapsedMs)` every `everyMs` on a terminal until `finished()` is true or `stop()` is
 * called, then clears it and `ended` resolves to the time taken (a terminal sees the line go;
 * anything else sees nothing here). `tty`: whether to draw (default: stderr is a terminal).
 */
export function showProgress(
  line: (elapsedMs: number) => string,
  finished: () => boolean,
  o: { everyMs?: number; tty?: boolean } = {},
): { ended: Promise<number>; stop: () => void; draw: (force?: boolean) => void } {
  const t0 = performance.now()
  const tty = o.tty ?? process.stderr.isTTY === true
  let drawn = t0
  const draw = (force = false): void => {
    const now = performance.now()
    if (!force && now - drawn < (o.everyMs ?? 200)) return
    drawn = now
    process.stderr.write('\r\x1b[2K' + line(now - t0).slice(0, (process.stderr.columns || 120) - 1))
  }
  // Replay yields to no timer while it runs: it calls this every so many outcomes instead.
  if (tty) replayTick.hook = () => draw()
  const hook = replayTick.hook
  let stopped = false
  let tick = (): void => {}
  const ended = new Promise<number>((resolve) => {
    tick = (): void => {
      const elapsed = performance.now() - t0
      if (stopped || finished()) {
        if (tty) process.stderr.write('\r\x1b[2K')
        if (tty && replayTick.hook === hook) replayTick.hook = null
        clearInterval(timer)
        resolve(elapsed)
        return
      }
      if (tty) {
        drawn = 0
        draw()
      }
    }
    // The first line after everyMs: work done sooner shows none.
    const timer = setInterval(tick, o.everyMs ?? 200)
    timer.unref()
  })
  return {
    ended,
    // Synchronous work (a dump) draws from inside itself: no timer runs meanwhile.
    draw: tty ? draw : () => {},
    stop: () => {
      stopped = true
      tick()
    },
  }
}

/** "12 of 50 threads, 163,840 of 200,050 entries replayed, 45,000 entries/s, 0.8 s left". */
export function resumeLine(threads: Progress, entries: Progress, elapsedMs: number): string {
  const rate = entries.done / Math.max(elapsedMs / 1000, 1e-3)
  const left = rate > 0 ? ((entries.total - entries.done) / rate) * 1000 : Infinity
  return `resuming: ${fmt(threads.done)} of ${fmt(threads.total)} threads, ${fmt(entries.done)} of ${fmt(entries.total)} entries replayed, ${fmt(rate)} entries/s, ${duration(left)} left`
}

/**
 * While the threads `weave` resumed replay their records: progress on a terminal (threads
 * resumed of total, entries/s, time left), then one line when all have (`since`: when the weave
 * began to open, a performance.now() time). Nothing when it resumed none.
 */
export async function trackResume(weave: Weave, since: number): Promise<void> {
  if (weave.resumeProgress().threads === 0) return
  const state = () => weave.resumeProgress()
  await showProgress(
    () => {
      const p = state()
      return resumeLine({ done: p.done, total: p.threads }, { done: p.replayed, total: p.entries }, performance.now() - since)
    },
    () => {
      const p = state()
      return p.done >= p.threads
    },
    // Pretty lines only: a JSON log is read by programs.
    { tty: weaveLog.logger === null && process.stderr.isTTY === true },
  ).ended
  const p = state()
  const ms = performance.now() - since
  weaveLog.info(`resumed ${plural(p.threads, 'thread')}: ${fmt(p.entries)} entries replayed in ${duration(ms)} (${fmt(p.entries / Math.max(ms / 1000, 1e-3))} entries/s)`, {
    event: 'resume-done',
    threads: p.threads,
    entries: p.entries,
    ms: Math.round(ms),
  })
}

/** "dumping: 163,840 of 1,000,000 entries, 45,000 entries/s, 12 s left". */
export function dumpLine(done: number, total: number, elapsedMs: number): string {
  const rate = done / Math.max(elapsedMs / 1000, 1e-3)
  const left = rate > 0 ? ((total - done) / rate) * 1000 : Infinity
  return total === 0 ? 'dumping: reading the journal' : done < total ? `dumping: ${fmt(done)} of ${fmt(total)} entries, ${fmt(rate)} entries/s, ${duration(left)} left` : `dumping: writing ${fmt(total)} entries`
}

/** "163,840 of 1,000,000 entries replayed, 45,000 entries/s, 12 s left". */
export function replayLine(done: number, total: number, elapsedMs: number): string {
  const rate = done / Math.max(elapsedMs / 1000, 1e-3)
  const left = rate > 0 ? ((total - done) / rate) * 1000 : Infinity
  return `replaying: ${fmt(done)} of ${fmt(total)} entries, ${fmt(rate)} entries/s, ${duration(left)} left`
}

import type { JournalTap } from '../../src/journal.js'

/**
 * A journal tap that holds every batch until the test lets the oldest go: what the replicator
 * does while the journal stream has not confirmed a batch (and, fenced, forever).
 */
export class HoldingTap implements JournalTap {
  readonly held: Array<() => void> = []
  write(): void {}
  release(run: () => void): void {
    this.held.push(run)
  }
  letGo(n: number): void {
    for (const run of this.held.splice(0, n)) run()
  }
}

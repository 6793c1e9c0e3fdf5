/** A journal whose reads can be paused between two of its queries: to show a read is one snapshot. */
import { Journal, type ThreadRow } from '../../src/journal.js'

/** A read-only journal that lets `between` run right after a thread's row is read. */
export class PausingJournal extends Journal {
  between: (() => void) | null = null
  override thread(id: string): ThreadRow | undefined {
    const row = super.thread(id)
    this.between?.()
    return row
  }
}

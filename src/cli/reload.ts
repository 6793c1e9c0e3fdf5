/**
 * `raiment reload`: asks the weave running on the journal to load its changed thread files
 * (src/check/reload.ts), and prints what it did.
 */
import type { ReloadReport } from '../check/reload.js'
import { decodeError } from '../error-records.js'
import { RaimentError } from '../errors.js'
import { openExisting, runningOwner, say, type DbOptions } from './common.js'
import { askWeave, CONTROL_TIMEOUT_MS } from './ask-weave.js'
import { reloadLines } from './weave-commands.js'

export async function reloadCommand(o: DbOptions): Promise<number> {
  const journal = openExisting(o.db)
  try {
    if (runningOwner(journal) === null) {
      throw new RaimentError('RAIMENT_NO_WEAVE', `no weave runs on ${o.db}, so there is nothing to reload: a weave loads the thread files when it starts (raiment start --db ${o.db})`)
    }
    const reply = await askWeave(journal, 'reload', '', null, true)
    if (reply === null) throw new RaimentError('RAIMENT_RELOAD_TIMEOUT', `the weave on ${o.db} did not answer within ${CONTROL_TIMEOUT_MS / 1000} s; is it stuck? Its log says what a reload did`)
    const answer = JSON.parse(reply) as { report?: ReloadReport; refused?: string }
    if (answer.refused !== undefined) throw decodeError(answer.refused)
    const report = answer.report!
    if (report.types.length === 0) say('no thread file changed')
    for (const t of report.types) for (const l of reloadLines(t)) say(l)
    return report.types.some((t) => t.error !== undefined) ? 1 : 0
  } finally {
    journal.close()
  }
}

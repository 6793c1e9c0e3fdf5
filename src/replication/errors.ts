/** The errors of journal replication (each with its code). */
import { RaimentError } from '../errors.js'

/**
 * This weave no longer owns its journal: another weave took it over (a higher epoch is in the
 * journal's stream, or the lease is held by another). It must stop without recording anything more.
 */
export class Fenced extends RaimentError {
  constructor(weaveId: string, why: string) {
    super(
      'RAIMENT_FENCED',
      `weave '${weaveId}' no longer owns its journal: ${why}; its threads run on the weave that took it over. Start a fresh weave (another --db and --id)`,
    )
  }
}

/** Replication needs a broker connection and a journal that runs threads. */
export class ReplicationUnavailable extends RaimentError {
  constructor(why: string) {
    super('RAIMENT_REPLICATION_UNAVAILABLE', why)
  }
}

/** A rebuild or restore found something it cannot use. */
export class RebuildFailed extends RaimentError {
  constructor(code: string, why: string) {
    super(code, why)
  }
}

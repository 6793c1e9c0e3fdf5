/** The errors of journal replication (each with its code). */
import { RaimentError } from '../errors.js'

/**
 * This weave no longer owns its journal: another weave took it over (a higher epoch is in the
 * journal's stream, or the lease is held by another). It must stop, releasing and publishing
 * nothing more (its local file may get a few rows before it notices; that file is stale).
 */
export class Fenced extends RaimentError {
  constructor(weaveId: string, why: string) {
    super(
      'RAIMENT_FENCED',
      `weave '${weaveId}' no longer owns its journal: ${why}; its threads run on the weave that took it over. Start it again under the same --id (raiment start --replicate; under --weaves N its slot does): the weave that took it over hands it back`,
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

/**
 * The journal's stream holds another journal file's record, or more of this one's than the file:
 * replicating this file would replace it (a new file, or an older copy, started under the id of a
 * weave whose disk was lost).
 */
export class StreamAhead extends RaimentError {
  readonly namespace: string
  readonly weaveId: string
  readonly why: string
  /** `inSlot`: refused in a slot of `raiment start --weaves N`, which starts it again by itself. */
  constructor(ns: string, weaveId: string, why: string, inSlot = false) {
    super(
      'RAIMENT_STREAM_AHEAD',
      `the journal stream of weave '${weaveId}' in namespace '${ns}' ${why}; replicating this file would replace it and lose what only the stream holds, so nothing was written. ` +
        (inSlot
          ? `Nothing to do: this slot of 'raiment start --weaves' starts it again until another weave of the namespace has taken '${weaveId}' over (once it has been silent for --takeover-after), and that weave hands it back, rebuilt from the stream. With no other weave that runs its thread types, stop them and rebuild the file first (raiment restore --from ${weaveId} --db FILE)`
          : `To go on from the stream, rebuild a file from it (raiment restore --from ${weaveId} --db FILE, a file that does not exist yet) and start that file; ` +
            `or, when other weaves of the namespace run its thread types, wait until one has taken '${weaveId}' over (once it has been silent for --takeover-after) and start this again: that weave hands it back, rebuilt from the stream. ` +
            `A file that holds threads of its own cannot run under another --id (a journal keeps its weave id): to keep it, move it away`),
    )
    this.namespace = ns
    this.weaveId = weaveId
    this.why = why
  }
}

/**
 * A weave about to take a lost one over found, its journal rebuilt, threads of types it does not
 * run: it gives the lease back (they would end failed, for good), and the lost weave is left to
 * a weave that runs them all.
 */
export class TakeoverLacksTypes extends RaimentError {
  readonly weaveId: string
  readonly types: string[]
  constructor(weaveId: string, types: string[]) {
    super(
      'RAIMENT_TAKEOVER_LACKS_TYPES',
      `weave '${weaveId}' has threads of types this weave does not run (${types.join(', ')}); it was not taken over here, and is left to a weave that runs them all (start one with those thread types)`,
    )
    this.weaveId = weaveId
    this.types = types
  }
}

/**
 * Raiment's public API. Everything exported here, and from `raiment/testing`, is promised;
 * nothing else is.
 */
import './builtins.js'

export { thread, isThreadType } from './thread.js'
export type { AnyThreadType, Libraries, LibraryApi, LibraryName, ThreadThis, ThreadType } from './thread.js'
export { Weave } from './weave.js'
export { supervisor, SupervisorGaveUp } from './supervisor.js'
export { MovedBack, MoveRefused, ThreadNotMovable } from './migration.js'
export type { Backoff, ChildSpec, SupervisorParams, ExitMessage, Restart, Strategy } from './supervisor.js'
export type { RecordEdits } from './check/fork.js'
export type { ReloadReport } from './check/reload.js'
export type { ResumeProgress, SpawnOptions, ThreadEnd, ThreadId, WeaveOptions } from './weave.js'
export type { Durability, ThreadStatus } from './journal.js'
export type { JournalOwner } from './errors.js'
export type { LibraryModule, LibrarySpec } from './libraries.js'
export type { LibraryRetry, RetryCallInfo, RetryOn, RetryPolicy, ThreadRetry } from './retry/policy.js'
export { callContext } from './call-context.js'
export { markPaths } from './secrets/rules.js'
export type { LibrarySecrets, Mark, SecretAdditions, WeaveSecrets } from './secrets/rules.js'
export { SecretKeyUnusable } from './secrets/keyring.js'
export type { CallContext, WeaveConfig } from './call-context.js'
export { registerClass, registerError } from './encoding.js'
export { TIMED_OUT, weaveOf } from './weave-access.js'
export { NameTaken, NoSuchMessage, matches } from './messages.js'
export type { SendResult } from './messages.js'
export { SEND_KEY_RETENTION_MS, type SendOptions } from './send-keys.js'
export { NoBroker, UnknownWeave } from './remote.js'
export type { Placement, PlacementUse, Remote } from './remote.js'
export { readDump, makeDump, dumpText } from './dump.js'
export { Schedules } from './schedules/schedules.js'
export { ContinueAsNew } from './continue/continue.js'
export { LongRecord } from './continue/long-record.js'
export { InvalidSchedule, ScheduleExists, UnknownSchedule, DeclaredSchedule } from './schedules/errors.js'
export type { MissedPolicy, ScheduleDeclaration, ScheduleInfo, ScheduleOptions, ScheduleSource } from './schedules/spec.js'
export { realClock } from './schedules/clock.js'
export type { ScheduleClock } from './schedules/clock.js'
export type { Dump, DumpEntry } from './dump.js'
export {
  RaimentError,
  ReplayDivergence,
  ThreadCancelled,
  ThreadKilled,
  UnknownThreadType,
  ThreadTypeUnavailable,
  ThreadsWaitForType,
  UnknownLibrary,
  UnknownMethod,
  NotInUses,
  UnrecordableValue,
  MessageTooLarge,
  MessageRefused,
  InvalidArgument,
  InvalidThreadModule,
  InvalidLibraryModule,
  NotARaimentDb,
  JournalDamaged,
  DbTooNew,
  JournalOwned,
  JournalLinked,
  JournalReplaced,
  UnknownThread,
  InvalidDump,
  WeaveClosed,
  ReplicationRequired,
  SpawnIdTaken,
  ClosedBeforeDurable,
  ThreadMoved,
  LinkedExit,
  RetryOnThrew,
  ClockInUse,
} from './errors.js'

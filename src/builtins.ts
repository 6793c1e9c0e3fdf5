/**
 * The thread-side types of the built-in I/O libraries in `io-libs/`. Types only: the core never
 * imports a library's code.
 */
import type { ClockApi } from '../io-libs/clock.js'
import type { EnvApi } from '../io-libs/env.js'
import type { FetchApi } from '../io-libs/fetch.js'
import type { FsApi } from '../io-libs/fs.js'
import type { LogApi } from '../io-libs/log.js'
import type { MailboxApi } from '../io-libs/mailbox.js'
import type { PatchApi } from '../io-libs/patch.js'
import type { RegistryApi } from '../io-libs/registry.js'
import type { ThreadsApi } from '../io-libs/threads.js'
import type { RandomApi } from '../io-libs/random.js'
import type { SqliteApi } from '../io-libs/sqlite.js'

declare module './thread.js' {
  interface Libraries {
    clock: ClockApi
    env: EnvApi
    random: RandomApi
    log: LogApi
    fs: FsApi
    fetch: FetchApi
    sqlite: SqliteApi
    mailbox: MailboxApi
    patch: PatchApi
    threads: ThreadsApi
    registry: RegistryApi
  }
}

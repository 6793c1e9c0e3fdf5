/**
 * The thread-side types of the built-in I/O libraries in `io-libs/`. Types only: the core never
 * imports a library's code.
 */
import type { ClockApi } from '../io-libs/clock.js'

declare module './thread.js' {
  interface Libraries {
    clock: ClockApi
  }
}

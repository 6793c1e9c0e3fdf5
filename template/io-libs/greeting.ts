// An I/O library: its name is its file name, `greeting`. A thread that names it in `uses` calls
// its methods as `this.greeting.compose(name)`; each call and its outcome are recorded. Do here
// what a thread may not do itself: network, files, databases, other processes.
import type { LibraryApi } from 'raiment'

const greeting = {
  async compose(name: string): Promise<string> {
    return `hello ${name}`
  },
}
export default greeting

// Types `this.greeting` in threads.
declare module 'raiment' {
  interface Libraries {
    greeting: LibraryApi<typeof greeting>
  }
}

// The thread that many tests need: it waits for one message and returns it.
import { thread } from 'raiment'

/** Receives one message, any, and returns it. */
export const receiveOne = thread({
  uses: ['mailbox'],
  async does() {
    return await this.mailbox.receive()
  },
})

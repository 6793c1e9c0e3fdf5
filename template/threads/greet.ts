// A thread type: its name is its path under threads/ without extension, `greet`.
// Everything it learns from outside (the time, the greeting) comes through `this`, so it is
// recorded: a weave resumes it after a crash, and a test replays it from its record.
import { thread } from 'raiment'

export default thread({
  uses: ['clock', 'log', 'greeting'],
  async does(params: { name: string }) {
    const at = await this.clock.now()
    const text = await this.greeting.compose(params.name)
    await this.log.info(text, { at: new Date(at).toISOString() })
    return { greeted: params.name, text }
  },
})

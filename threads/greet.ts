/**
 * greet: says hello through the log, with the time and a random visit id, and returns who it
 * greeted. Time and randomness come through the weft, so a resumed or replayed run sees the same
 * values; neither goes into the result, which depends on the params alone.
 */
import { thread } from 'raiment'

export default thread({
  uses: ['clock', 'log', 'random'],
  async does(params: { name: string }) {
    if (typeof params?.name !== 'string' || params.name === '') {
      throw new TypeError(`greet expects params { name: string }, got ${JSON.stringify(params)}`)
    }
    const at = await this.clock.now()
    const visit = await this.random.uuid()
    await this.log.info(`hello ${params.name}`, { at: new Date(at).toISOString(), visit })
    await this.clock.sleep(500)
    await this.log.info(`goodbye ${params.name}`, { visit })
    return { greeted: params.name, greeting: `hello ${params.name}` }
  },
})

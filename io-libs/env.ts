/**
 * env: the weave's environment variables, read through the weft, so a resumed or replayed thread
 * gets the value it got live. `secret(name)` is for tokens and passwords: its value is recorded
 * sealed (encrypted with the weave's secret key, docs/secrets.md), never as it is; a resumed
 * thread gets the value back, a dump replayed elsewhere gets a `[secret:…]` marker instead.
 */
import { InvalidArgument, RaimentError, registerError } from 'raiment'
import type { LibraryApi, LibrarySecrets } from 'raiment'

/** `env.secret(name)` of a variable the weave's environment does not set. */
export class SecretUnset extends RaimentError {
  readonly variable: string
  constructor(name: string) {
    super('RAIMENT_SECRET_UNSET', `env.secret(${JSON.stringify(name)}): ${name} is not set in the weave's environment; set it where the weave starts (${name}=… raiment start)`)
    this.variable = name
  }
}
registerError(SecretUnset)

function checkName(method: string, name: unknown): string {
  if (typeof name !== 'string' || name === '') throw new InvalidArgument(`env.${method}(name) expects the name of an environment variable, got ${JSON.stringify(name)}`)
  return name
}

const env = {
  /** The variable's value, or undefined when it is not set. Recorded as it is: nothing secret. */
  async get(name: string): Promise<string | undefined> {
    return process.env[checkName('get', name)]
  },
  /**
   * The variable's value, recorded sealed (see the module's comment).
   * @throws SecretUnset (`RAIMENT_SECRET_UNSET`) when it is not set
   * @example const token = await this.env.secret('API_TOKEN')
   */
  async secret(name: string): Promise<string> {
    const v = process.env[checkName('secret', name)]
    if (v === undefined) throw new SecretUnset(name)
    return v
  },
}
export default env

export const secrets: LibrarySecrets = {
  outcome: (method, value, mark) => (method === 'secret' && typeof value === 'string' ? mark(value) : value),
}

export type EnvApi = LibraryApi<typeof env>

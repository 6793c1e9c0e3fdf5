/**
 * registry: names for threads. A name belongs to one live thread at a time and is freed when the
 * thread ends; `mailbox.send` accepts a name wherever it accepts an id. A name is 1 to
 * MAX_NAME characters, without '/' or control characters, and starts and ends with no
 * whitespace: checked when a thread registers it live; a replayed (or resumed) register returns
 * its recorded outcome without calling this library, so a name registered before the rule holds.
 */
import { callContext, InvalidArgument, weaveOf, type LibraryApi, type WeaveConfig } from 'raiment'

/** The longest name, in characters. */
const MAX_NAME = 200

const registry = (config: WeaveConfig) => {
  const messages = () => weaveOf(config).messages
  return {
    /**
     * Registers `name` for this thread.
     * @throws NameTaken when a live thread holds it
     * @throws InvalidArgument for a name against the rule (the top of this file), saying it
     * @example
     * await this.registry.register('billing')
     */
    async register(name: string): Promise<void> {
      checkName(name)
      messages().register(name, callContext().threadId)
    },
    /**
     * The id of the thread registered as `name`: a live thread of this weave, or, through a
     * broker, the thread a live weave announces or the last weave heard to hold it announced;
     * null if none is known (yet).
     */
    async whereis(name: string): Promise<string | null> {
      return messages().whereis(name)
    },
    /** Frees `name` if this thread holds it; returns whether it did. */
    async unregister(name: string): Promise<boolean> {
      return messages().unregister(name, callContext().threadId)
    },
  }
}
export default registry

/** @throws InvalidArgument (RAIMENT_INVALID_ARGUMENT) for a name a thread cannot register, saying the rule */
function checkName(name: unknown): asserts name is string {
  if (typeof name === 'string' && name !== '' && name.length <= MAX_NAME && !/[/\p{Cc}]/u.test(name) && name.trim() === name) return
  const got = typeof name === 'string' && name.length > 60 ? `${JSON.stringify(name.slice(0, 40))}… (${name.length} characters)` : JSON.stringify(name)
  throw new InvalidArgument(`registry.register: a name is 1 to ${MAX_NAME} characters, without '/' or control characters, and starts and ends with no whitespace; got ${got}`)
}

export type RegistryApi = LibraryApi<ReturnType<typeof registry>>

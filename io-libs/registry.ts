/**
 * registry: names for threads. A name belongs to one live thread at a time and is freed when the
 * thread ends; `mailbox.send` accepts a name wherever it accepts an id.
 */
import { callContext, InvalidArgument, weaveOf, type LibraryApi, type WeaveConfig } from 'raiment'

const registry = (config: WeaveConfig) => {
  const messages = () => weaveOf(config).messages
  return {
    /** Registers `name` for this thread. Throws NameTaken when a live thread holds it. */
    async register(name: string): Promise<void> {
      if (typeof name !== 'string' || name === '' || name.includes('/')) {
        throw new InvalidArgument(`registry.register: a name is a non-empty string without '/', got ${JSON.stringify(name)}`)
      }
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

export type RegistryApi = LibraryApi<ReturnType<typeof registry>>

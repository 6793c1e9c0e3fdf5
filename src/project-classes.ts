/**
 * Values of classes a project registers (`registerClass`, in `io-libs/` or a thread module): a
 * process that reads a journal or a dump without having imported those modules (the CLI, the
 * UI) cannot decode them until it does.
 */
import { unknownClassOf } from './dump.js'
import { RaimentError } from './errors.js'
import { replayParts } from './libraries.js'
import { loadThreadTypes } from './thread-types.js'

/**
 * `make()`, and if it meets a value of a class not registered, again once the project's thread
 * types (`threads`) and libraries (`ioLibs`) are imported, as far as they load (they register it).
 * @throws RaimentError RAIMENT_UNKNOWN_CLASS naming the class, when none of them registers it
 */
export async function withProjectClasses<T>(make: () => T, what: string, threads: string, ioLibs: string): Promise<T> {
  try {
    return make()
  } catch (e) {
    if (unknownClassOf(e) === undefined) throw e
  }
  await replayParts(ioLibs)
  try {
    await loadThreadTypes(threads)
  } catch {
    // What loads is what registers: a class still unknown is said below.
  }
  try {
    return make()
  } catch (e) {
    const name = unknownClassOf(e)
    if (name === undefined) throw e
    throw new RaimentError(
      'RAIMENT_UNKNOWN_CLASS',
      `${what} holds a value of class '${name}', which neither the thread types of ${threads} nor the libraries of ${ioLibs} register (registerClass): run it from the project directory, or pass --threads and --io-libs`,
    )
  }
}

/** Errors of loading a project's modules as ES modules, and of `raiment init` setting a project up. */

import { RaimentError } from './raiment-error.js'
import { firstFew } from './first-few.js'

/**
 * A thread type or I/O library that Node loads as CommonJS (its package.json says
 * `"type": "commonjs"`, npm's default, or has no `type`) and that could not be loaded as one.
 */
export class CommonJsModule extends RaimentError {
  readonly file: string
  /** The package.json that decides the file's module format, or null when there is none. */
  readonly packageJson: string | null
  constructor(file: string, packageJson: string | null, type: unknown, cause: unknown) {
    const why =
      packageJson === null
        ? 'no package.json above it says "type": "module"'
        : type === undefined
          ? `${packageJson} has no "type" field`
          : `${packageJson} says "type": ${JSON.stringify(type)}${type === 'commonjs' ? " (npm init's default)" : ''}`
    const fix =
      packageJson === null
        ? 'add a package.json with "type": "module" to the project'
        : `set "type": "module" in ${packageJson} (npm pkg set type=module)`
    super(
      'RAIMENT_COMMONJS_MODULE',
      `${file} loads as CommonJS because ${why}, but thread types and I/O libraries are ES modules: ` +
        `${fix}, or name the file .mts or .mjs. (Node said: ${(cause as Error)?.message ?? String(cause)})`,
      { cause },
    )
    this.file = file
    this.packageJson = packageJson
  }
}

/** `raiment init` would overwrite a file, or change a script, that exists. */
export class InitConflict extends RaimentError {
  readonly conflicts: readonly string[]
  constructor(dir: string, conflicts: readonly string[]) {
    super(
      'RAIMENT_INIT_CONFLICT',
      `raiment init changes no file that exists, and ${dir} already has: ${conflicts.join(', ')}. ` +
        'Nothing was written: move them away, or make the project in a new directory (raiment init DIR).',
    )
    this.conflicts = conflicts
  }
}

/** `raiment init` failed part-way through writing; it undid what it had written. */
export class InitFailed extends RaimentError {
  constructor(dir: string, cause: unknown) {
    super(
      'RAIMENT_INIT_FAILED',
      `raiment init could not write the project in ${dir} (${(cause as Error)?.message ?? String(cause)}); ` +
        'it removed what it had written and put package.json back as it was. Fix the cause, then run raiment init again.',
      { cause },
    )
  }
}

/**
 * `raiment init` would set `"type": "module"` in a package whose .js files Node loads as
 * CommonJS now: they would load as ES modules, and their require() would fail.
 */
export class InitCommonJs extends RaimentError {
  readonly files: readonly string[]
  constructor(dir: string, files: readonly string[]) {
    const shown = firstFew(files)
    super(
      'RAIMENT_INIT_COMMONJS',
      `raiment init would set "type": "module" in the package.json of ${dir} (thread types and I/O libraries are ES modules), ` +
        `and Node would then load its .js files as ES modules too: ${shown}. In those that are CommonJS, require(), module.exports ` +
        `and __dirname would fail (node ${files[0]} would stop working). Nothing was written. Rename the CommonJS ones to .cjs ` +
        `(and the paths that name them) first, or, if they are ES modules already, run raiment init --type-module.`,
    )
    this.files = files
  }
}
